//! Bulk Data export (`$export`, HL7 Bulk Data Access 2.0): a kick-off read into a job,
//! the workers that write jobs into NDJSON files, and what the status endpoint answers.
//!
//! A job is a row of `export_jobs`. Any server process may claim it (a lease it renews
//! while it works; a process that stops lets the lease run out and another one starts
//! the job again). A job reads every resource in one read transaction (a snapshot:
//! SQLite's WAL read transaction, PostgreSQL's `REPEATABLE READ`), page by page in id
//! order, and appends each stored body as one line of a file: memory stays bounded by
//! one page whatever the size of the export.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::auth::scopes::{Grant, Perm, Scopes};
use crate::auth::{Access, Limits};
use crate::clock::{Clock, POLL_LAG_MICROS, to_micros};
use crate::db::exports::{self, JobRow};
use crate::db::query::{Condition, Page, Patients, SearchQuery, Sort};
use crate::db::{Db, DbError};
use crate::error::ApiError;
use fhir_mapping::resource_types::{R4_RESOURCE_TYPES, is_storable};
use fhir_mapping::search_params::is_compartment_type;

/// Resources read per query.
const PAGE: i64 = 1000;
/// How long a claim holds without renewal.
const LEASE_MICROS: i64 = 60_000_000;
/// Claims of one job before it is given up (a job that stops its process every time).
const MAX_ATTEMPTS: i32 = 3;
/// Unfinished jobs a client may have at once (more: 429).
pub const MAX_UNFINISHED_PER_CLIENT: i64 = 5;
/// Patients a kick-off's `patient` parameter may name.
const MAX_PATIENTS: usize = 1000;
/// How often a running job renews its lease, which is also when it learns that it was
/// cancelled.
const RENEW: Duration = Duration::from_secs(1);
/// How often idle workers look for jobs another process accepted.
const POLL: Duration = Duration::from_secs(1);
/// How often expired jobs and orphaned files are removed.
const SWEEP: Duration = Duration::from_secs(60);

/// How exports run on this server.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Where files are written (one directory per job).
    pub dir: PathBuf,
    /// How long the files of a finished job are kept, in microseconds.
    pub expiry_micros: i64,
    /// Resources per file; a type with more has several files.
    pub file_max_resources: u64,
    /// A pause after each page read, leaving room for interactive requests.
    pub pause: Duration,
    /// Worker threads of this process (0: this process only accepts kick-offs).
    pub workers: usize,
}

/// Whose data a job exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "lowercase")]
pub enum Level {
    /// `[base]/$export`: everything of the clinic.
    System,
    /// `[base]/Patient/$export`: the compartments of all patients.
    Patient,
    /// `[base]/Group/[id]/$export`: the compartments of the Group's member patients.
    Group { id: String },
}

/// What a job exports, as stored with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    #[serde(flatten)]
    pub level: Level,
    /// The types, in the order they are written.
    pub types: Vec<String>,
    /// Only resources changed after this instant (microseconds).
    pub since: Option<i64>,
    /// `_typeFilter`: per type, searches of which a resource must match one.
    #[serde(default)]
    pub filters: BTreeMap<String, Vec<Vec<(String, String)>>>,
    /// The `patient` parameter: only these patients' compartments.
    #[serde(default)]
    pub patients: Vec<String>,
    /// The scopes of the kick-off's token: the limits of every type are taken again
    /// from them when the job runs.
    pub scope: String,
    #[serde(default)]
    pub admin: bool,
    /// What a lenient kick-off ignored, reported in the manifest's `error` files.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One written file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub file: String,
    pub count: u64,
}

/// What a completed job produced (stored as its `result`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Produced {
    /// The claim of the job that wrote the files: their directory under the job's.
    pub attempt: i32,
    #[serde(rename = "transactionTime")]
    pub transaction_time: i64,
    pub output: Vec<FileEntry>,
    pub error: Vec<FileEntry>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

