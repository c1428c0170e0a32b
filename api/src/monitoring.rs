//! Remote therapeutic monitoring: the episodes of programs (their `rtm-episode`
//! extension), the events that count (kept in step with the resources that stand for
//! them, in the write's transaction), and the 30-day periods `$rtm` answers with.

use std::collections::HashMap;

use domain::rtm::{Contact, ContactKind, Entry, Inputs, PeriodFigures};
use fhir_mapping::hep::monitoring::{self as events, Kind};
use fhir_mapping::hep::program;
use jiff::civil::Date;
use serde_json::Value;

use crate::clock::{from_micros, to_micros};
use crate::db::AnyConnection;
use crate::db::outcomes::{self as sql, EpisodeRow, EventRow};
use crate::error::ApiError;
use crate::sessions::{SessionSettings, patient_tz};

type JsonObject = serde_json::Map<String, Value>;

/// The types whose resources can count for monitoring (besides sessions) or state an
/// episode.
pub fn concerns(res_type: &str) -> bool {
    matches!(
        res_type,
        "CarePlan" | "QuestionnaireResponse" | "Observation" | "Procedure" | "Communication"
    )
}

/// The writes a patient's own app may not make, because they would count for monitoring
/// as the clinic's: logging treatment-management time, and a message in someone else's
/// name (a read receipt keeps the sender it had).
pub fn check_patient_write(
    patient: Option<&str>,
    res_type: &str,
    json: &JsonObject,
    current: Option<&JsonObject>,
) -> Result<(), ApiError> {
    let Some(patient) = patient else {
        return Ok(());
    };
    let sender = |j: &JsonObject| {
        j.get("sender")
            .and_then(|s| s.get("reference"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match res_type {
        "Procedure" if [Some(json), current].into_iter().flatten().any(events::is_time_entry) => {
            Err(ApiError::Forbidden(
                "treatment-management time is logged by the clinic's staff, not with a patient's token".into(),
            ))
        }
        "Communication" => {
            let allowed = match current {
                Some(stored) => sender(json) == sender(stored),
                None => sender(json).is_none_or(|s| s == format!("Patient/{patient}")),
            };
            if allowed {
                Ok(())
            } else {
                Err(ApiError::Forbidden(
                    "a patient's token sends messages as the patient (Communication.sender), and keeps the sender of a message it marks read".into(),
                ))
            }
        }
        _ => Ok(()),
    }
}

/// What a write means for monitoring; called in the write's transaction with the
/// stored JSON before and after (`None`: absent or deleted).
pub fn after_write(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    id: &str,
    before: Option<&JsonObject>,
    after: Option<&JsonObject>,
) -> Result<(), ApiError> {
    if res_type == "CarePlan" {
        if after.is_none() {
            sql::put_episode(conn, tenant, id, None)?;
            return Ok(());
        }
        let read = |j: Option<&JsonObject>| {
            j.filter(|j| program::claims_profile(j))
                .and_then(|j| program::read(j).ok())
        };
        let (old, new) = (read(before), read(after));
        let episode = |v: &Option<program::ProgramView>| v.as_ref().and_then(|p| p.rtm.clone());
        if episode(&old) == episode(&new)
            && old.as_ref().map(|o| &o.patient) == new.as_ref().map(|n| &n.patient)
        {
            return Ok(());
        }
        let row = new.as_ref().and_then(|n| {
            n.rtm.as_ref().map(|e| EpisodeRow {
                tenant: tenant.to_string(),
                care_plan_id: id.to_string(),
                patient_id: n.patient.trim_start_matches("Patient/").to_string(),
                start_date: e.start.to_string(),
                end_date: e.end.map(|d| d.to_string()),
            })
        });
        sql::put_episode(conn, tenant, id, row.as_ref())?;
        return Ok(());
    }
    if after.is_none() {
        // deleted: whatever it counted for goes (its stored JSON may not have been read)
        sql::put_event(conn, tenant, res_type, id, None)?;
        return Ok(());
    }
    let event = |j: Option<&JsonObject>| j.and_then(|j| events::event_of(res_type, j));
    let (old, new) = (event(before), event(after));
    if old == new {
        return Ok(());
    }
    let row = new.map(|e| EventRow {
        tenant: tenant.to_string(),
        res_type: res_type.to_string(),
        res_id: id.to_string(),
        patient_id: e.patient,
        at: to_micros(e.at),
        kind: e.kind.code().to_string(),
        minutes: i64::from(e.minutes),
        who: e.who,
        what: e.what,
    });
    sql::put_event(conn, tenant, res_type, id, row.as_ref())?;
    Ok(())
}

/// Records the monitoring events of the resources stored before the server kept them
/// (a database made by an earlier release): once, at start, in batches; safe to repeat.
/// Returns how many resources were read.
pub fn backfill_events(db: &crate::db::Db) -> Result<usize, ApiError> {
    const SETTING: &str = "monitoring-events-version";
    const VERSION: &str = "1";
    const TYPES: &[&str] = &[
        "Communication",
        "Observation",
        "Procedure",
        "QuestionnaireResponse",
    ];
    let current = db.write(|conn| Ok::<_, ApiError>(crate::db::store::setting(conn, SETTING)?))?;
    if current.as_deref() == Some(VERSION) {
        return Ok(0);
    }
    let mut after: Option<(String, String, String)> = None;
    let mut n = 0;
    loop {
        let from = after.clone();
        let done = db.write(move |conn| {
            let rows = crate::db::store::live_after(
                conn,
                Some(TYPES),
                from.as_ref()
                    .map(|(t, ty, id)| (t.as_str(), ty.as_str(), id.as_str())),
                500,
            )?;
            for (tenant, res_type, res_id, body) in &rows {
                let json: Option<JsonObject> =
                    body.as_deref().and_then(|b| serde_json::from_str(b).ok());
                after_write(conn, tenant, res_type, res_id, None, json.as_ref())?;
            }
            Ok::<_, ApiError>(
                rows.last()
                    .map(|(t, ty, id, _)| (t.clone(), ty.clone(), id.clone()))
                    .map(|last| (last, rows.len())),
            )
        })?;
        match done {
            Some((last, count)) => {
                n += count;
                after = Some(last);
            }
            None => break,
        }
    }
    db.write(|conn| Ok::<_, ApiError>(crate::db::store::set_setting(conn, SETTING, VERSION)?))?;
    Ok(n)
}

/// One program's periods.
pub struct EpisodePeriods {
    pub patient: String,
    pub program: String,
    pub start: Date,
    pub periods: Vec<PeriodFigures>,
}

/// The answer of `$rtm`.
pub struct RtmAnswer {
    pub from: Date,
    pub to: Date,
    pub episodes: Vec<EpisodePeriods>,
}

fn parse_date(v: &str, name: &str) -> Result<Date, ApiError> {
    v.get(..10)
        .filter(|_| v.len() == 10 || v.as_bytes().get(10) == Some(&b'T'))
        .and_then(|d| d.parse::<Date>().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("`{name}` is a date (YYYY-MM-DD), not `{v}`")))
}

/// `Patient/[id]/$rtm`: the patient's periods (404 when the patient does not exist).
pub fn patient_rtm(
    conn: &mut AnyConnection,
    tenant: &str,
    patient: &str,
    start: Option<&str>,
    end: Option<&str>,
    settings: &SessionSettings,
    now: i64,
) -> Result<RtmAnswer, ApiError> {
    let key = crate::db::store::Key {
        tenant,
        res_type: "Patient",
        res_id: patient,
    };
    if crate::db::store::current(conn, key)?.is_none_or(|c| c.deleted) {
        return Err(ApiError::NotFound(format!(
            "Patient/{patient} does not exist"
        )));
    }
    rtm(
        conn,
        tenant,
        Some(&[patient.to_string()]),
        start,
        end,
        settings,
        now,
    )
}

/// The periods of the episodes of a clinic's patients (of `only`, when given) that
/// overlap `[start, end]` (dates; default: the 30 days up to today in the clinic's
/// default time zone), as of `now`.
pub fn rtm(
    conn: &mut AnyConnection,
    tenant: &str,
    only: Option<&[String]>,
    start: Option<&str>,
    end: Option<&str>,
    settings: &SessionSettings,
    now: i64,
) -> Result<RtmAnswer, ApiError> {
    let today = from_micros(now)
        .to_zoned(settings.default_tz.clone())
        .date();
    let to = match end {
        Some(v) => parse_date(v, "end")?,
        None => today,
    };
    let from = match start {
        Some(v) => parse_date(v, "start")?,
        None => to.checked_sub(jiff::Span::new().days(29)).unwrap_or(to),
    };
    if to < from {
        return Err(ApiError::BadRequest("`end` is before `start`".into()));
    }
    let episodes = sql::episodes(conn, tenant, only)?;
    // the periods that overlap [from, to] run at most 30 days before it; a day's
    // instants lie within 14 hours of UTC midnight either side
    let lo = from.checked_sub(jiff::Span::new().days(31)).unwrap_or(from);
    let hi = to.checked_add(jiff::Span::new().days(31)).unwrap_or(to);
    let edge = |d: Date, extra_hours: i64| {
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| to_micros(z.timestamp()) + extra_hours * 3_600_000_000)
            .map_err(|e| ApiError::internal_from("period bounds", e))
    };
    let (lo, hi) = (edge(lo, -15)?, edge(hi, 15)?);
    let wanted: std::collections::HashSet<&str> =
        episodes.iter().map(|e| e.patient_id.as_str()).collect();
    let mut inputs: HashMap<String, Inputs> = HashMap::new();
    let filter = only;
    sql::each_completion(conn, tenant, filter, lo, hi, |patient, at| {
        if wanted.contains(patient.as_str()) {
            inputs
                .entry(patient)
                .or_default()
                .data
                .push(from_micros(at));
        }
    })?;
    sql::each_event(conn, tenant, filter, lo, hi, |row| {
        if !wanted.contains(row.patient_id.as_str()) {
            return;
        }
        let at = from_micros(row.at);
        let input = inputs.entry(row.patient_id).or_default();
        match Kind::from_code(&row.kind) {
            Some(Kind::Data) => input.data.push(at),
            Some(Kind::Time) => input.entries.push(Entry {
                at,
                minutes: u32::try_from(row.minutes).unwrap_or(0),
                who: row.who.unwrap_or_default(),
                what: row.what.unwrap_or_default(),
            }),
            Some(Kind::Call) => input.contacts.push(Contact {
                at,
                kind: ContactKind::Synchronous,
            }),
            Some(Kind::MessageFromClinician) => input.contacts.push(Contact {
                at,
                kind: ContactKind::MessageFromClinician,
            }),
            Some(Kind::MessageFromPatient) => input.contacts.push(Contact {
                at,
                kind: ContactKind::MessageFromPatient,
            }),
            None => {}
        }
    })?;
    let empty = Inputs::default();
    let mut out = Vec::with_capacity(episodes.len());
    let mut zones: HashMap<String, jiff::tz::TimeZone> = HashMap::new();
    for e in episodes {
        let Ok(start) = e.start_date.parse::<Date>() else {
            continue;
        };
        let last = e
            .end_date
            .as_deref()
            .and_then(|d| d.parse::<Date>().ok())
            .map_or(to, |d| d.min(to));
        if last < from {
            continue;
        }
        let tz = match zones.get(&e.patient_id) {
            Some(tz) => tz.clone(),
            None => {
                let tz = patient_tz(conn, tenant, &format!("Patient/{}", e.patient_id), settings)?;
                zones.insert(e.patient_id.clone(), tz.clone());
                tz
            }
        };
        let today = from_micros(now).to_zoned(tz.clone()).date();
        let input = inputs.get(&e.patient_id).unwrap_or(&empty);
        let periods = domain::rtm::periods(start, &tz, from, last, today, input);
        out.push(EpisodePeriods {
            patient: format!("Patient/{}", e.patient_id),
            program: format!("CarePlan/{}", e.care_plan_id),
            start,
            periods,
        });
    }
    Ok(RtmAnswer {
        from,
        to,
        episodes: out,
    })
}
