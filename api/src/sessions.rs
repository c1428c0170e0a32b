//! Exercise sessions (one Task per scheduled occurrence of a prescribed exercise): made
//! when a program is active, cancelled when it changes, kept in step with what the
//! patient's app reports, failed by the missed job when their window passes, extended
//! by the horizon job for long or open-ended programs; and the adherence figures.
//!
//! Everything here runs inside the transaction of the write that caused it.

use std::time::Duration;

use domain::adherence::{self, Adherence, Period, Record};
use domain::occurrence::Status;
use fhir_mapping::hep::{prescription, program, session};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::clock::{from_micros, instant_string, to_micros};
use crate::commit::commit_built;
use crate::db::sessions::{self as sql, AdherenceRow, ScheduleRow, SessionRow};
use crate::db::store::{self, Key};
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;

type JsonObject = serde_json::Map<String, Value>;

/// The rules of the server's writes: how sessions are made, and which endpoints a
/// Subscription may name.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// The time zone of patients whose record states none (`Patient.extension`
    /// `http://hl7.org/fhir/StructureDefinition/tz-code`).
    pub default_tz: TimeZone,
    /// Sessions are made this far ahead; the horizon job keeps it so.
    pub horizon: SignedDuration,
    /// The endpoints a Subscription may name (checked when it is written).
    pub endpoints: crate::subscriptions::EndpointPolicy,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            default_tz: TimeZone::UTC,
            horizon: SignedDuration::from_hours(24 * 14),
            endpoints: crate::subscriptions::EndpointPolicy::default(),
        }
    }
}

/// The extension that states a patient's IANA time zone.
pub const TZ_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/tz-code";

fn id_of<'a>(reference: &'a str, kind: &str) -> &'a str {
    reference
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(reference)
}

pub(crate) fn load_json(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    id: &str,
) -> Result<Option<(i64, JsonObject)>, ApiError> {
    let key = Key {
        tenant,
        res_type,
        res_id: id,
    };
    Ok(store::current(conn, key)?
        .filter(|c| !c.deleted)
        .and_then(|c| {
            let version = c.version;
            c.body
                .and_then(|b| serde_json::from_str::<JsonObject>(&b).ok())
                .map(|j| (version, j))
        }))
}

/// The patient's time zone: the `tz-code` extension of the Patient, else the default.
pub fn patient_tz(
    conn: &mut AnyConnection,
    tenant: &str,
    patient: &str,
    settings: &SessionSettings,
) -> Result<TimeZone, ApiError> {
    let stated =
        load_json(conn, tenant, "Patient", id_of(patient, "Patient"))?.and_then(|(_, p)| {
            p.get("extension")?
                .as_array()?
                .iter()
                .find(|e| e.get("url").and_then(Value::as_str) == Some(TZ_EXTENSION))?
                .get("valueCode")?
                .as_str()
                .and_then(|name| TimeZone::get(name).ok())
        });
    Ok(stated.unwrap_or_else(|| settings.default_tz.clone()))
}

