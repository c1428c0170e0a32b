//! Topic-based subscriptions (R4 Subscriptions Backport IG) with rest-hook delivery.
//!
//! A client's write of a `Subscription` is checked (topic, filters, channel, endpoint,
//! what the client's token may read) and keeps a delivery row (`db/subscriptions.rs`).
//! Every write that triggers a topic appends, in its own transaction, one event per
//! matching subscription to the outbox (`subscription_events`), numbered per
//! subscription: no event for a change that rolled back, none lost when the process
//! stops after the commit. Delivery workers claim due subscriptions (a lease, so one
//! worker at a time delivers a subscription, in order), send the notification Bundles
//! with reqwest, and on a failure retry with exponential backoff and jitter; after
//! `max_failures` in a row the subscription is `error`, and the next delivery that
//! succeeds sends every event it missed and makes it `active` again.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fhir_mapping::subscriptions::{self as topics, Content, Event, NotificationType};
use serde_json::{Map, Value};

use crate::audit::Agent;
use crate::auth::Access;
use crate::auth::scopes::{Perm, Scopes};
use crate::clock::{Clock, instant_string, to_micros};
use crate::db::subscriptions::{self as rows, Channel, Subscriber, SubscriptionRow};
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;

type JsonObject = Map<String, Value>;

/// Seconds a notification may take when the Subscription sets no timeout, and at most.
const DEFAULT_TIMEOUT_SECS: u32 = 10;
const MAX_TIMEOUT_SECS: u32 = 60;
/// Events in one notification when the Subscription sets no `max-count`, and at most.
const DEFAULT_MAX_COUNT: u32 = 20;
const MAX_COUNT: u32 = 100;
/// How long a worker's claim on a subscription holds.
const LEASE_MICROS: i64 = 120_000_000;
/// Subscriptions a worker delivers at once.
const CLAIM: i64 = 64;
/// How often an idle worker looks for due deliveries.
const POLL: Duration = Duration::from_millis(10);

/// Which endpoints a Subscription may name (no server-side request forgery).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// `http://` and `https://` to this machine (127.0.0.0/8, ::1, `localhost`).
    pub allow_loopback: bool,
    /// Private, link-local and other non-public ranges.
    pub allow_private: bool,
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Addresses that are not on the public internet.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space
                || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        }
    }
}

impl EndpointPolicy {
    /// Whether the server may connect to `ip`.
    pub fn allowed_ip(&self, ip: IpAddr) -> bool {
        if is_loopback(ip) {
            return self.allow_loopback;
        }
        !is_private(ip) || self.allow_private
    }