/// The limits of exporting `resource_type` with `access`: it must read and search the
/// type beyond one patient's compartment.
fn export_limits(access: &Access, resource_type: &str) -> Result<Limits, ApiError> {
    access.require(resource_type, Perm::Read)?;
    let limits = access.require(resource_type, Perm::Search)?;
    if limits.patient.is_some() {
        return Err(ApiError::Forbidden(format!(
            "exporting {resource_type} needs user or system scopes"
        )));
    }
    Ok(limits)
}

/// Whether `access` may see what a job of `spec` produced of `types`: the status and
/// manifest need every type of the export, a file its own type. Each type needs what
/// the kick-off needed (read and search beyond one patient's compartment), and a
/// token whose scope restricts the type by a search sees no result of a job that was
/// not restricted the same way. The answer is a 403 naming the missing scope.
pub fn check_reader<'a>(
    spec: &Spec,
    access: &Access,
    types: impl IntoIterator<Item = &'a str>,
) -> Result<(), ApiError> {
    let job_scopes = Scopes::parse(&spec.scope);
    for t in types {
        export_limits(access, t).map_err(|_| {
            ApiError::Forbidden(format!(
                "this export holds {t}: its status and files need a token that reads and searches {t} beyond one patient (system/{t}.rs, or system/*.rs)"
            ))
        })?;
        for perm in [Perm::Read, Perm::Search] {
            if let Grant::Allowed { restriction, .. } = access.scopes.grant(t, perm)
                && !restriction.is_empty()
                && !matches!(
                    job_scopes.grant(t, perm),
                    Grant::Allowed { restriction: r, .. } if r == restriction
                )
            {
                return Err(ApiError::Forbidden(format!(
                    "this export holds {t} beyond the search restriction of the token's scope: it needs system/{t}.rs without a restriction"
                )));
            }
        }
    }
    Ok(())
}

/// The types a level can export.
fn level_types(level: &Level) -> Vec<&'static str> {
    R4_RESOURCE_TYPES
        .iter()
        .copied()
        .filter(|t| is_storable(t))
        .filter(|t| match level {
            Level::System => true,
            Level::Patient | Level::Group { .. } => is_compartment_type(t),
        })
        .collect()
}