/// Makes the sessions of one prescription of an active program from `from` to `to`.
#[allow(clippy::too_many_arguments)]
fn make_sessions(
    conn: &mut AnyConnection,
    tenant: &str,
    plan_id: &str,
    request_id: &str,
    rx: &JsonObject,
    tz: &TimeZone,
    from: Timestamp,
    to: Timestamp,
    skip: &[i64],
    now: i64,
) -> Result<Option<Timestamp>, ApiError> {
    let Ok(view) = prescription::read(rx) else {
        return Ok(None);
    };
    let dose = view.prescription.dose();
    let schedule = view.prescription.schedule();
    let volume = i64::from(dose.prescribed_volume());
    let sets = i64::from(dose.sets().get());
    let reps = i64::from(dose.repetitions().map_or(1, |r| r.target()));
    let instruction = rx
        .get("patientInstruction")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let authored = instant_string(now);
    let patient_id = id_of(&view.patient, "Patient").to_string();
    let mut last = None;
    for occ in schedule.expand(tz, from, to) {
        // a window already over when the program starts is not scheduled
        if occ.due_until <= from_micros(now) || skip.contains(&to_micros(occ.due_from)) {
            continue;
        }
        let mut task = session::build(&session::NewSession {
            plan_id,
            request_id,
            patient: &view.patient,
            instruction,
            occurrence: &occ,
            tz,
            authored: &authored,
        });
        let id = crate::db::new_id();
        sql::insert(
            conn,
            &SessionRow {
                tenant: tenant.to_string(),
                task_id: id.clone(),
                care_plan_id: plan_id.to_string(),
                request_id: request_id.to_string(),
                patient_id: patient_id.clone(),
                due_from: to_micros(occ.due_from),
                due_until: to_micros(occ.due_until),
                slot: i64::from(occ.slot),
                status: Status::Requested.code().to_string(),
                completed_at: None,
                done_volume: None,
                prescribed_volume: volume,
                prescribed_sets: sets,
                prescribed_reps: reps,
                pain: None,
                difficulty: None,
            },
        )?;
        if let Some(obj) = task.as_object_mut() {
            commit_built(conn, tenant, "Task", &id, None, obj, now)?;
        }
        last = Some(occ.due_from);
    }
    Ok(last)
}

/// Schedules one prescription of an active program from now (or after what is already
/// scheduled) to the horizon, and remembers how far when its schedule goes on.
fn schedule_prescription(
    conn: &mut AnyConnection,
    tenant: &str,
    plan_id: &str,
    request_id: &str,
    settings: &SessionSettings,
    now: i64,
) -> Result<(), ApiError> {
    let Some((_, rx)) = load_json(conn, tenant, "ServiceRequest", request_id)? else {
        return Ok(());
    };
    let Ok(view) = prescription::read(&rx) else {
        return Ok(());
    };
    if view.prescription.status() != domain::program::Status::Active {
        return Ok(());
    }
    let tz = patient_tz(conn, tenant, &view.patient, settings)?;
    let now_ts = from_micros(now);
    // windows still open now (today's "any time" one began at midnight), after the
    // last one already scheduled
    let open_since = now_ts - SignedDuration::from_hours(24);
    let from = match sql::last_scheduled(conn, tenant, plan_id, request_id)? {
        Some(last) => from_micros(last + 1).max(open_since),
        None => open_since,
    };
    // a bounded schedule is made whole; an open-ended one up to the horizon
    let last_day = view.prescription.schedule().last_day();
    let to = match last_day.and_then(|d| d.tomorrow().ok()) {
        Some(after) => after
            .to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|e| ApiError::internal_from("end of schedule", e))?,
        None => now_ts + settings.horizon,
    };
    // a replacement does not repeat a window the prescription it replaces still has
    // (done, failed or under way today)
    let replaced: Vec<String> = rx
        .get("replaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("reference").and_then(Value::as_str))
        .map(|r| id_of(r, "ServiceRequest").to_string())
        .collect();
    let skip = if replaced.is_empty() {
        Vec::new()
    } else {
        sql::live_windows(conn, tenant, plan_id, &replaced, now)?
    };
    make_sessions(
        conn, tenant, plan_id, request_id, &rx, &tz, from, to, &skip, now,
    )?;
    if last_day.is_none() {
        sql::set_schedule(conn, tenant, plan_id, request_id, to_micros(to))?;
    } else {
        sql::drop_schedule(conn, tenant, Some(plan_id), Some(request_id))?;
    }
    Ok(())
}