    /// Checks an endpoint URL: `https`, or `http` to loopback when loopback is allowed;
    /// a literal address must be allowed (names are checked when they are resolved).
    pub fn check(&self, endpoint: &str) -> Result<reqwest::Url, String> {
        let url = reqwest::Url::parse(endpoint)
            .map_err(|_| format!("`{endpoint}` is not an absolute URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("the endpoint URL may not carry credentials; use a header".into());
        }
        let host = url.host().ok_or("the endpoint URL has no host")?;
        let literal: Option<IpAddr> = match host {
            url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
            url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
            url::Host::Domain(_) => None,
        };
        let local = match (&literal, url.host_str()) {
            (Some(ip), _) => is_loopback(*ip),
            (None, Some(h)) => h.eq_ignore_ascii_case("localhost"),
            _ => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if local && self.allow_loopback => {}
            "http" => {
                return Err("notifications are sent over https only".into());
            }
            other => return Err(format!("`{other}` is not an endpoint scheme (https)")),
        }
        if local && !self.allow_loopback {
            return Err("this server does not call endpoints on its own machine".into());
        }
        if let Some(ip) = literal
            && !self.allowed_ip(ip)
        {
            return Err(format!(
                "{ip} is a private, link-local or reserved address this server does not call"
            ));
        }
        Ok(url)
    }
}

/// How subscriptions are delivered by this process.
#[derive(Debug, Clone)]
pub struct SubscriptionSettings {
    pub policy: EndpointPolicy,
    /// Failed deliveries in a row before a subscription is `error`.
    pub max_failures: u32,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// Key of the HMAC-SHA256 signature of each notification (none: unsigned).
    pub signing_key: Option<Vec<u8>>,
    /// Worker threads (0: this process delivers nothing).
    pub workers: usize,
    /// The FHIR base URL in notifications (`fullUrl`, the subscription's reference).
    pub base_url: String,
}

fn unprocessable(expression: &str, msg: String) -> ApiError {
    ApiError::Unprocessable(vec![
        fhir_mapping::Issue::error(fhir_mapping::IssueType::Value, msg).at(expression),
    ])
}

/// The access a subscription delivers with: its subscriber's token, as when it wrote it.
fn access_of(tenant: &str, s: &Subscriber) -> Access {
    Access {
        tenant: tenant.to_string(),
        client: s.client.clone(),
        scopes: Scopes::parse(&s.scope),
        patient: s.patient.clone(),
        admin: s.admin,
        address: None,
    }
}

/// The subscriber of a client's write (the server's own writes subscribe as a system).
fn subscriber_of(agent: Option<&Agent>) -> Subscriber {
    match agent {
        Some(a) => Subscriber {
            client: a.client.clone(),
            scope: a.scope.clone(),
            patient: a.patient.clone(),
            admin: a.admin,
        },
        None => Subscriber {
            client: "server".into(),
            scope: "system/*.rs".into(),
            patient: None,
            admin: false,
        },
    }
}

/// Checks a client's Subscription before it is stored and sets the status the server
/// keeps: `off` when the client turns it off, else `requested` (a handshake follows).
pub fn prepare(
    tenant: &str,
    json: &mut JsonObject,
    agent: Option<&Agent>,
    policy: &EndpointPolicy,
) -> Result<(), ApiError> {
    let spec = topics::read(json).map_err(ApiError::Unprocessable)?;
    policy
        .check(&spec.endpoint)
        .map_err(|m| unprocessable("Subscription.channel.endpoint", m))?;
    let subscriber = subscriber_of(agent);
    let access = access_of(tenant, &subscriber);
    // (a patient-context token cannot write a Subscription: it is outside the
    // patient's compartment, which `service` checks before this)
    access.require(spec.topic.resource_type, Perm::Read)?;
    topics::set_status(json, if spec.off { rows::OFF } else { rows::REQUESTED });
    Ok(())
}

/// What a write does to subscriptions, in its transaction: a client's Subscription
/// keeps its delivery row; a write that triggers a topic appends an event to each
/// matching subscription whose subscriber may read the resource.
#[allow(clippy::too_many_arguments)]
pub fn after_write(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    id: &str,
    version: i64,
    before: Option<&JsonObject>,
    after: Option<&JsonObject>,
    client_write: Option<Option<&Agent>>,
    now: i64,
) -> Result<(), ApiError> {
    if res_type == "Subscription" {
        if let (Some(agent), Some(after)) = (client_write, after) {
            set_up(conn, tenant, id, after, agent, now)?;
        }
        return Ok(());
    }
    let triggered = topics::triggered(res_type, before, after);
    let Some(after) = after else {
        return Ok(());
    };
    for topic in triggered {
        if !rows::any_of_topic(conn, tenant, topic.code)? {
            continue;
        }
        let values = topics::filter_values(topic, res_type, id, after);
        for sub in rows::matching(conn, tenant, topic.code, &values)? {
            let Some(row) = rows::get(conn, tenant, &sub)? else {
                continue;
            };
            let Some(subscriber) = row.subscriber() else {
                continue;
            };
            let access = access_of(tenant, &subscriber);
            let Ok(limits) = access.require(res_type, Perm::Read) else {
                continue;
            };
            if !crate::auth::visibility::visible(conn, tenant, res_type, id, &limits)? {
                continue;
            }
            rows::append(
                conn,
                &rows::NewEvent {
                    tenant,
                    subscription: &sub,
                    res_type,
                    res_id: id,
                    version,
                    occurred: now,
                },
            )?;
        }
    }
    Ok(())
}

/// The delivery row of a Subscription a client wrote (its events and position kept).
fn set_up(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    json: &JsonObject,
    agent: Option<&Agent>,
    now: i64,
) -> Result<(), ApiError> {
    let spec = topics::read(json).map_err(ApiError::Unprocessable)?;
    let channel = Channel {
        endpoint: spec.endpoint.clone(),
        headers: spec.headers.clone(),
        content: spec.content.as_str().into(),
        heartbeat_secs: spec.heartbeat_secs,
        timeout_secs: spec
            .timeout_secs
            .unwrap_or(DEFAULT_TIMEOUT_SECS)
            .min(MAX_TIMEOUT_SECS),
        max_count: spec.max_count.unwrap_or(DEFAULT_MAX_COUNT).min(MAX_COUNT),
    };
    let status = if spec.off { rows::OFF } else { rows::REQUESTED };
    rows::set_up(
        conn,
        &rows::Setup {
            tenant,
            id,
            topic: spec.topic.code,
            status,
            channel: &channel,
            subscriber: &subscriber_of(agent),
            filters: &spec.filters,
            next_attempt: if spec.off { rows::NEVER } else { now },
        },
    )?;
    Ok(())
}

/// A deleted Subscription: its row, filters and events go.
pub fn after_delete(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    id: &str,
) -> Result<(), ApiError> {
    if res_type == "Subscription" {
        rows::remove(conn, tenant, id, true)?;
    }
    Ok(())
}

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
        while !self.stop.load(Ordering::Relaxed) {
            let now = self.now();
            let due = self
                .db
                .read(move |c| Ok(rows::any_due(c, now)?))
                .await
                .unwrap_or(true);
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
                Err(e) => {
                    tracing::warn!(error = %e, "claiming subscriptions failed; retried");
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
                tracing::warn!(error = %e, "recording deliveries failed; they are sent again");
            }
        }
    }

    /// One delivery attempt of a claimed subscription.
    async fn attempt(&self, row: &SubscriptionRow, now: i64) -> Outcome {
        let (Some(channel), Some(_)) = (row.channel(), row.subscriber()) else {
            return Outcome::Failed("the subscription's stored channel is unreadable".into());
        };
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
    crate::sessions::write_built(
        conn,
        tenant,
        "Subscription",
        id,
        Some(current.version),
        &mut json,
        now,
    )
}

