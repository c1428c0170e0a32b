//! The delivery workers: they claim due subscriptions, send their notification Bundles
//! (rest-hook, with reqwest), retry with backoff and keep each subscription's status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fhir_mapping::subscriptions::{self as topics, Content, Event, NotificationType};
use serde_json::{Map, Value};

use super::{EndpointPolicy, SubscriptionSettings, signature};
use crate::clock::{Clock, instant_string, to_micros};
use crate::db::subscriptions::{self as rows, Channel, SubscriptionRow};
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;

type JsonObject = Map<String, Value>;

/// How long a worker's claim on a subscription holds.
const LEASE_MICROS: i64 = 120_000_000;
/// Subscriptions a worker delivers at once.
const CLAIM: i64 = 64;
/// How often an idle worker looks for due deliveries.
const POLL: Duration = Duration::from_millis(10);
/// The longest wait between two looks while the database is in an outage.
const OUTAGE_BACKOFF: Duration = Duration::from_secs(5);

/// The delivery workers of this process; they stop when this is dropped.
pub struct DeliveryWorkers {
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for DeliveryWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeliveryWorkers")
    }
}

impl Drop for DeliveryWorkers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Resolves endpoint host names, keeping only the addresses the policy allows (checked
/// at each connection: a name that later points inside the network is refused).
struct CheckedResolver {
    policy: EndpointPolicy,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|a| policy.allowed_ip(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves to no address this server calls (private or reserved)"
                )
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Starts the delivery workers.
pub fn spawn_delivery(
    db: Db,
    clock: Arc<dyn Clock>,
    settings: Arc<SubscriptionSettings>,
) -> Result<DeliveryWorkers, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(CheckedResolver {
            policy: settings.policy,
        }))
        .user_agent(concat!("hep-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the notification client: {e}"))?;
    let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    for i in 0..settings.workers {
        let worker = Delivery {
            db: db.clone(),
            clock: clock.clone(),
            settings: settings.clone(),
            http: http.clone(),
            owner: format!("{owner}-{i}"),
            stop: stop.clone(),
        };
        std::thread::Builder::new()
            .name(format!("subscriptions-{i}"))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(worker.run()),
                    Err(e) => tracing::error!(error = %e, "a delivery worker could not start"),
                }
            })
            .map_err(|e| format!("cannot start a delivery worker: {e}"))?;
    }
    Ok(DeliveryWorkers { stop })
}

struct Delivery {
    db: Db,
    clock: Arc<dyn Clock>,
    settings: Arc<SubscriptionSettings>,
    http: reqwest::Client,
    owner: String,
    stop: Arc<AtomicBool>,
}

/// What an attempt came to.
enum Outcome {
    /// Nothing was due after all.
    Idle,
    /// The endpoint took the notification: the position is now `delivered`.
    Sent {
        delivered: i64,
    },
    Failed(String),
}

impl Delivery {
    fn now(&self) -> i64 {
        to_micros(self.clock.now())
    }

