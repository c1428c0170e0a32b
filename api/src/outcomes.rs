//! Outcome measures: the due questionnaire Tasks of the measures a program assigns
//! (made when the program is active: at its start, every N days or weeks, at
//! discharge), the check of a QuestionnaireResponse against its Questionnaire before it
//! is stored, its score (an Observation, with the change from baseline and whether the
//! minimal clinically important difference is reached) written in the same
//! transaction, and the series `$outcomes` answers.
//!
//! Everything here but the jobs runs inside the transaction of the write that caused it.

use std::time::Duration;

use fhir_mapping::hep::measures::{self, Instrument};
use fhir_mapping::hep::outcome_task::{self, Occasion};
use fhir_mapping::hep::program;
use fhir_mapping::{Issue, IssueType};
use jiff::SignedDuration;
use serde_json::Value;

use crate::clock::{from_micros, instant_string};
use crate::commit::commit_built;
use crate::db::outcomes::{self as sql, AssignmentRow, MeasureTaskRow, ScoreRow};
use crate::db::store;
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;
use crate::sessions::{SessionSettings, load_json, patient_tz};

type JsonObject = serde_json::Map<String, Value>;

/// How long a due measure stays open.
const WINDOW: SignedDuration = SignedDuration::from_hours(24 * 7);
const DAY_MICROS: i64 = 86_400_000_000;

fn local_id<'a>(reference: Option<&'a Value>, kind: &str) -> Option<&'a str> {
    reference?
        .get("reference")?
        .as_str()?
        .strip_prefix(kind)?
        .strip_prefix('/')
        .filter(|id| !id.contains('/'))
}

/// The canonical a response answers, without its version.
fn questionnaire_of(json: &JsonObject) -> Option<&str> {
    let c = json.get("questionnaire")?.as_str()?;
    Some(c.split('|').next().unwrap_or(c))
}

/// The program a response is based on (`basedOn` CarePlan/x).
fn plan_of(json: &JsonObject) -> Option<&str> {
    json.get("basedOn")?
        .as_array()?
        .iter()
        .find_map(|r| local_id(Some(r), "CarePlan"))
}

/// Questionnaires read and parsed, by (tenant, id) with the version read: a response is
/// checked against the one stored, parsed once per version.
type Parsed = std::collections::HashMap<(String, String), (i64, std::sync::Arc<JsonObject>)>;
static QUESTIONNAIRES: std::sync::LazyLock<std::sync::Mutex<Parsed>> =
    std::sync::LazyLock::new(Default::default);
/// Entries kept at most (the cache is emptied when it would hold more).
const CACHED: usize = 1024;

/// The clinic's Questionnaire a canonical names, as stored.
fn questionnaire(
    conn: &mut AnyConnection,
    tenant: &str,
    canonical: &str,
) -> Result<Option<std::sync::Arc<JsonObject>>, ApiError> {
    let found = store::by_canonical(conn, tenant, &["Questionnaire"], &[canonical.to_string()])?;
    for (_, id) in found {
        let key = store::Key {
            tenant,
            res_type: "Questionnaire",
            res_id: &id,
        };
        let Some(version) = store::live_version(conn, key)? else {
            continue;
        };
        let cache_key = (tenant.to_string(), id.clone());
        let cached = QUESTIONNAIRES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key)
            .filter(|(v, _)| *v == version)
            .map(|(_, q)| q.clone());
        if let Some(q) = cached {
            return Ok(Some(q));
        }
        if let Some((version, q)) = load_json(conn, tenant, "Questionnaire", &id)? {
            let q = std::sync::Arc::new(q);
            let mut cache = QUESTIONNAIRES.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CACHED {
                cache.clear();
            }
            cache.insert(cache_key, (version, q.clone()));
            return Ok(Some(q));
        }
    }
    Ok(None)
}

/// Before a QuestionnaireResponse is stored: its answers are checked against the
/// clinic's Questionnaire it names (when the clinic has it), and a completed answer of
/// a scored measure must be scorable. Every problem is reported at once.
pub fn check_response(
    conn: &mut AnyConnection,
    tenant: &str,
    json: &JsonObject,
) -> Result<(), ApiError> {
    let Some(canonical) = questionnaire_of(json) else {
        return Ok(());
    };
    let Some(q) = questionnaire(conn, tenant, canonical)? else {
        return Ok(());
    };
    measures::check_response(&q, json).map_err(ApiError::Unprocessable)?;
    let completed = matches!(
        json.get("status").and_then(Value::as_str),
        Some("completed" | "amended")
    );
    if completed && let Some(instrument) = measures::instrument(canonical) {
        measures::score(instrument, json).map_err(ApiError::Unprocessable)?;
    }
    Ok(())
}