/// `sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>`.
pub fn signature(key: &[u8], timestamp: &str, body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body.as_bytes());
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_outside_the_policy_are_refused() {
        let strict = EndpointPolicy::default();
        assert!(strict.check("https://ehr.example.org/hook").is_ok());
        assert!(strict.check("http://ehr.example.org/hook").is_err());
        assert!(strict.check("https://127.0.0.1/hook").is_err());
        assert!(strict.check("https://10.1.2.3/hook").is_err());
        assert!(strict.check("https://169.254.169.254/latest").is_err());
        assert!(strict.check("https://[::1]/hook").is_err());
        assert!(strict.check("https://[fe80::1]/hook").is_err());
        assert!(strict.check("https://[::ffff:192.168.0.1]/hook").is_err());
        assert!(strict.check("https://localhost/hook").is_err());
        assert!(strict.check("https://user:pw@ehr.example.org/").is_err());
        assert!(strict.check("ftp://ehr.example.org/").is_err());
        let local = EndpointPolicy {
            allow_loopback: true,
            allow_private: false,
        };
        assert!(local.check("http://127.0.0.1:9000/hook").is_ok());
        assert!(local.check("http://localhost:9000/hook").is_ok());
        assert!(local.check("http://10.0.0.1/hook").is_err());
        let private = EndpointPolicy {
            allow_loopback: false,
            allow_private: true,
        };
        assert!(private.check("https://10.0.0.1/hook").is_ok());
        assert!(private.check("https://127.0.0.1/hook").is_err());
    }

    #[test]
    fn signatures_are_hmac_sha256() {
        let sig = signature(b"Jefe", "what do ya want", "for nothing?");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert_ne!(sig, signature(b"Jefe", "what do ya want", "for nothing!"));
    }
}