    async fn run(self) {
        // while the database is in an outage (logged once by `Db`), the worker waits
        // longer and longer between its looks, up to `OUTAGE_BACKOFF`
        let mut backoff = POLL;
        while !self.stop.load(Ordering::Relaxed) {
            let now = self.now();
            let due = match self.db.read(move |c| Ok(rows::any_due(c, now)?)).await {
                Ok(due) => {
                    backoff = POLL;
                    due
                }
                Err(e) if e.outage().is_some() => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(OUTAGE_BACKOFF);
                    continue;
                }
                Err(_) => true,
            };
            if !due {
                tokio::time::sleep(POLL).await;
                continue;
            }
            let owner = self.owner.clone();
            let claimed = self.db.write(move |c| {
                Ok::<_, ApiError>(rows::claim_due(c, &owner, now, now + LEASE_MICROS, CLAIM)?)
            });
            let claimed = match claimed {
                Ok(c) => c,
                Err(e) if crate::db::IsRetryable::outage(&e).is_some() => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(OUTAGE_BACKOFF);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %crate::error::chain(&e), "claiming subscriptions failed; retried");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::time::sleep(POLL).await;
                continue;
            }
            let attempts = claimed.iter().map(|row| self.attempt(row, now));
            let outcomes = futures_util::future::join_all(attempts).await;
            let results: Vec<(SubscriptionRow, Outcome)> =
                claimed.into_iter().zip(outcomes).collect();
            if let Err(e) = self.record(results, now) {
                tracing::warn!(error = %crate::error::chain(&e), "recording deliveries failed; they are sent again");
            }
        }
    }

    /// One delivery attempt of a claimed subscription.
    async fn attempt(&self, row: &SubscriptionRow, now: i64) -> Outcome {
        let (Some(channel), Some(subscriber)) = (row.channel(), row.subscriber()) else {
            return Outcome::Failed("the subscription's stored channel is unreadable".into());
        };
        // a person's subscription delivers nothing once their sign-in is revoked
        if let Some(g) = subscriber.grant.clone() {
            let tenant = row.tenant.clone();
            let holds = self
                .db
                .read(move |c| Ok(crate::db::grants::grant_holds(c, &tenant, &g)?))
                .await;
            match holds {
                Ok(true) => {}
                Ok(false) => {
                    return Outcome::Failed("the subscriber's access was revoked".into());
                }
                Err(e) => return Outcome::Failed(format!("checking the subscriber failed: {e}")),
            }
        }
        let content = Content::parse(&channel.content).unwrap_or(Content::IdOnly);
        let Some(topic) = topics::TOPICS.iter().find(|t| t.code == row.topic) else {
            return Outcome::Failed("the subscription's topic is no longer offered".into());
        };
        let base = self.settings.base_url.trim_end_matches('/').to_string();
        let subscription = format!("{base}/Subscription/{}", row.id);
        let (kind, events) = if row.status == rows::OFF {
            return Outcome::Idle;
        } else if row.status == rows::REQUESTED {
            (NotificationType::Handshake, Vec::new())
        } else if row.events > row.delivered {
            let (tenant, id, from) = (row.tenant.clone(), row.id.clone(), row.delivered + 1);
            let (to, limit) = (row.events, i64::from(channel.max_count.max(1)));
            let full = content == Content::FullResource;
            let loaded = self
                .db
                .read(move |c| load_events(c, &tenant, &id, from, to, limit, full))
                .await;
            match loaded {
                Ok(ev) if !ev.is_empty() => (NotificationType::EventNotification, ev),
                Ok(_) => return Outcome::Idle,
                Err(e) => return Outcome::Failed(format!("reading events failed: {e}")),
            }
        } else if heartbeat_due(row, &channel, now) {
            (NotificationType::Heartbeat, Vec::new())
        } else {
            return Outcome::Idle;
        };
        let stamps: Vec<String> = events.iter().map(|e| instant_string(e.occurred)).collect();
        let foci: Vec<String> = events
            .iter()
            .map(|e| format!("{}/{}", e.res_type, e.res_id))
            .collect();
        let list: Vec<Event<'_>> = events
            .iter()
            .zip(stamps.iter().zip(&foci))
            .map(|(e, (t, f))| Event {
                number: e.number,
                timestamp: t,
                focus: f,
                resource: e.body.as_ref(),
            })
            .collect();
        let status = topics::Status {
            subscription: &subscription,
            topic,
            status: if row.status == rows::REQUESTED {
                rows::REQUESTED
            } else {
                rows::ACTIVE
            },
            kind,
            events_since_start: row.events,
            error: None,
        };
        let bundle = topics::notification(
            &base,
            &uuid::Uuid::new_v4().to_string(),
            &instant_string(now),
            &status,
            &list,
            content,
        );
        let delivered = events.last().map_or(row.delivered, |e| e.number);
        match self.send(&channel, bundle.to_string()).await {
            Ok(()) => Outcome::Sent { delivered },
            Err(e) => Outcome::Failed(e),
        }
    }

    async fn send(&self, channel: &Channel, body: String) -> Result<(), String> {
        let url = self.settings.policy.check(&channel.endpoint)?;
        let mut req = self
            .http
            .post(url)
            .timeout(Duration::from_secs(u64::from(channel.timeout_secs.max(1))))
            .header("Content-Type", "application/fhir+json");
        for (name, value) in &channel.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        if let Some(key) = &self.settings.signing_key {
            let ts = jiff::Timestamp::now().as_second().to_string();
            req = req
                .header("X-Hep-Timestamp", ts.clone())
                .header("X-Hep-Signature", signature(key, &ts, &body));
        }
        let res = req.body(body).send().await.map_err(|e| {
            if e.is_timeout() {
                "the endpoint did not answer in time".to_string()
            } else if e.is_connect() {
                "the endpoint could not be reached".to_string()
            } else {
                "the notification could not be sent".to_string()
            }
        })?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("the endpoint answered {}", res.status().as_u16()))
        }
    }

    /// The next attempt after `failures` failures in a row: exponential, with jitter.
    fn backoff(&self, failures: u32) -> i64 {
        let cap = self.settings.max_backoff.as_micros() as f64;
        let base = 1_000_000f64 * 2f64.powi(failures.min(30) as i32);
        let jitter = 0.8 + 0.4 * (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
        (base.min(cap) * jitter) as i64
    }

    /// Stores the outcomes in one transaction, and the status the Subscription
    /// resources now show; `now` is when the attempts began (the time of a send, from
    /// which the next heartbeat and retry count).
    fn record(&self, results: Vec<(SubscriptionRow, Outcome)>, now: i64) -> Result<(), ApiError> {
        let owner = self.owner.clone();
        let max_failures = self.settings.max_failures.max(1);
        let retry: Vec<i64> = results
            .iter()
            .map(|(r, _)| now + self.backoff(u32::try_from(r.failures).unwrap_or(0)))
            .collect();
        self.db.write(move |c| {
            for ((row, outcome), retry_at) in results.iter().zip(&retry) {
                let channel = row.channel();
                let idle_next = match channel.as_ref().and_then(|ch| ch.heartbeat_secs) {
                    Some(hb) => now + i64::from(hb) * 1_000_000,
                    None => rows::NEVER,
                };
                match outcome {
                    Outcome::Idle => {
                        let idle_next =
                            match (channel.and_then(|ch| ch.heartbeat_secs), row.last_sent) {
                                (Some(hb), Some(last)) => last + i64::from(hb) * 1_000_000,
                                (Some(hb), None) => now + i64::from(hb) * 1_000_000,
                                _ => rows::NEVER,
                            };
                        rows::release(c, row, &owner, now, idle_next)?;
                    }
                    Outcome::Sent { delivered } => {
                        if rows::delivered(
                            c,
                            row,
                            &owner,
                            *delivered,
                            rows::ACTIVE,
                            now,
                            idle_next,
                        )? && row.status != rows::ACTIVE
                        {
                            show_status(c, &row.tenant, &row.id, rows::ACTIVE, now)?;
                        }
                    }
                    Outcome::Failed(error) => {
                        let failures = row.failures.saturating_add(1);
                        let in_error = u32::try_from(failures).unwrap_or(u32::MAX) >= max_failures;
                        let status = if in_error {
                            rows::ERROR
                        } else {
                            row.status.as_str()
                        };
                        if rows::failed(c, row, &owner, status, error, *retry_at)?
                            && status != row.status
                        {
                            show_status(c, &row.tenant, &row.id, status, now)?;
                        }
                    }
                }
            }
            Ok::<_, ApiError>(())
        })
    }
}