/// Reads a kick-off (query string pairs, or a `Parameters` body read into pairs) into
/// the job's spec. Unknown or unsupported parameters are a 400, or, `lenient`, noted
/// in the manifest's `error` files and ignored.
pub fn read_kickoff(
    level: Level,
    pairs: &[(String, String)],
    access: &Access,
    lenient: bool,
) -> Result<Spec, ApiError> {
    access.require_beyond_patient("$export")?;
    let notes = std::cell::RefCell::new(Vec::new());
    let refuse = |msg: String| -> Result<(), ApiError> {
        if lenient {
            notes.borrow_mut().push(format!("ignored: {msg}"));
            Ok(())
        } else {
            Err(bad(msg))
        }
    };
    let mut since = None;
    let mut requested: Option<Vec<String>> = None;
    let mut filter_queries: Vec<String> = Vec::new();
    let mut patients: Vec<String> = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "_outputFormat" => {
                if !fhir_mapping::bulk::OUTPUT_FORMATS.contains(&value.as_str()) {
                    return Err(bad(format!(
                        "_outputFormat `{value}` is not supported: use application/fhir+ndjson"
                    )));
                }
            }
            "_since" => {
                let t = value.parse::<jiff::Timestamp>().map_err(|_| {
                    bad("_since must be an instant with a time zone (2026-01-01T00:00:00Z)")
                })?;
                since = Some(t.as_microsecond());
            }
            "_type" => {
                let list = requested.get_or_insert_with(Vec::new);
                for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if !is_storable(t) {
                        refuse(format!("_type `{t}` is not a resource type"))?;
                        continue;
                    }
                    if !list.iter().any(|x| x == t) {
                        list.push(t.to_string());
                    }
                }
            }
            "_typeFilter" => {
                for q in fhir_mapping::bulk::split_type_filters(value) {
                    filter_queries.push(q.to_string());
                }
            }
            "patient" if level != Level::System => {
                for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let id = p.strip_prefix("Patient/").unwrap_or(p);
                    if !fhir_mapping::resource_types::is_valid_id(id) {
                        return Err(bad(format!("patient `{p}` is not a Patient reference")));
                    }
                    patients.push(id.to_string());
                }
            }
            "_format" | "_pretty" => {}
            "patient" => {
                refuse("the `patient` parameter needs Patient- or Group-level $export".into())?
            }
            other => refuse(format!(
                "the parameter `{other}` is not supported by $export"
            ))?,
        }
    }
    if patients.len() > MAX_PATIENTS {
        return Err(bad(format!(
            "at most {MAX_PATIENTS} patients in one kick-off: export a Group instead"
        )));
    }
    patients.sort();
    patients.dedup();
    let allowed = level_types(&level);
    let types: Vec<String> = match requested {
        Some(list) => {
            let mut types = Vec::new();
            for t in list {
                if !allowed.contains(&t.as_str()) {
                    refuse(format!(
                        "{t} is not in a patient's compartment: a Patient or Group export has only those types"
                    ))?;
                    continue;
                }
                export_limits(access, &t)?;
                types.push(t);
            }
            types
        }
        None => allowed
            .iter()
            .filter(|t| export_limits(access, t).is_ok())
            .map(|t| t.to_string())
            .collect(),
    };
    if types.is_empty() {
        return Err(ApiError::Forbidden(
            "the access token reads none of the types this export asks for".into(),
        ));
    }
    let mut filters: BTreeMap<String, Vec<Vec<(String, String)>>> = BTreeMap::new();
    let mut filter_values = 0usize;
    for q in filter_queries {
        let Some((t, query)) = q.split_once('?') else {
            refuse(format!("_typeFilter `{q}` is not of the form Type?query"))?;
            continue;
        };
        if !types.iter().any(|x| x == t) {
            notes.borrow_mut().push(format!(
                "ignored: _typeFilter `{q}` is about a type this export does not include"
            ));
            continue;
        }
        let params: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| bad(format!("_typeFilter `{q}` is not a query string")))?;
        // the filters of a type are alternatives of one condition: together they keep
        // to the limits of one search (refused even when lenient)
        filter_values += crate::search::parsing::check_limits(&params)?;
        if filter_values > crate::search::parsing::MAX_TOTAL_VALUES {
            return Err(ApiError::TooCostly(format!(
                "the _typeFilter searches have more than {} parameter values in all: at most \
                 {} are allowed in one kick-off",
                crate::search::parsing::MAX_TOTAL_VALUES,
                crate::search::parsing::MAX_TOTAL_VALUES
            )));
        }
        match check_filter(t, &params) {
            Ok(()) => filters.entry(t.to_string()).or_default().push(params),
            Err(msg) => refuse(format!("_typeFilter `{q}`: {msg}"))?,
        }
    }
    Ok(Spec {
        level,
        types,
        since,
        filters,
        patients,
        scope: access.scopes.to_scope_string(),
        admin: access.admin,
        notes: notes.into_inner(),
    })
}

/// A `_typeFilter` search: supported parameters only, and none that shapes results.
fn check_filter(resource_type: &str, params: &[(String, String)]) -> Result<(), String> {
    if params.is_empty() {
        return Err("the query has no parameter".into());
    }
    let search = crate::search::parsing::parse(resource_type, params).map_err(|e| e.to_string())?;
    if !search.includes.is_empty()
        || !search.revincludes.is_empty()
        || !search.shaping.is_empty()
        || params
            .iter()
            .any(|(k, _)| k.starts_with('_') && k != "_id" && k != "_lastUpdated")
    {
        return Err("only search parameters, not result parameters, filter an export".into());
    }
    Ok(())
}

