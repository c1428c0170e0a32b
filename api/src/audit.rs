//! The audit trail: who did what to which clinic data, when, from where, with what
//! outcome. A change is recorded in its own transaction (`commit`); reads, searches,
//! operations, refusals and tokens are recorded by a middleware (`http::audit`), through a queue
//! that one thread gathers into batches and another writes (gathered for up to a second: a record reaches the
//! database within about a second; the records still queued when the
//! process ends are lost). Served as AuditEvent resources, read-only, to
//! tokens with the `hep-admin` scope.

use crate::db::Db;
use crate::db::audit::AuditRow;

/// Records waiting to be gathered, at most this many (then requests wait for room). The
/// gatherer drains them continuously, so the queue stays small (its slots are
/// allocated up front).
const QUEUE: usize = 4096;
/// Records written per transaction at most.
const BATCH: usize = 50_000;
/// How long the gatherer collects records before it hands them to the writer.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1000);

/// Who acts, for the records of the changes it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub client: String,
    pub address: Option<String>,
    /// The scopes of its token and its patient in context: what a Subscription it
    /// writes may deliver.
    pub scope: String,
    pub patient: Option<String>,
    pub admin: bool,
    /// The person's sign-in the token was issued under: a Subscription it writes
    /// delivers only while that sign-in holds.
    pub grant: Option<String>,
}

/// The queue of records and the threads that write them.
#[derive(Clone)]
pub struct AuditLog {
    queue: crossbeam_channel::Sender<AuditRow>,
}