/// What a write means for outcome measures; called in the write's transaction with the
/// stored JSON before and after (`None`: absent or deleted).
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
        "CarePlan" => program_changed(conn, tenant, id, before, after, settings, now),
        "QuestionnaireResponse" => response_changed(conn, tenant, id, before, after, settings, now),
        _ => Ok(()),
    }
}

fn read_program(j: Option<&JsonObject>) -> Option<program::ProgramView> {
    j.filter(|j| program::claims_profile(j))
        .and_then(|j| program::read(j).ok())
}

/// Keeps the assignments and due Tasks of a program in step with it.
#[allow(clippy::too_many_arguments)]
fn program_changed(
    conn: &mut AnyConnection,
    tenant: &str,
    plan_id: &str,
    before: Option<&JsonObject>,
    after: Option<&JsonObject>,
    settings: &SessionSettings,
    now: i64,
) -> Result<(), ApiError> {
    use domain::program::Status as P;
    let (old, new) = (read_program(before), read_program(after));
    if old.as_ref().is_none_or(|o| o.measures.is_empty())
        && new.as_ref().is_none_or(|n| n.measures.is_empty())
    {
        return Ok(());
    }
    let rows = sql::assignments_of(conn, tenant, plan_id)?;
    let was_active = old.as_ref().is_some_and(|o| o.status == P::Active);
    match &new {
        Some(new) if new.status == P::Active => {
            let patient_id = new.patient.trim_start_matches("Patient/").to_string();
            for m in &new.measures {
                let every = m.every_days.map(|d| i64::from(d) * DAY_MICROS);
                match rows.iter().find(|r| r.questionnaire == m.questionnaire) {
                    None => {
                        let row = AssignmentRow {
                            tenant: tenant.to_string(),
                            care_plan_id: plan_id.to_string(),
                            questionnaire: m.questionnaire.clone(),
                            patient_id: patient_id.clone(),
                            started_at: now,
                            every_micros: every,
                            at_discharge: m.at_discharge,
                            next_due: every.map(|e| now + e),
                            active: true,
                        };
                        sql::put_assignment(conn, &row)?;
                        make_task(conn, &row, Occasion::Baseline, now, settings, now)?;
                        make_follow_ups(
                            conn,
                            &row,
                            now + settings.horizon.as_micros() as i64,
                            settings,
                            now,
                        )?;
                    }
                    Some(r) => {
                        // a changed interval counts from now; a resumed program goes on
                        let next_due = if r.every_micros == every {
                            r.next_due
                        } else {
                            every.map(|e| now + e)
                        };
                        let row = AssignmentRow {
                            every_micros: every,
                            at_discharge: m.at_discharge,
                            next_due,
                            active: true,
                            ..r.clone()
                        };
                        sql::put_assignment(conn, &row)?;
                        make_follow_ups(
                            conn,
                            &row,
                            now + settings.horizon.as_micros() as i64,
                            settings,
                            now,
                        )?;
                    }
                }
            }
            // measures taken out of the program: no more Tasks
            for r in rows.iter().filter(|r| {
                r.active
                    && !new
                        .measures
                        .iter()
                        .any(|m| m.questionnaire == r.questionnaire)
            }) {
                sql::put_assignment(
                    conn,
                    &AssignmentRow {
                        active: false,
                        ..r.clone()
                    },
                )?;
                cancel_open(
                    conn,
                    tenant,
                    plan_id,
                    Some(&r.questionnaire),
                    "prescription-changed",
                    now,
                )?;
            }
        }
        new if was_active => {
            for r in rows.iter().filter(|r| r.active) {
                sql::put_assignment(
                    conn,
                    &AssignmentRow {
                        active: false,
                        ..r.clone()
                    },
                )?;
            }
            let completed = new.as_ref().is_some_and(|n| n.status == P::Completed);
            let reason = match new.as_ref().map(|n| n.status) {
                Some(P::OnHold) => "program-on-hold",
                _ => "program-ended",
            };
            cancel_open(conn, tenant, plan_id, None, reason, now)?;
            if completed && let Some(new) = new {
                for m in new.measures.iter().filter(|m| m.at_discharge) {
                    if let Some(r) = rows.iter().find(|r| r.questionnaire == m.questionnaire) {
                        make_task(conn, r, Occasion::Discharge, now, settings, now)?;
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Makes the follow-ups of an assignment due before `until`.
fn make_follow_ups(
    conn: &mut AnyConnection,
    row: &AssignmentRow,
    until: i64,
    settings: &SessionSettings,
    now: i64,
) -> Result<(), ApiError> {
    let (Some(every), Some(mut next)) = (row.every_micros, row.next_due) else {
        return Ok(());
    };
    if !row.active || next > until {
        return Ok(());
    }
    while next <= until {
        make_task(conn, row, Occasion::FollowUp, next, settings, now)?;
        next += every;
    }
    sql::put_assignment(
        conn,
        &AssignmentRow {
            next_due: Some(next),
            ..row.clone()
        },
    )?;
    Ok(())
}

/// Makes one due measure Task, open from `from` for a week (or until the next one).
fn make_task(
    conn: &mut AnyConnection,
    row: &AssignmentRow,
    occasion: Occasion,
    from: i64,
    settings: &SessionSettings,
    now: i64,
) -> Result<(), ApiError> {
    let Some(instrument) = measures::instrument(&row.questionnaire) else {
        return Ok(());
    };
    let patient = format!("Patient/{}", row.patient_id);
    let tz = patient_tz(conn, &row.tenant, &patient, settings)?;
    let window = match row.every_micros {
        Some(e) if occasion != Occasion::Discharge => WINDOW.min(SignedDuration::from_micros(e)),
        _ => WINDOW,
    };
    let due_from = from_micros(from);
    let due_until = due_from + window;
    let mut task = outcome_task::build(&outcome_task::NewMeasureTask {
        plan_id: &row.care_plan_id,
        patient: &patient,
        questionnaire: &row.questionnaire,
        title: instrument.title,
        occasion,
        due_from,
        due_until,
        tz: &tz,
        authored: &instant_string(now),
    });
    let id = crate::db::new_id();
    sql::insert_task(
        conn,
        &MeasureTaskRow {
            tenant: row.tenant.clone(),
            task_id: id.clone(),
            care_plan_id: row.care_plan_id.clone(),
            questionnaire: row.questionnaire.clone(),
            patient_id: row.patient_id.clone(),
            occasion: occasion.code().to_string(),
            due_from: from,
            due_until: crate::clock::to_micros(due_until),
            status: "requested".into(),
        },
    )?;
    if let Some(obj) = task.as_object_mut() {
        commit_built(conn, &row.tenant, "Task", &id, None, obj, now)?;
    }
    Ok(())
}

/// Closes a measure Task (`failed` or `cancelled`) with a reason.
fn close_task(
    conn: &mut AnyConnection,
    tenant: &str,
    task_id: &str,
    status: domain::occurrence::Status,
    reason: &str,
    now: i64,
) -> Result<(), ApiError> {
    sql::set_task_status(conn, tenant, task_id, status.code())?;
    let Some((version, mut task)) = load_json(conn, tenant, "Task", task_id)? else {
        return Ok(());
    };
    fhir_mapping::hep::session::close(&mut task, status, reason, &instant_string(now));
    commit_built(conn, tenant, "Task", task_id, Some(version), &mut task, now)
}

/// Cancels the open measure Tasks of a program (of one measure, when given).
fn cancel_open(
    conn: &mut AnyConnection,
    tenant: &str,
    plan_id: &str,
    questionnaire: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<(), ApiError> {
    for task_id in sql::open_tasks_of_plan(conn, tenant, plan_id, questionnaire)? {
        close_task(
            conn,
            tenant,
            &task_id,
            domain::occurrence::Status::Cancelled,
            reason,
            now,
        )?;
    }
    Ok(())
}

/// The id of the score Observation of a response (the same for every version of it).
fn observation_id(tenant: &str, response_id: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("{tenant}/QuestionnaireResponse/{response_id}/score").as_bytes(),
    )
    .to_string()
}

/// What a completed answer of a scored measure is: the instrument, the patient, when.
struct Answer<'a> {
    instrument: &'static Instrument,
    questionnaire: &'a str,
    patient_id: &'a str,
    plan_id: Option<&'a str>,
    at: i64,
}

fn answer_of(json: &JsonObject, now: i64) -> Option<Answer<'_>> {
    if !matches!(
        json.get("status").and_then(Value::as_str),
        Some("completed" | "amended")
    ) {
        return None;
    }
    let questionnaire = questionnaire_of(json)?;
    let instrument = measures::instrument(questionnaire)?;
    let patient_id = local_id(json.get("subject"), "Patient")?;
    let at = json
        .get("authored")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map_or(now, crate::clock::to_micros);
    Some(Answer {
        instrument,
        questionnaire,
        patient_id,
        plan_id: plan_of(json),
        at,
    })
}

/// Scores a response (or withdraws its score), completes the Task it answers.
#[allow(clippy::too_many_arguments)]
fn response_changed(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    before: Option<&JsonObject>,
    after: Option<&JsonObject>,
    settings: &SessionSettings,
    now: i64,
) -> Result<(), ApiError> {
    let obs_id = observation_id(tenant, id);
    let Some(answer) = after.and_then(|a| answer_of(a, now)) else {
        // no longer a scored answer: its score is withdrawn
        if sql::score_of(conn, tenant, id)?.is_some() {
            sql::forget_score(conn, tenant, id)?;
            if let Some((version, mut obs)) = load_json(conn, tenant, "Observation", &obs_id)? {
                obs.insert("status".into(), Value::String("entered-in-error".into()));
                commit_built(
                    conn,
                    tenant,
                    "Observation",
                    &obs_id,
                    Some(version),
                    &mut obs,
                    now,
                )?;
            }
        }
        return Ok(());
    };
    let Some(after) = after else { return Ok(()) };
    let score = measures::score(answer.instrument, after).map_err(ApiError::Unprocessable)?;
    let earlier: Vec<ScoreRow> = sql::scores_of_measure(
        conn,
        tenant,
        answer.patient_id,
        answer.questionnaire,
        answer.plan_id,
    )?
    .into_iter()
    .filter(|s| s.response_id != id)
    .collect();
    let baseline = earlier
        .iter()
        .filter(|s| s.scored_at <= answer.at)
        .min_by_key(|s| s.scored_at)
        .map(|s| s.score);
    let rule = &answer.instrument.rule;
    let patient = format!("Patient/{}", answer.patient_id);
    let plan = answer.plan_id.map(|p| format!("CarePlan/{p}"));
    let tz = patient_tz(conn, tenant, &patient, settings)?;
    let effective = from_micros(answer.at)
        .to_zoned(tz)
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    let obs = measures::score_observation(&measures::ScoreObservation {
        instrument: answer.instrument,
        response_id: id,
        patient: &patient,
        plan: plan.as_deref(),
        effective: &effective,
        score,
        baseline,
        mcid_reached: rule.improved(baseline, score),
        worsened: rule.worsened(baseline, score),
    });
    let mut obs = obs.as_object().cloned().unwrap_or_default();
    let existing = load_json(conn, tenant, "Observation", &obs_id)?;
    commit_built(
        conn,
        tenant,
        "Observation",
        &obs_id,
        existing.map(|(v, _)| v),
        &mut obs,
        now,
    )?;
    sql::put_score(
        conn,
        &ScoreRow {
            tenant: tenant.to_string(),
            response_id: id.to_string(),
            observation_id: obs_id.clone(),
            patient_id: answer.patient_id.to_string(),
            care_plan_id: answer.plan_id.map(str::to_string),
            questionnaire: answer.questionnaire.to_string(),
            scored_at: answer.at,
            score,
        },
    )?;
    // the first time it is answered, the due Task it answers is completed
    if before.and_then(|b| answer_of(b, now)).is_none()
        && let Some(task) = sql::open_task_for(
            conn,
            tenant,
            answer.patient_id,
            answer.questionnaire,
            answer.plan_id,
            now + DAY_MICROS,
        )?
        && let Some((version, mut json)) = load_json(conn, tenant, "Task", &task.task_id)?
    {
        outcome_task::complete(&mut json, id, Some(&obs_id), &instant_string(now));
        commit_built(
            conn,
            tenant,
            "Task",
            &task.task_id,
            Some(version),
            &mut json,
            now,
        )?;
        sql::set_task_status(conn, tenant, &task.task_id, "completed")?;
    }
    Ok(())
}

/// Whose outcomes are asked for.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Program(&'a str),
    Patient(&'a str),
}

/// The scores of each measure of a program or patient, oldest first, with the
/// patient's time zone.
pub struct OutcomesAnswer {
    pub tz: jiff::tz::TimeZone,
    /// (instrument, points, observation ids)
    pub series: Vec<(
        &'static Instrument,
        Vec<domain::outcome::Point>,
        Vec<String>,
    )>,
}

/// `$outcomes` of a program or a patient.
pub fn outcomes(
    conn: &mut AnyConnection,
    tenant: &str,
    target: Target<'_>,
    settings: &SessionSettings,
) -> Result<OutcomesAnswer, ApiError> {
    let (patient, rows) = match target {
        Target::Program(id) => {
            let (_, plan) = load_json(conn, tenant, "CarePlan", id)?
                .ok_or_else(|| ApiError::NotFound(format!("CarePlan/{id} does not exist")))?;
            let view = read_program(Some(&plan)).ok_or_else(|| {
                ApiError::Unprocessable(vec![
                    Issue::error(
                        IssueType::BusinessRule,
                        "outcomes are reported for a home exercise program (hep-program profile)",
                    )
                    .at("CarePlan.meta.profile"),
                ])
            })?;
            (view.patient, sql::scores_of(conn, tenant, Some(id), None)?)
        }
        Target::Patient(id) => {
            if load_json(conn, tenant, "Patient", id)?.is_none() {
                return Err(ApiError::NotFound(format!("Patient/{id} does not exist")));
            }
            (
                format!("Patient/{id}"),
                sql::scores_of(conn, tenant, None, Some(id))?,
            )
        }
    };
    let tz = patient_tz(conn, tenant, &patient, settings)?;
    let mut series = Vec::new();
    let mut by_measure: std::collections::BTreeMap<String, Vec<ScoreRow>> = Default::default();
    for r in rows {
        by_measure
            .entry(r.questionnaire.clone())
            .or_default()
            .push(r);
    }
    for (canonical, mut rows) in by_measure {
        let Some(instrument) = measures::instrument(&canonical) else {
            continue;
        };
        rows.sort_by(|a, b| (a.scored_at, &a.response_id).cmp(&(b.scored_at, &b.response_id)));
        let scores: Vec<(jiff::Timestamp, f64)> = rows
            .iter()
            .map(|r| (from_micros(r.scored_at), r.score))
            .collect();
        let points = domain::outcome::series(&instrument.rule, &scores);
        let observations = rows.into_iter().map(|r| r.observation_id).collect();
        series.push((instrument, points, observations));
    }
    Ok(OutcomesAnswer { tz, series })
}

/// Makes the follow-ups due within the horizon. Safe with several processes: each
/// follow-up is claimed by one. Returns how many assignments were moved on.
pub fn extend_assignments(
    db: &Db,
    settings: &SessionSettings,
    now: i64,
    batch: i64,
) -> Result<usize, ApiError> {
    let until = now + settings.horizon.as_micros() as i64;
    let rows =
        db.write(move |conn| Ok::<_, ApiError>(sql::follow_ups_before(conn, until, batch)?))?;
    let mut n = 0;
    for row in rows {
        let settings = settings.clone();
        let moved = db.write(move |conn| {
            let Some(was) = row.next_due else {
                return Ok::<_, ApiError>(false);
            };
            // claimed by moving it out of the scan; make_follow_ups sets the real next one
            if !sql::claim_follow_up(conn, &row, was, None)? {
                return Ok(false);
            }
            make_follow_ups(conn, &row, until, &settings, now)?;
            Ok(true)
        })?;
        n += usize::from(moved);
    }
    Ok(n)
}

/// Fails the measure Tasks whose window closed unanswered. Returns how many.
pub fn fail_missed(db: &Db, now: i64, batch: i64) -> Result<usize, ApiError> {
    let due = db.write(move |conn| Ok::<_, ApiError>(sql::overdue_tasks(conn, now, batch)?))?;
    let mut n = 0;
    for (tenant, task_id) in due {
        let failed = db.write(move |conn| {
            if !sql::claim_overdue(conn, &tenant, &task_id, now)? {
                return Ok::<_, ApiError>(false);
            }
            close_task(
                conn,
                &tenant,
                &task_id,
                domain::occurrence::Status::Failed,
                "not-performed",
                now,
            )?;
            Ok(true)
        })?;
        n += usize::from(failed);
    }
    Ok(n)
}

/// Runs the follow-up and missed-measure jobs every `every`, until the handle is dropped.
pub fn spawn_jobs(
    db: Db,
    settings: SessionSettings,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    every: Duration,
) -> crate::sessions::Jobs {
    let (d1, d2) = (db.clone(), db);
    crate::sessions::run_jobs(
        "outcome-jobs",
        clock,
        every,
        vec![
            (
                "outcome-follow-up",
                Box::new(move |now| extend_assignments(&d1, &settings, now, 100)),
            ),
            (
                "missed-measure",
                Box::new(move |now| fail_missed(&d2, now, 500)),
            ),
        ],
    )
}