/// Cancels the open sessions due from now on, of a program and/or a prescription.
fn cancel_open(
    conn: &mut AnyConnection,
    tenant: &str,
    plan_id: Option<&str>,
    request_id: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<(), ApiError> {
    // sessions not done whose window is open now or to come
    for task_id in sql::open_from(conn, tenant, plan_id, request_id, now)? {
        let Some((version, mut task)) = load_json(conn, tenant, "Task", &task_id)? else {
            continue;
        };
        session::close(&mut task, Status::Cancelled, reason, &instant_string(now));
        commit_built(
            conn,
            tenant,
            "Task",
            &task_id,
            Some(version),
            &mut task,
            now,
        )?;
        record(conn, tenant, &task_id, &task)?;
    }
    sql::drop_schedule(conn, tenant, plan_id, request_id)?;
    Ok(())
}

/// Keeps the session row of a Task in step with the Task.
fn record(
    conn: &mut AnyConnection,
    tenant: &str,
    task_id: &str,
    task: &JsonObject,
) -> Result<Option<session::SessionView>, ApiError> {
    let Ok(view) = session::read(task) else {
        return Ok(None);
    };
    let Some(mut row) = sql::of_task(conn, tenant, task_id)? else {
        return Ok(None);
    };
    row.status = view.status.code().to_string();
    if view.status == Status::Completed {
        row.completed_at = view.executed_at.map(to_micros);
        // the dose of the prescription in force when the session was made
        let sets = u8::try_from(row.prescribed_sets).unwrap_or(u8::MAX);
        let reps = u16::try_from(row.prescribed_reps).unwrap_or(u16::MAX);
        row.done_volume = Some(i64::from(view.report.done_volume(sets, reps)));
        row.pain = view.report.pain().map(|p| i64::from(p.get()));
        row.difficulty = view.report.difficulty().map(|d| i64::from(d.get()));
    }
    sql::report(conn, &row)?;
    Ok(Some(view))
}

/// The overall figures of sessions over `[start, end)` as of `now`.
fn overall(
    rows: Vec<AdherenceRow>,
    start: Timestamp,
    end: Timestamp,
    now: i64,
    tz: &TimeZone,
) -> adherence::Figures {
    adherence::compute(
        &records(rows),
        &Period {
            start,
            end,
            now: from_micros(now),
            tz: tz.clone(),
        },
    )
    .overall
}

/// The week of the program (0 for the first, counted from its first session's day) a
/// session is in, with the patient's time zone and the program's first day.
fn week_of(
    conn: &mut AnyConnection,
    tenant: &str,
    row: &SessionRow,
    settings: &SessionSettings,
) -> Result<Option<(TimeZone, jiff::civil::Date, i32)>, ApiError> {
    let Some(first) = sql::first_due(conn, tenant, &row.care_plan_id)? else {
        return Ok(None);
    };
    let tz = patient_tz(
        conn,
        tenant,
        &format!("Patient/{}", row.patient_id),
        settings,
    )?;
    let first_day = from_micros(first).to_zoned(tz.clone()).date();
    let day = from_micros(row.due_from).to_zoned(tz.clone()).date();
    let week = (day - first_day).get_days().max(0) / 7;
    Ok(Some((tz, first_day, week)))
}

/// Writes the summary of one program week when its figures changed.
fn refresh_summary(
    conn: &mut AnyConnection,
    tenant: &str,
    row: &SessionRow,
    tz: &TimeZone,
    first_day: jiff::civil::Date,
    week: i32,
    now: i64,
) -> Result<(), ApiError> {
    let patient = format!("Patient/{}", row.patient_id);
    let bound = |w: i32| -> Result<Timestamp, ApiError> {
        first_day
            .checked_add(jiff::Span::new().days(i64::from(w) * 7))
            .and_then(|d| d.to_zoned(tz.clone()))
            .map(|z| z.timestamp())
            .map_err(|e| ApiError::internal_from("week bounds", e))
    };
    let (start, end) = (bound(week)?, bound(week + 1)?);
    let rows = sql::of_plan_between(
        conn,
        tenant,
        &row.care_plan_id,
        to_micros(start),
        to_micros(end),
    )?;
    let open = rows.iter().any(|r| r.status == Status::Requested.code());
    let figures = overall(rows, start, end, now, tz);
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!(
            "{tenant}/CarePlan/{}/adherence-week/{week}",
            row.care_plan_id
        )
        .as_bytes(),
    )
    .to_string();
    let existing = load_json(conn, tenant, "Observation", &id)?;
    let was = existing
        .as_ref()
        .and_then(|(_, o)| o.get("status").and_then(Value::as_str))
        .unwrap_or("");
    // final once the week is over and every session of it is settled
    let status = if end > from_micros(now) || open {
        "preliminary"
    } else if was == "final" || was == "amended" {
        "amended"
    } else {
        "final"
    };
    let show = |t: Timestamp| {
        t.to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    let plan = format!("CarePlan/{}", row.care_plan_id);
    let obs = fhir_mapping::hep::adherence::week_observation(
        &fhir_mapping::hep::adherence::WeekSummary {
            id: &id,
            plan: &plan,
            patient: &patient,
            week: u32::try_from(week + 1).unwrap_or(1),
            start: &show(start),
            end: &show(end),
            status,
            figures: &figures,
        },
    );
    let mut obs = obs.as_object().cloned().unwrap_or_default();
    if let Some((_, old)) = &existing {
        // nothing changed: no new version
        let same = |k: &str| old.get(k) == obs.get(k);
        if ["status", "valueQuantity", "component", "dataAbsentReason"]
            .iter()
            .all(|k| same(k))
        {
            return Ok(());
        }
    }
    commit_built(
        conn,
        tenant,
        "Observation",
        &id,
        existing.map(|(v, _)| v),
        &mut obs,
        now,
    )
}

/// The active programs (hep-program CarePlans) whose activities list a prescription.
fn programs_listing(
    conn: &mut AnyConnection,
    tenant: &str,
    request_id: &str,
) -> Result<Vec<String>, ApiError> {
    let conditions = [store::Condition::token(
        "activity-reference",
        None,
        &format!("ServiceRequest/{request_id}"),
    )];
    let rows = store::search(
        conn,
        &store::SearchQuery::new(tenant, "CarePlan", &conditions, 100),
    )?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            r.body
                .as_deref()
                .and_then(|b| serde_json::from_str::<JsonObject>(b).ok())
                .filter(program::claims_profile)
                .and_then(|j| program::read(&j).ok())
                .is_some_and(|p| p.status == domain::program::Status::Active)
        })
        .map(|r| r.res_id)
        .collect())
}