/// Whether a heartbeat is due: the channel asks for one and nothing was sent for that
/// long.
fn heartbeat_due(row: &SubscriptionRow, channel: &Channel, now: i64) -> bool {
    match channel.heartbeat_secs {
        Some(hb) => row
            .last_sent
            .is_none_or(|last| now >= last + i64::from(hb) * 1_000_000),
        None => false,
    }
}

/// An event to send, with the focus as it was written (full-resource content).
struct Loaded {
    number: i64,
    res_type: String,
    res_id: String,
    occurred: i64,
    body: Option<Value>,
}

fn load_events(
    conn: &mut AnyConnection,
    tenant: &str,
    subscription: &str,
    from: i64,
    to: i64,
    limit: i64,
    full: bool,
) -> Result<Vec<Loaded>, crate::db::DbError> {
    let events = rows::events(conn, tenant, subscription, from, to, limit)?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let body = if full {
            crate::db::store::version(
                conn,
                crate::db::store::Key {
                    tenant,
                    res_type: &e.res_type,
                    res_id: &e.res_id,
                },
                e.version,
            )?
            .and_then(|v| v.body)
            .and_then(|b| serde_json::from_str(&b).ok())
        } else {
            None
        };
        out.push(Loaded {
            number: e.number,
            res_type: e.res_type,
            res_id: e.res_id,
            occurred: e.occurred,
            body,
        });
    }
    Ok(out)
}

/// Writes the status the server keeps into the Subscription resource (a new version).
fn show_status(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    status: &str,
    now: i64,
) -> Result<(), ApiError> {
    let key = crate::db::store::Key {
        tenant,
        res_type: "Subscription",
        res_id: id,
    };
    let Some(current) = crate::db::store::current(conn, key)? else {
        return Ok(());
    };
    let Some(mut json) = current
        .body
        .as_deref()
        .filter(|_| !current.deleted)
        .and_then(|b| serde_json::from_str::<JsonObject>(b).ok())
    else {
        return Ok(());
    };
    topics::set_status(&mut json, status);
    crate::commit::commit_built(
        conn,
        tenant,
        "Subscription",
        id,
        Some(current.version),
        &mut json,
        now,
    )
}