impl AuditLog {
    /// Starts the gathering and the writing thread; they end when every `AuditLog` is
    /// dropped, after writing what is queued.
    pub fn start(db: Db) -> AuditLog {
        let (queue, records) = crossbeam_channel::bounded::<AuditRow>(QUEUE);
        // one batch written while the next is gathered: when the writer falls behind,
        // the gatherer waits, then the queue fills, then requests wait
        let (batches, to_write) = crossbeam_channel::bounded::<Vec<AuditRow>>(1);
        let gather = move || {
            while let Ok(first) = records.recv() {
                // gather what comes within a short while: a few large commits cost far
                // less (in fsyncs and in the writer's time) than many small ones
                let deadline = std::time::Instant::now() + GATHER;
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match records.recv_deadline(deadline) {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                // ids are given here, by one thread, in the order of the records
                for r in batch.iter_mut().filter(|r| r.id.is_empty()) {
                    r.id = crate::db::new_id();
                }
                if batches.send(batch).is_err() {
                    tracing::error!("the audit writer has stopped; records are lost");
                    return;
                }
            }
        };
        let write = move || {
            while let Ok(rows) = to_write.recv() {
                let written = db.write(move |conn| {
                    crate::db::audit::insert(conn, &rows)?;
                    Ok::<_, crate::error::ApiError>(())
                });
                if let Err(e) = written {
                    tracing::error!(error = %e, "audit records could not be written");
                }
            }
        };
        for (name, run) in [
            (
                "audit-gatherer",
                Box::new(gather) as Box<dyn FnOnce() + Send>,
            ),
            ("audit-writer", Box::new(write)),
        ] {
            if let Err(e) = std::thread::Builder::new().name(name.into()).spawn(run) {
                tracing::error!(error = %e, thread = name, "an audit thread could not start");
            }
        }
        AuditLog { queue }
    }

    /// Records queued, not yet gathered.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues a record (its id, when empty, is given by the writer); waits (off the async
    /// worker) while the queue is full.
    pub async fn record(&self, row: AuditRow) {
        match self.queue.try_send(row) {
            Ok(()) => {}
            Err(crossbeam_channel::TrySendError::Full(row)) => {
                let queue = self.queue.clone();
                let _ = tokio::task::spawn_blocking(move || queue.send(row).is_ok()).await;
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                tracing::error!("the audit writer has stopped; a record is lost");
            }
        }
    }
}

/// The AuditEvent of a stored record.
fn event_json(r: &AuditRow) -> serde_json::Value {
    let recorded = crate::clock::instant_string(r.recorded);
    fhir_mapping::audit::audit_event(&fhir_mapping::audit::AuditFacts {
        id: &r.id,
        recorded: &recorded,
        action: &r.action,
        subtype: &r.subtype,
        outcome: &r.outcome,
        status: r.status,
        client: &r.client,
        address: r.address.as_deref(),
        entity: match (&r.res_type, &r.res_id) {
            (Some(t), Some(i)) => Some((t.as_str(), i.as_str(), r.version)),
            _ => None,
        },
        patient: r.patient.as_deref(),
        query: r.query.as_deref(),
    })
}

/// `GET AuditEvent/[id]` (the admin scope checked by the caller).
pub async fn read_event(
    db: &Db,
    tenant: String,
    id: String,
) -> Result<serde_json::Value, crate::error::ApiError> {
    let q = crate::db::audit::AuditQuery {
        id: Some(id.clone()),
        ..Default::default()
    };
    let rows = db
        .read(move |conn| Ok(crate::db::audit::search(conn, &tenant, &q, 1)?))
        .await?;
    rows.first()
        .map(event_json)
        .ok_or_else(|| crate::error::ApiError::NotFound(format!("AuditEvent/{id} does not exist")))
}

/// `GET AuditEvent?...`: newest first; `date` (with a prefix), `patient`, `entity`,
/// `subtype`, `outcome`, `action`, `_count`, `_cursor`.
pub async fn search_events(
    db: &Db,
    tenant: String,
    pairs: &[(String, String)],
    base: &str,
) -> Result<Vec<u8>, crate::error::ApiError> {
    use crate::error::ApiError;
    let mut q = crate::db::audit::AuditQuery::default();
    let mut count = crate::search::parsing::DEFAULT_COUNT;
    let mut applied = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "_format" | "_pretty" => continue,
            "_count" => {
                count = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        ApiError::BadRequest("_count must be a positive whole number".into())
                    })?
                    .min(crate::search::parsing::MAX_COUNT);
                continue;
            }
            "_cursor" => q.before_id = Some(v.clone()),
            "_id" => q.id = Some(v.clone()),
            "date" | "_lastUpdated" => {
                let (prefix, date) = crate::search::parsing::date_prefix(v);
                let (lo, hi) = crate::search::parsing::date_range(date).ok_or_else(|| {
                    ApiError::BadRequest(format!("`{date}` is not a FHIR date or dateTime"))
                })?;
                match prefix {
                    "eq" => {
                        q.from = Some(lo);
                        q.until = Some(hi);
                    }
                    "ge" => q.from = Some(lo),
                    "gt" => q.from = Some(hi),
                    "lt" => q.until = Some(lo),
                    "le" => q.until = Some(hi),
                    p => {
                        return Err(ApiError::BadRequest(format!(
                            "`date` of AuditEvent takes eq, ge, gt, le or lt, not `{p}`"
                        )));
                    }
                }
            }
            "patient" => q.patient = Some(v.strip_prefix("Patient/").unwrap_or(v).to_string()),
            "entity" => {
                let (t, i) = v
                    .split_once('/')
                    .ok_or_else(|| ApiError::BadRequest("`entity` is Type/id".into()))?;
                q.entity = Some((t.to_string(), i.to_string()));
            }
            "subtype" => q.subtype = Some(v.rsplit('|').next().unwrap_or(v).to_string()),
            "outcome" => q.outcome = Some(v.clone()),
            "action" => q.action = Some(v.clone()),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown or unsupported search parameter `{other}` for AuditEvent (_id, _lastUpdated, date, patient, entity, subtype, outcome, action)"
                )));
            }
        }
        if k != "_cursor" {
            applied.push((k.clone(), v.clone()));
        }
    }
    let query = q.clone();
    let rows = db
        .read(move |conn| Ok(crate::db::audit::search(conn, &tenant, &query, count)?))
        .await?;
    let bodies: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| serde_json::to_vec(&event_json(r)).unwrap_or_default())
        .collect();
    let entries: Vec<fhir_mapping::bundle::Entry<'_>> = rows
        .iter()
        .zip(&bodies)
        .map(|(r, b)| fhir_mapping::bundle::Entry {
            full_url: Some(format!("{base}/AuditEvent/{}", r.id)),
            resource: Some(b),
            search_mode: Some("match"),
            ..Default::default()
        })
        .collect();
    applied.push(("_count".into(), count.to_string()));
    let mut links = vec![fhir_mapping::bundle::Link {
        relation: "self",
        url: crate::search::parsing::link_url(base, "/AuditEvent", &applied),
    }];
    if rows.len() as i64 == count
        && let Some(last) = rows.last()
    {
        let mut next = applied.clone();
        next.push(("_cursor".into(), last.id.clone()));
        links.push(fhir_mapping::bundle::Link {
            relation: "next",
            url: crate::search::parsing::link_url(base, "/AuditEvent", &next),
        });
    }
    Ok(fhir_mapping::bundle::write_bundle(
        "searchset",
        None,
        None,
        None,
        None,
        &links,
        &entries,
    ))
}