/// The conditions of exporting `resource_type` under `spec` (besides the scopes').
fn job_conditions(spec: &Spec, resource_type: &str) -> Result<Vec<Condition>, ApiError> {
    let mut conds = Vec::new();
    let ids = (!spec.patients.is_empty()).then(|| spec.patients.clone());
    match &spec.level {
        Level::System => {}
        // every patient's compartment, or the listed patients'
        Level::Patient => conds.push(Condition::compartment(
            resource_type,
            Patients {
                ids,
                members_of: None,
            },
        )),
        // the compartments of the Group's members (that are listed, when some are)
        Level::Group { id } => conds.push(Condition::compartment(
            resource_type,
            Patients {
                ids,
                members_of: Some(id.clone()),
            },
        )),
    }
    if let Some(since) = spec.since {
        conds.push(Condition::LastUpdated(vec![(
            crate::db::query::DateOp::Ge,
            since + 1,
            since + 1,
        )]));
    }
    if let Some(filters) = spec.filters.get(resource_type) {
        let mut any = Vec::new();
        for params in filters {
            any.push(crate::search::parsing::parse(resource_type, params)?.conditions);
        }
        conds.push(Condition::AnyOf(any));
    }
    Ok(conds)
}

/// The background export workers of this process; they stop when this is dropped.
pub struct ExportWorkers {
    wake: crossbeam_channel::Sender<()>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for ExportWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportWorkers")
    }
}