/// What a write of a program, prescription or session means for the sessions; called
/// in the write's transaction with the stored JSON before and after (`None`: absent
/// or deleted).
#[allow(clippy::too_many_arguments)]
pub fn after_write(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    id: &str,
    before: Option<&JsonObject>,
    after: Option<&JsonObject>,
    settings: &SessionSettings,
    now: i64,
) -> Result<(), ApiError> {
    match res_type {
        "CarePlan" => {
            let read = |j: Option<&JsonObject>| {
                j.filter(|j| program::claims_profile(j))
                    .and_then(|j| program::read(j).ok())
            };
            let (old, new) = (read(before), read(after));
            if old.is_none() && new.is_none() {
                return Ok(());
            }
            use domain::program::Status as P;
            let was_active = old.as_ref().is_some_and(|o| o.status == P::Active);
            match new {
                Some(new) if new.status == P::Active => {
                    // prescriptions taken out of the program lose their future sessions
                    if let Some(old) = &old {
                        for r in old.exercises.iter().filter(|r| !new.exercises.contains(r)) {
                            cancel_open(
                                conn,
                                tenant,
                                Some(id),
                                Some(id_of(r, "ServiceRequest")),
                                "prescription-changed",
                                now,
                            )?;
                        }
                    }
                    for r in &new.exercises {
                        let rid = id_of(r, "ServiceRequest");
                        let fresh =
                            !was_active || !old.as_ref().is_some_and(|o| o.exercises.contains(r));
                        if fresh {
                            schedule_prescription(conn, tenant, id, rid, settings, now)?;
                        }
                    }
                }
                new if was_active => {
                    let reason = match new.map(|n| n.status) {
                        Some(P::OnHold) => "program-on-hold",
                        _ => "program-ended",
                    };
                    cancel_open(conn, tenant, Some(id), None, reason, now)?;
                }
                _ => {}
            }
        }
        "ServiceRequest" => {
            let active = |j: Option<&JsonObject>| {
                j.filter(|j| prescription::claims_profile(j))
                    .and_then(|j| prescription::read(j).ok())
                    .is_some_and(|v| v.prescription.status() == domain::program::Status::Active)
            };
            if active(before) && !active(after) {
                cancel_open(conn, tenant, None, Some(id), "prescription-changed", now)?;
            }
            // activated while an active program already lists it: its sessions start now
            if !active(before) && active(after) {
                for plan_id in programs_listing(conn, tenant, id)? {
                    schedule_prescription(conn, tenant, &plan_id, id, settings, now)?;
                }
            }
        }
        "Task" => {
            let Some(task) = after.filter(|t| session::claims_profile(t)) else {
                return Ok(());
            };
            let was_completed = before
                .and_then(|b| session::read(b).ok())
                .is_some_and(|v| v.status == Status::Completed);
            let view = record(conn, tenant, id, task)?;
            sql::queue_summary(conn, tenant, id)?;
            if let Some(view) = view
                && view.status == Status::Completed
                && !was_completed
                && let Some(obs) = session::pain_observation(
                    id,
                    &view,
                    &instant_string(view.executed_at.map_or(now, to_micros)),
                )
            {
                let mut obs = obs.as_object().cloned().unwrap_or_default();
                let obs_id = crate::db::new_id();
                commit_built(conn, tenant, "Observation", &obs_id, None, &mut obs, now)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Fails the sessions whose window closed without a report (status reason "not
/// performed"). Safe with several processes: each session is claimed by one. Returns
/// how many were failed.
pub fn fail_missed(db: &Db, now: i64, batch: i64) -> Result<usize, ApiError> {
    let due = db.write(move |conn| Ok::<_, ApiError>(sql::overdue(conn, now, batch)?))?;
    let mut n = 0;
    for (tenant, task_id) in due {
        let failed = db.write(move |conn| {
            if !sql::claim_missed(conn, &tenant, &task_id, now)? {
                return Ok::<_, ApiError>(false);
            }
            let Some((version, mut task)) = load_json(conn, &tenant, "Task", &task_id)? else {
                return Ok(false);
            };
            session::close(
                &mut task,
                Status::Failed,
                "not-performed",
                &instant_string(now),
            );
            commit_built(
                conn,
                &tenant,
                "Task",
                &task_id,
                Some(version),
                &mut task,
                now,
            )?;
            sql::queue_summary(conn, &tenant, &task_id)?;
            Ok(true)
        })?;
        n += usize::from(failed);
    }
    Ok(n)
}

/// Refreshes the weekly summaries of the sessions that changed (each week once per
/// run). Safe with several processes: each queued session is taken by one. Returns how
/// many weeks were refreshed.
pub fn refresh_summaries(
    db: &Db,
    settings: &SessionSettings,
    now: i64,
    batch: i64,
) -> Result<usize, ApiError> {
    let queued = db.write(move |conn| Ok::<_, ApiError>(sql::queued_summaries(conn, batch)?))?;
    // (tenant, program, week) refreshed in this run
    let mut done: std::collections::HashSet<(String, String, i32)> = Default::default();
    let mut n = 0;
    for (tenant, task_id) in queued {
        let settings = settings.clone();
        let seen = done.clone();
        let refreshed = db.write(move |conn| {
            if !sql::take_summary(conn, &tenant, &task_id)? {
                return Ok::<_, ApiError>(None);
            }
            let Some(row) = sql::of_task(conn, &tenant, &task_id)? else {
                return Ok(None);
            };
            let Some((tz, first_day, week)) = week_of(conn, &tenant, &row, &settings)? else {
                return Ok(None);
            };
            let key = (tenant.clone(), row.care_plan_id.clone(), week);
            if !seen.contains(&key) {
                refresh_summary(conn, &tenant, &row, &tz, first_day, week, now)?;
            }
            Ok(Some(key))
        })?;
        if let Some(key) = refreshed
            && done.insert(key)
        {
            n += 1;
        }
    }
    Ok(n)
}

/// Extends the schedules that end within the horizon. Safe with several processes:
/// each extension is claimed by one. Returns how many were extended.
pub fn extend_schedules(
    db: &Db,
    settings: &SessionSettings,
    now: i64,
    batch: i64,
) -> Result<usize, ApiError> {
    let before = to_micros(from_micros(now) + settings.horizon);
    let rows =
        db.write(move |conn| Ok::<_, ApiError>(sql::schedules_before(conn, before, batch)?))?;
    let mut n = 0;
    for s in rows {
        let settings = settings.clone();
        let extended = db.write(move |conn| {
            let s: &ScheduleRow = &s;
            if !sql::claim_schedule(conn, s, before)? {
                return Ok::<_, ApiError>(false);
            }
            schedule_prescription(
                conn,
                &s.tenant,
                &s.care_plan_id,
                &s.request_id,
                &settings,
                now,
            )?;
            Ok(true)
        })?;
        n += usize::from(extended);
    }
    Ok(n)
}

/// The background jobs of a server: they stop when this is dropped.
#[derive(Debug)]
pub struct Jobs {
    _stop: std::sync::mpsc::Sender<()>,
}

/// One background job: its name (for the log) and one round of it at a time (`now`, in
/// microseconds), answering how much it did.
pub(crate) type Job = (
    &'static str,
    Box<dyn FnMut(i64) -> Result<usize, ApiError> + Send>,
);

/// Runs `jobs` in turn every `every` on a thread named `name`, until the returned
/// handle is dropped. A job that fails (but for a database outage, which ends on its
/// own) is logged and runs again next round.
pub(crate) fn run_jobs(
    name: &'static str,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    every: Duration,
    mut jobs: Vec<Job>,
) -> Jobs {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let run = move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
            let now = to_micros(clock.now());
            for (job, round) in &mut jobs {
                if let Err(e) = round(now)
                    && crate::db::IsRetryable::outage(&e).is_none()
                {
                    tracing::warn!(error = %crate::error::chain(&e), job = *job, "background job failed; retried next round");
                }
            }
        }
    };
    if let Err(e) = std::thread::Builder::new().name(name.into()).spawn(run) {
        tracing::error!(error = %e, thread = name, "background jobs could not start");
    }
    Jobs { _stop: stop }
}

/// Runs the missed, horizon and summary jobs every `every`, until the returned handle
/// is dropped.
pub fn spawn_jobs(
    db: Db,
    settings: SessionSettings,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    every: Duration,
) -> Jobs {
    let (d1, d2, d3) = (db.clone(), db.clone(), db);
    let (s2, s3) = (settings.clone(), settings);
    run_jobs(
        "session-jobs",
        clock,
        every,
        vec![
            (
                "missed-session",
                Box::new(move |now| fail_missed(&d1, now, 500)),
            ),
            (
                "schedule",
                Box::new(move |now| extend_schedules(&d2, &s2, now, 100)),
            ),
            (
                "summary",
                Box::new(move |now| refresh_summaries(&d3, &s3, now, 1000)),
            ),
        ],
    )
}

/// The adherence record of a session.
fn record_of(r: AdherenceRow) -> Option<Record> {
    Some(Record {
        status: Status::from_code(&r.status)?,
        exercise: r.request_id,
        due_from: from_micros(r.due_from),
        due_until: from_micros(r.due_until),
        completed_at: r.completed_at.map(from_micros),
        done_volume: r.done_volume.and_then(|v| u32::try_from(v).ok()),
        prescribed_volume: u32::try_from(r.prescribed_volume).unwrap_or(0),
        pain: r.pain.and_then(|v| u8::try_from(v).ok()),
        difficulty: r.difficulty.and_then(|v| u8::try_from(v).ok()),
    })
}

/// The adherence records of sessions.
pub fn records(rows: Vec<AdherenceRow>) -> Vec<Record> {
    rows.into_iter().filter_map(record_of).collect()
}

/// Whose adherence is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Program(&'a str),
    Patient(&'a str),
}

/// Adherence figures with what they are about.
pub struct AdherenceAnswer {
    pub figures: Adherence,
    /// (prescription id, exercise name) of every prescription in the figures.
    pub exercises: Vec<(String, String)>,
    pub start: String,
    pub end: String,
    pub as_of: String,
}

/// A `start` or `end` parameter: a date is the start of that day in `tz` (for `end`,
/// the start of the next day: the date is included); a dateTime without an offset is
/// read in `tz`.
fn period_bound(value: &str, tz: &TimeZone, is_end: bool) -> Result<Timestamp, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "`{value}` is not a FHIR date or dateTime (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with an offset)"
        ))
    };
    if let Ok(t) = value.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(d) = value.parse::<jiff::civil::Date>() {
        let d = if is_end {
            d.tomorrow().map_err(|_| bad())?
        } else {
            d
        };
        return d
            .to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|_| bad());
    }
    value
        .parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(tz.clone()).ok())
        .map(|z| z.timestamp())
        .ok_or_else(bad)
}