impl ExportWorkers {
    /// Tells an idle worker that a job was accepted.
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

impl Drop for ExportWorkers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts `settings.workers` worker threads.
pub fn spawn_workers(
    db: Db,
    clock: Arc<dyn Clock>,
    settings: Arc<ExportSettings>,
) -> ExportWorkers {
    let (wake, woken) = crossbeam_channel::bounded::<()>(64);
    let stop = Arc::new(AtomicBool::new(false));
    let owner = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    for i in 0..settings.workers {
        let worker = Worker {
            db: db.clone(),
            clock: clock.clone(),
            settings: settings.clone(),
            owner: format!("{owner}-{i}"),
            stop: stop.clone(),
        };
        let woken = woken.clone();
        let sweeps = i == 0;
        if let Err(e) = std::thread::Builder::new()
            .name(format!("export-{i}"))
            .spawn(move || worker.run(woken, sweeps))
        {
            tracing::error!(error = %e, "an export worker could not start");
        }
    }
    ExportWorkers { wake, stop }
}

struct Worker {
    db: Db,
    clock: Arc<dyn Clock>,
    settings: Arc<ExportSettings>,
    owner: String,
    stop: Arc<AtomicBool>,
}

/// Why a job's run ended without a manifest.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("the job was cancelled")]
    Cancelled,
    #[error("the server is stopping")]
    Stopping,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Store(#[from] DbError),
    #[error("cannot write the export files: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl Worker {
    fn now(&self) -> i64 {
        to_micros(self.clock.now())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn run(self, woken: crossbeam_channel::Receiver<()>, sweeps: bool) {
        let mut last_sweep: Option<Instant> = None;
        while !self.stopping() {
            if sweeps && last_sweep.is_none_or(|t| t.elapsed() >= SWEEP) {
                last_sweep = Some(Instant::now());
                if let Err(e) = self.sweep() {
                    tracing::warn!(error = %crate::error::chain(&e), "removing expired exports failed; retried later");
                }
            }
            loop {
                if self.stopping() {
                    return;
                }
                let (owner, now) = (self.owner.clone(), self.now());
                let claimed = self.db.write(move |c| {
                    Ok::<_, ApiError>(exports::claim(c, &owner, now, now + LEASE_MICROS)?)
                });
                match claimed {
                    Ok(Some(job)) => self.run_job(job),
                    Ok(None) => break,
                    // an outage of the database is logged once, by `Db`
                    Err(e) if crate::db::IsRetryable::outage(&e).is_some() => break,
                    Err(e) => {
                        tracing::warn!(error = %crate::error::chain(&e), "claiming an export job failed; retried");
                        break;
                    }
                }
            }
            match woken.recv_timeout(POLL) {
                Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn finish(&self, job: &JobRow, status: &str, result: Option<String>, error: Option<String>) {
        let (tenant, id, owner) = (job.tenant.clone(), job.id.clone(), self.owner.clone());
        let now = self.now();
        let expires_at = now + self.settings.expiry_micros;
        let status = status.to_string();
        let ended = self.db.write(move |c| {
            Ok::<_, ApiError>(exports::finish(
                c,
                &tenant,
                &id,
                &owner,
                &exports::Finish {
                    status: &status,
                    result: result.as_deref(),
                    error: error.as_deref(),
                    now,
                    expires_at,
                },
            )?)
        });
        match ended {
            Ok(true) => {}
            Ok(false) => self.abandon(job),
            Err(e) => {
                tracing::warn!(error = %crate::error::chain(&e), "recording the end of an export failed")
            }
        }
    }

    /// The directory of this claim's files: a worker that lost its claim (a stall that
    /// outlived its lease) never touches the files of the worker that took over.
    fn attempt_dir(&self, job: &JobRow) -> PathBuf {
        self.settings
            .dir
            .join(&job.id)
            .join(job.attempts.to_string())
    }

    /// Removes the files of a claim this worker lost, and the job's directory when no
    /// other claim has files in it (the job was cancelled).
    fn abandon(&self, job: &JobRow) {
        remove_dir(&self.attempt_dir(job));
        let _ = std::fs::remove_dir(self.settings.dir.join(&job.id));
    }

    fn run_job(&self, job: JobRow) {
        let dir = self.attempt_dir(&job);
        if job.attempts > MAX_ATTEMPTS {
            remove_dir(&dir);
            let msg = format!("the export was interrupted {MAX_ATTEMPTS} times and is given up");
            self.finish(&job, exports::FAILED, None, Some(msg));
            return;
        }
        let started = Instant::now();
        match self.export(&job, &dir) {
            Ok(produced) => {
                let result = serde_json::to_string(&produced).ok();
                let count: u64 = produced.output.iter().map(|f| f.count).sum();
                tracing::info!(
                    job = %job.id,
                    resources = count,
                    millis = started.elapsed().as_millis() as u64,
                    "export completed"
                );
                self.finish(&job, exports::COMPLETED, result, None);
            }
            Err(RunError::Cancelled) => self.abandon(&job),
            // left to the lease: this process or another starts it again
            Err(RunError::Stopping) => {}
            Err(e) => {
                tracing::warn!(job = %job.id, error = %crate::error::chain(&e), "export failed");
                remove_dir(&dir);
                self.finish(&job, exports::FAILED, None, Some(e.to_string()));
            }
        }
    }

    /// Extends the job's lease; a cancelled job ends the run.
    fn renew(&self, job: &JobRow, progress: String) -> Result<(), RunError> {
        let (tenant, id, owner) = (job.tenant.clone(), job.id.clone(), self.owner.clone());
        let until = self.now() + LEASE_MICROS;
        let ours = self.db.write(move |c| {
            Ok::<_, ApiError>(exports::renew(c, &tenant, &id, &owner, until, &progress)?)
        })?;
        if ours {
            Ok(())
        } else {
            Err(RunError::Cancelled)
        }
    }

    fn export(&self, job: &JobRow, dir: &Path) -> Result<Produced, RunError> {
        // what an earlier, interrupted claim left
        if let Ok(entries) = std::fs::read_dir(self.settings.dir.join(&job.id)) {
            for e in entries.filter_map(Result::ok) {
                remove_dir(&e.path());
            }
        }
        std::fs::create_dir_all(dir)?;
        let spec: Spec = serde_json::from_str(&job.spec)
            .map_err(|e| ApiError::internal_from("unreadable export job", e))?;
        let access = Access {
            tenant: job.tenant.clone(),
            client: job.client.clone(),
            scopes: Scopes::parse(&spec.scope),
            patient: None,
            admin: spec.admin,
            address: None,
            user: None,
            grant: None,
        };
        // statements limited by the export's own time limit (`--export-statement-timeout-ms`)
        let (mut conn, deadline) = self.db.connect_for_export()?;
        exports::in_snapshot(&mut conn, |c| {
            let transaction_time = self.now() - POLL_LAG_MICROS;
            let mut files = Files::new(dir, self.settings.file_max_resources);
            let mut last_renew = Instant::now();
            let mut total: u64 = 0;
            for t in &spec.types {
                // scopes are taken again: a type the token lost since is left out
                let Ok(limits) = export_limits(&access, t) else {
                    continue;
                };
                let mut conds = limits.conditions;
                conds.extend(job_conditions(&spec, t)?);
                let sort = Sort::default();
                let mut after: Option<String> = None;
                loop {
                    if self.stopping() {
                        return Err(RunError::Stopping);
                    }
                    let page = after.as_ref().map(|id| Page {
                        backward: false,
                        keys: Vec::new(),
                        id: id.clone(),
                    });
                    let q = SearchQuery {
                        tenant: &job.tenant,
                        res_type: t,
                        conditions: &conds,
                        sort: &sort,
                        page: page.as_ref(),
                        limit: PAGE,
                    };
                    let rows = {
                        let _armed = deadline.arm();
                        crate::db::query::search(c, &q)?
                    };
                    for row in &rows {
                        if let Some(body) = &row.body {
                            files.write(t, body.as_bytes())?;
                            total += 1;
                        }
                    }
                    if last_renew.elapsed() >= RENEW {
                        self.renew(job, format!("{total} resources written ({t})"))?;
                        last_renew = Instant::now();
                    }
                    if !self.settings.pause.is_zero() {
                        std::thread::sleep(self.settings.pause);
                    }
                    if (rows.len() as i64) < PAGE {
                        break;
                    }
                    after = rows.last().map(|r| r.res_id.clone());
                }
            }
            let output = files.close()?;
            let mut error = Vec::new();
            if !spec.notes.is_empty() {
                let mut notes = Files::new(dir, u64::MAX);
                for n in &spec.notes {
                    let line = fhir_mapping::operation_outcome(&[fhir_mapping::Issue {
                        severity: fhir_mapping::Severity::Warning,
                        code: fhir_mapping::IssueType::NotSupported,
                        diagnostics: n.clone(),
                        expression: None,
                        position: None,
                    }]);
                    notes.write("OperationOutcome", line.to_string().as_bytes())?;
                }
                error = notes.close()?;
            }
            Ok(Produced {
                attempt: job.attempts,
                transaction_time,
                output,
                error,
            })
        })
    }

    /// Removes expired jobs with their files, and files no job names any longer (of a
    /// job cancelled while another process wrote it).
    fn sweep(&self) -> Result<(), RunError> {
        let now = self.now();
        let expired = self
            .db
            .write(move |c| Ok::<_, ApiError>(exports::expired(c, now, 100)?))?;
        for (tenant, id) in expired {
            let key = (tenant.clone(), id.clone());
            let removed = self.db.write(move |c| {
                Ok::<_, ApiError>(exports::remove_expired(c, &key.0, &key.1, now)?)
            })?;
            if removed {
                remove_dir(&self.settings.dir.join(&id));
            }
        }
        let Ok(entries) = std::fs::read_dir(&self.settings.dir) else {
            return Ok(());
        };
        let stale: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m.elapsed().is_ok_and(|a| a > Duration::from_secs(600)))
            })
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let names = stale.clone();
        let known = self
            .db
            .write(move |c| Ok::<_, ApiError>(exports::existing(c, &names)?))?;
        for name in stale.iter().filter(|n| !known.contains(n)) {
            remove_dir(&self.settings.dir.join(name));
        }
        Ok(())
    }
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, "removing export files failed");
    }
}

/// The NDJSON files of a job: one or more per type.
struct Files<'a> {
    dir: &'a Path,
    max_per_file: u64,
    current: Option<(String, std::io::BufWriter<std::fs::File>)>,
    done: Vec<FileEntry>,
}

impl<'a> Files<'a> {
    fn new(dir: &'a Path, max_per_file: u64) -> Self {
        Files {
            dir,
            max_per_file: max_per_file.max(1),
            current: None,
            done: Vec::new(),
        }
    }

    fn write(&mut self, resource_type: &str, line: &[u8]) -> std::io::Result<()> {
        let full = self
            .done
            .last()
            .is_some_and(|f| f.count >= self.max_per_file);
        let other_type = self
            .done
            .last()
            .is_none_or(|f| f.resource_type != resource_type);
        if self.current.is_none() || other_type || full {
            self.close_current()?;
            let n = self
                .done
                .iter()
                .filter(|f| f.resource_type == resource_type)
                .count()
                + 1;
            let file = format!("{resource_type}-{n}.ndjson");
            let f = std::fs::File::create(self.dir.join(&file))?;
            self.current = Some((file.clone(), std::io::BufWriter::with_capacity(1 << 20, f)));
            self.done.push(FileEntry {
                resource_type: resource_type.to_string(),
                file,
                count: 0,
            });
        }
        if let Some((_, w)) = &mut self.current {
            w.write_all(line)?;
            w.write_all(b"\n")?;
        }
        if let Some(last) = self.done.last_mut() {
            last.count += 1;
        }
        Ok(())
    }