/// Adherence of a program or a patient over a period (default: from the first session
/// to the end of the last), as of `now`.
pub fn adherence(
    conn: &mut AnyConnection,
    tenant: &str,
    target: Target<'_>,
    start: Option<&str>,
    end: Option<&str>,
    settings: &SessionSettings,
    now: i64,
) -> Result<AdherenceAnswer, ApiError> {
    let (patient, rows) = match target {
        Target::Program(id) => {
            let (_, plan) = load_json(conn, tenant, "CarePlan", id)?
                .ok_or_else(|| ApiError::NotFound(format!("CarePlan/{id} does not exist")))?;
            let view = program::read(&plan)
                .ok()
                .filter(|_| program::claims_profile(&plan))
                .ok_or_else(|| {
                    ApiError::Unprocessable(vec![
                        fhir_mapping::Issue::error(
                            fhir_mapping::IssueType::BusinessRule,
                            "adherence is computed for a home exercise program (hep-program profile)",
                        )
                        .at("CarePlan.meta.profile"),
                    ])
                })?;
            (view.patient, sql::of_plan(conn, tenant, id)?)
        }
        Target::Patient(id) => {
            if load_json(conn, tenant, "Patient", id)?.is_none() {
                return Err(ApiError::NotFound(format!("Patient/{id} does not exist")));
            }
            (format!("Patient/{id}"), sql::of_patient(conn, tenant, id)?)
        }
    };
    let tz = patient_tz(conn, tenant, &patient, settings)?;
    let now_ts = from_micros(now);
    let start = match start {
        Some(v) => period_bound(v, &tz, false)?,
        None => rows
            .iter()
            .map(|r| r.due_from)
            .min()
            .map_or(now_ts, from_micros),
    };
    let end = match end {
        Some(v) => period_bound(v, &tz, true)?,
        None => rows
            .iter()
            .map(|r| r.due_until)
            .max()
            .map_or(now_ts, from_micros),
    };
    if end < start {
        return Err(ApiError::BadRequest("`end` is before `start`".into()));
    }
    let period = Period {
        start,
        end,
        now: now_ts,
        tz: tz.clone(),
    };
    let figures = adherence::compute(&records(rows), &period);
    let mut exercises = Vec::new();
    for (rid, _) in &figures.exercises {
        let name = load_json(conn, tenant, "ServiceRequest", rid)?
            .and_then(|(_, rx)| {
                rx.get("code")
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "Exercise".into());
        exercises.push((rid.clone(), name));
    }
    let show = |t: Timestamp| {
        t.to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    Ok(AdherenceAnswer {
        start: show(start),
        end: show(end),
        as_of: show(figures.as_of),
        figures,
        exercises,
    })
}

/// Adherence of many patients: each one's overall figures, and the sum.
pub struct ClinicAnswer {
    /// Patient id, figures, active days (30).
    pub patients: Vec<(String, adherence::Figures, u32)>,
    pub overall: adherence::Figures,
    pub start: String,
    pub end: String,
    pub as_of: String,
}

/// Adherence of every patient of the tenant with sessions in the period (or of the
/// patients of `only`), default: the 28 days up to now. Sessions are streamed patient
/// by patient.
pub fn clinic_adherence(
    conn: &mut AnyConnection,
    tenant: &str,
    only: Option<&std::collections::HashSet<String>>,
    start: Option<&str>,
    end: Option<&str>,
    settings: &SessionSettings,
    now: i64,
) -> Result<ClinicAnswer, ApiError> {
    let tz = &settings.default_tz;
    let now_ts = from_micros(now);
    let end = match end {
        Some(v) => period_bound(v, tz, true)?,
        None => now_ts,
    };
    let start = match start {
        Some(v) => period_bound(v, tz, false)?,
        None => end - SignedDuration::from_hours(24 * 28),
    };
    if end < start {
        return Err(ApiError::BadRequest("`end` is before `start`".into()));
    }
    // the 30 days before the as-of instant count for active days
    let as_of = end.min(now_ts);
    let from = start.min(as_of - SignedDuration::from_hours(24 * 30));
    let mut by_patient: std::collections::HashMap<String, Vec<Record>> = Default::default();
    sql::each_of_tenant(conn, tenant, to_micros(from), to_micros(end), |row| {
        if only.is_some_and(|o| !o.contains(&row.patient_id)) {
            return;
        }
        match by_patient.get_mut(&row.patient_id) {
            Some(list) => list.extend(record_of(row)),
            None => {
                let patient = row.patient_id.clone();
                by_patient.insert(patient, record_of(row).into_iter().collect());
            }
        }
    })?;
    let mut by_patient: Vec<(String, Vec<Record>)> = by_patient.into_iter().collect();
    by_patient.sort_by(|a, b| a.0.cmp(&b.0));
    let mut overall = adherence::Figures::default();
    let mut patients = Vec::with_capacity(by_patient.len());
    for (patient, list) in by_patient {
        let tz = patient_tz(conn, tenant, &format!("Patient/{patient}"), settings)?;
        let (figures, active) = adherence::overall(
            &list,
            &Period {
                start,
                end,
                now: now_ts,
                tz,
            },
        );
        overall.add(&figures);
        patients.push((patient, figures, active));
    }
    let show = |t: Timestamp| {
        t.to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    Ok(ClinicAnswer {
        patients,
        overall,
        start: show(start),
        end: show(end),
        as_of: show(as_of),
    })
}

/// The adherence summary Observation of a whole program, written when the program is
/// completed (rewritten if it is completed again); its reference, or `None` when the
/// program had no sessions.
pub fn program_summary(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
    settings: &SessionSettings,
    now: i64,
) -> Result<Option<String>, ApiError> {
    let rows = sql::of_plan(conn, tenant, care_plan_id)?;
    let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.due_from).min(),
        rows.iter().map(|r| r.due_until).max(),
    ) else {
        return Ok(None);
    };
    let Some(patient) = rows.first().map(|r| format!("Patient/{}", r.patient_id)) else {
        return Ok(None);
    };
    let tz = patient_tz(conn, tenant, &patient, settings)?;
    let (start, end) = (from_micros(first), from_micros(last));
    let figures = overall(rows, start, end, now, &tz);
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("{tenant}/CarePlan/{care_plan_id}/adherence-program").as_bytes(),
    )
    .to_string();
    let show = |t: Timestamp| {
        t.to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    let plan = format!("CarePlan/{care_plan_id}");
    let obs = fhir_mapping::hep::adherence::program_observation(
        &fhir_mapping::hep::adherence::WeekSummary {
            id: &id,
            plan: &plan,
            patient: &patient,
            week: 0,
            start: &show(start),
            end: &show(end),
            status: "final",
            figures: &figures,
        },
    );
    let mut obs = obs.as_object().cloned().unwrap_or_default();
    let existing = load_json(conn, tenant, "Observation", &id)?;
    commit_built(
        conn,
        tenant,
        "Observation",
        &id,
        existing.map(|(v, _)| v),
        &mut obs,
        now,
    )?;
    Ok(Some(format!("Observation/{id}")))
}