    fn close_current(&mut self) -> std::io::Result<()> {
        if let Some((_, w)) = self.current.take() {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
        }
        Ok(())
    }

    fn close(mut self) -> std::io::Result<Vec<FileEntry>> {
        self.close_current()?;
        Ok(self.done)
    }
}

/// A kick-off: checks the client's unfinished jobs, stores the job and wakes a worker.
/// Returns the job's id.
pub async fn accept(
    db: &Db,
    workers: Option<&ExportWorkers>,
    access: &Access,
    request: String,
    spec: &Spec,
    now: i64,
) -> Result<String, ApiError> {
    let spec_json =
        serde_json::to_string(spec).map_err(|e| ApiError::internal_from("serialising JSON", e))?;
    let id = uuid::Uuid::now_v7().to_string();
    let (tenant, client, job) = (access.tenant.clone(), access.client.clone(), id.clone());
    let group = match &spec.level {
        Level::Group { id } => Some(id.clone()),
        _ => None,
    };
    let accepted = db.write(move |c| {
        if let Some(g) = &group
            && !crate::db::store::exists(
                c,
                crate::db::store::Key {
                    tenant: &tenant,
                    res_type: "Group",
                    res_id: g,
                },
            )?
        {
            return Ok(Err(ApiError::NotFound(format!("Group/{g} does not exist"))));
        }
        if exports::unfinished_of_client(c, &tenant, &client)? >= MAX_UNFINISHED_PER_CLIENT {
            return Ok(Err(ApiError::Busy(
                format!(
                    "at most {MAX_UNFINISHED_PER_CLIENT} exports of a client run at once: wait for one to finish, or cancel one"
                ),
                30,
            )));
        }
        exports::insert(c, &tenant, &job, &client, &request, &spec_json, now)?;
        Ok::<_, ApiError>(Ok(()))
    })?;
    accepted?;
    if let Some(w) = workers {
        w.wake();
    }
    Ok(id)
}
