//! The exercise session profile of Task: one scheduled occurrence of a prescribed
//! exercise. The server creates them (`focus` the prescription, `basedOn` the program,
//! `for` and `owner` the patient, `restriction.period` the due window, status
//! `requested`); the patient's app completes them with outputs (sets and repetitions
//! done, pain 0-10 as LOINC 72514-3, difficulty, a note) or fails them ("could not do
//! it", with a reason); the server fails the ones whose window passed and cancels the
//! future ones when the program changes.

use domain::occurrence::{self, Report, ReportParts, Status};
use domain::schedule::Occurrence;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value, json};

use super::canonical;
use crate::outcome::{Issue, IssueType};

/// Canonical URL of the profile.
pub fn profile_url() -> String {
    canonical("StructureDefinition", "hep-exercise-session")
}

/// The code system of what a patient reports (Task.output types), besides pain.
pub fn report_system() -> String {
    canonical("CodeSystem", "exercise-report")
}

/// The code system of the reasons a session is failed or cancelled.
pub fn reason_system() -> String {
    canonical("CodeSystem", "session-status-reason")
}

/// The extension the server sets on a session completed after its window.
pub fn late_extension_url() -> String {
    canonical("StructureDefinition", "completed-late")
}

/// LOINC 72514-3, pain severity 0-10.
pub const PAIN: (&str, &str, &str) = (
    "http://loinc.org",
    "72514-3",
    "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
);

/// Output types of the exercise-report code system: (code, display, value type).
pub const REPORT_CODES: &[(&str, &str, &str)] = &[
    ("sets-done", "Sets done", "valueInteger"),
    (
        "reps-done",
        "Repetitions done (one output per set, or one in all)",
        "valueInteger",
    ),
    (
        "difficulty",
        "Difficulty, 0 (very easy) to 10 (could not be harder)",
        "valueInteger",
    ),
    ("note", "A note from the patient", "valueString"),
];

/// Reasons of the session-status-reason code system.
pub const REASONS: &[(&str, &str)] = &[
    ("not-performed", "Not performed: its window passed"),
    ("could-not-do", "The patient could not do it"),
    (
        "prescription-changed",
        "The prescription was replaced or ended",
    ),
    ("program-on-hold", "The program is on hold"),
    ("program-ended", "The program was completed or revoked"),
];

/// Whether a resource claims the profile (`meta.profile`).
pub fn claims_profile(json: &Map<String, Value>) -> bool {
    super::claims(json, &profile_url())
}

/// An instant as FHIR `dateTime`, in the patient's offset (`2026-03-02T08:00:00+01:00`).
fn local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// What the server needs to create one session.
pub struct NewSession<'a> {
    pub plan_id: &'a str,
    pub request_id: &'a str,
    /// `Patient/...`
    pub patient: &'a str,
    /// The dose in words (the prescription's `patientInstruction`).
    pub instruction: &'a str,
    pub occurrence: &'a Occurrence,
    pub tz: &'a TimeZone,
    /// FHIR instant of creation.
    pub authored: &'a str,
}

/// The Task of a new session (no id or meta yet).
pub fn build(s: &NewSession<'_>) -> Value {
    let mut task = json!({
        "resourceType": "Task",
        "meta": {"profile": [profile_url()]},
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}],
                 "text": "Exercise session"},
        "focus": {"reference": format!("ServiceRequest/{}", s.request_id)},
        "basedOn": [{"reference": format!("CarePlan/{}", s.plan_id)}],
        "for": {"reference": s.patient},
        "owner": {"reference": s.patient},
        "authoredOn": s.authored,
        "lastModified": s.authored,
        "restriction": {"period": {
            "start": local(s.occurrence.due_from, s.tz),
            "end": local(s.occurrence.due_until, s.tz)
        }}
    });
    if !s.instruction.is_empty() {
        task["description"] = json!(s.instruction);
    }
    task
}

/// A session read from its Task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub status: Status,
    /// `CarePlan/...`
    pub plan: String,
    /// `ServiceRequest/...`
    pub request: String,
    /// `Patient/...`
    pub patient: String,
    pub due_from: Timestamp,
    pub due_until: Timestamp,
    pub report: Report,
    /// When the patient did it (executionPeriod end, else start).
    pub executed_at: Option<Timestamp>,
    /// The statusReason code, when given.
    pub reason: Option<String>,
}

fn reference(v: Option<&Value>) -> Option<&str> {
    v.and_then(|v| v.get("reference")).and_then(Value::as_str)
}

fn instant(v: Option<&Value>) -> Option<Timestamp> {
    let s = v?.as_str()?;
    s.parse::<Timestamp>().ok()
}

/// Reads and checks a Task against the profile, reporting every problem.
pub fn read(json: &Map<String, Value>) -> Result<SessionView, Vec<Issue>> {
    let mut issues = Vec::new();
    let mut need = |ok: bool, at: &str, code: IssueType, msg: &str| {
        if !ok {
            issues.push(Issue::error(code, msg).at(format!("Task.{at}")));
        }
    };
    let status = json
        .get("status")
        .and_then(Value::as_str)
        .and_then(Status::from_code);
    need(
        status.is_some(),
        "status",
        IssueType::Value,
        "an exercise session is requested, completed, failed or cancelled",
    );
    let request = reference(json.get("focus")).filter(|r| r.starts_with("ServiceRequest/"));
    need(
        request.is_some(),
        "focus",
        IssueType::Required,
        "focus is the exercise prescription (a ServiceRequest)",
    );
    let plan = json
        .get("basedOn")
        .and_then(Value::as_array)
        .and_then(|b| b.iter().find_map(|r| reference(Some(r))))
        .filter(|r| r.starts_with("CarePlan/"));
    need(
        plan.is_some(),
        "basedOn",
        IssueType::Required,
        "basedOn is the program (a CarePlan)",
    );
    let patient = reference(json.get("for")).filter(|r| r.starts_with("Patient/"));
    need(
        patient.is_some(),
        "for",
        IssueType::Required,
        "for is the patient",
    );
    need(
        reference(json.get("owner")).is_some() && reference(json.get("owner")) == patient,
        "owner",
        IssueType::Value,
        "owner is the patient",
    );
    let period = json.get("restriction").and_then(|r| r.get("period"));
    let due_from = instant(period.and_then(|p| p.get("start")));
    let due_until = instant(period.and_then(|p| p.get("end")));
    need(
        due_from.is_some() && due_until.is_some(),
        "restriction.period",
        IssueType::Required,
        "restriction.period is the due window, with start and end to the second",
    );
    let execution = json.get("executionPeriod");
    let executed_at = instant(execution.and_then(|p| p.get("end")))
        .or_else(|| instant(execution.and_then(|p| p.get("start"))));
    need(
        status != Some(Status::Completed) || executed_at.is_some(),
        "executionPeriod",
        IssueType::Required,
        "a completed session says when it was done (executionPeriod, to the second)",
    );
    let reason = json
        .get("statusReason")
        .and_then(|r| r.get("coding"))
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("system").and_then(Value::as_str) == Some(&reason_system()))
        })
        .and_then(|c| c.get("code"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let reason_text = json
        .get("statusReason")
        .and_then(|r| r.get("text"))
        .is_some();
    need(
        reason
            .as_deref()
            .is_none_or(|r| REASONS.iter().any(|(c, _)| *c == r)),
        "statusReason",
        IssueType::Value,
        "statusReason is a code of the session-status-reason code system",
    );
    need(
        status != Some(Status::Failed) || reason.is_some() || reason_text,
        "statusReason",
        IssueType::Required,
        "a failed session gives its reason (statusReason; could-not-do from the patient)",
    );
    let report = read_outputs(json, status, &mut issues);
    match (
        status,
        plan,
        request,
        patient,
        due_from,
        due_until,
        report,
        issues.is_empty(),
    ) {
        (
            Some(status),
            Some(plan),
            Some(request),
            Some(patient),
            Some(f),
            Some(u),
            Some(report),
            true,
        ) => Ok(SessionView {
            status,
            plan: plan.to_string(),
            request: request.to_string(),
            patient: patient.to_string(),
            due_from: f,
            due_until: u,
            report,
            executed_at,
            reason,
        }),
        _ => Err(issues),
    }
}

/// The outputs of a Task as a checked report.
fn read_outputs(
    json: &Map<String, Value>,
    status: Option<Status>,
    issues: &mut Vec<Issue>,
) -> Option<Report> {
    let mut parts = ReportParts::default();
    let outputs = json.get("output").and_then(Value::as_array);
    let system = report_system();
    for (i, o) in outputs.into_iter().flatten().enumerate() {
        let at = format!("Task.output[{i}]");
        let coding = o
            .get("type")
            .and_then(|t| t.get("coding"))
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter().find_map(|c| {
                    let s = c.get("system").and_then(Value::as_str)?;
                    let code = c.get("code").and_then(Value::as_str)?;
                    if s == PAIN.0 && code == PAIN.1 {
                        Some(("pain", "valueInteger"))
                    } else if s == system {
                        REPORT_CODES
                            .iter()
                            .find(|(c, _, _)| *c == code)
                            .map(|(c, _, v)| (*c, *v))
                    } else {
                        None
                    }
                })
            });
        let Some((code, value_type)) = coding else {
            issues.push(
                Issue::error(
                    IssueType::Value,
                    "an output's type is LOINC 72514-3 (pain) or a code of the exercise-report code system",
                )
                .at(format!("{at}.type")),
            );
            continue;
        };
        if code != "note" && status != Some(Status::Completed) {
            issues.push(
                Issue::error(
                    IssueType::BusinessRule,
                    "only a completed session reports what was done (a note may come with any)",
                )
                .at(at.clone()),
            );
        }
        let Some(value) = o.get(value_type) else {
            issues.push(
                Issue::error(
                    IssueType::Value,
                    format!("`{code}` is given as {value_type}"),
                )
                .at(format!("{at}.value[x]")),
            );
            continue;
        };
        match code {
            "note" => parts.note = value.as_str().map(str::to_string),
            _ => {
                let n = value.as_i64().unwrap_or(i64::MIN);
                match code {
                    "sets-done" => parts.sets_done = Some(n),
                    "reps-done" => parts.reps_done.push(n),
                    "pain" => parts.pain = Some(n),
                    _ => parts.difficulty = Some(n),
                }
            }
        }
    }
    match Report::new(parts) {
        Ok(r) => Some(r),
        Err(errors) => {
            issues.extend(
                errors
                    .into_iter()
                    .map(|e| Issue::error(IssueType::Value, e.to_string()).at("Task.output")),
            );
            None
        }
    }
}

/// Checks a change of a session by a client: an allowed transition, and the schedule
/// parts (focus, program, patient, window) unchanged.
pub fn check_change(old: &SessionView, new: &SessionView) -> Result<(), Vec<Issue>> {
    let mut issues = Vec::new();
    if (old.status != new.status || old.status == Status::Completed)
        && let Err(e) = occurrence::transition(old.status, new.status)
    {
        issues.push(Issue::error(IssueType::BusinessRule, e.to_string()).at("Task.status"));
    }
    for (same, at) in [
        (old.request == new.request, "focus"),
        (old.plan == new.plan, "basedOn"),
        (old.patient == new.patient, "for"),
        (
            old.due_from == new.due_from && old.due_until == new.due_until,
            "restriction.period",
        ),
    ] {
        if !same {
            issues.push(
                Issue::error(
                    IssueType::BusinessRule,
                    "the schedule of a session is set by the server and does not change",
                )
                .at(format!("Task.{at}")),
            );
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

/// Whether a completed session was done after its window closed.
pub fn is_late(view: &SessionView) -> bool {
    view.status == Status::Completed && view.executed_at.is_some_and(|t| t > view.due_until)
}

/// The server's parts of a session written by a client: the late flag, and
/// `lastModified`.
pub fn apply_generated(json: &mut Map<String, Value>, view: &SessionView, now: &str) {
    let url = late_extension_url();
    let mut extensions: Vec<Value> = json
        .get("extension")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter(|x| x.get("url").and_then(Value::as_str) != Some(&url))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if is_late(view) {
        extensions.push(json!({"url": url, "valueBoolean": true}));
    }
    if extensions.is_empty() {
        json.remove("extension");
    } else {
        json.insert("extension".into(), Value::Array(extensions));
    }
    json.insert("lastModified".into(), json!(now));
}

/// Sets a session's status to failed or cancelled by the server, with its reason.
pub fn close(json: &mut Map<String, Value>, status: Status, reason: &str, now: &str) {
    let display = REASONS
        .iter()
        .find(|(c, _)| *c == reason)
        .map_or(reason, |(_, d)| d);
    json.insert("status".into(), json!(status.code()));
    json.insert(
        "statusReason".into(),
        json!({"coding": [{"system": reason_system(), "code": reason, "display": display}]}),
    );
    json.insert("lastModified".into(), json!(now));
}

/// The Observation of the pain score a session reports (no id yet): LOINC 72514-3,
/// `basedOn` the prescription, `derivedFrom` the Task.
pub fn pain_observation(task_id: &str, view: &SessionView, effective: &str) -> Option<Value> {
    let pain = view.report.pain()?;
    Some(json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [{"system": PAIN.0, "code": PAIN.1, "display": PAIN.2}], "text": "Pain during the exercise (0-10)"},
        "subject": {"reference": view.patient},
        "basedOn": [{"reference": view.request}],
        "derivedFrom": [{"reference": format!("Task/{task_id}")}],
        "effectiveDateTime": effective,
        "valueInteger": pain.get()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn occurrence() -> Occurrence {
        let tz = TimeZone::get("Europe/Paris").expect("tz");
        let day = date(2026, 3, 2);
        Occurrence {
            date: day,
            slot: 0,
            due_from: day
                .at(8, 0, 0, 0)
                .to_zoned(tz.clone())
                .expect("z")
                .timestamp(),
            due_until: day.at(20, 0, 0, 0).to_zoned(tz).expect("z").timestamp(),
        }
    }

    fn task() -> Map<String, Value> {
        let tz = TimeZone::get("Europe/Paris").expect("tz");
        let occ = occurrence();
        let t = build(&NewSession {
            plan_id: "p1",
            request_id: "r1",
            patient: "Patient/x",
            instruction: "Bridge: 3 sets of 10 repetitions.",
            occurrence: &occ,
            tz: &tz,
            authored: "2026-03-01T10:00:00Z",
        });
        t.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_new_session_reads_back() {
        let t = task();
        assert_eq!(
            t["restriction"]["period"]["start"],
            "2026-03-02T08:00:00+01:00"
        );
        let v = read(&t).expect("valid");
        assert_eq!(v.status, Status::Requested);
        assert_eq!(v.request, "ServiceRequest/r1");
        assert_eq!(v.due_until, occurrence().due_until);
    }

    #[test]
    fn completion_with_outputs_and_every_problem_at_once() {
        let mut t = task();
        t.insert("status".into(), json!("completed"));
        t.insert(
            "executionPeriod".into(),
            json!({"end": "2026-03-02T21:30:00+01:00"}),
        );
        let sys = report_system();
        t.insert("output".into(), json!([
            {"type": {"coding": [{"system": sys, "code": "sets-done"}]}, "valueInteger": 3},
            {"type": {"coding": [{"system": sys, "code": "reps-done"}]}, "valueInteger": 10},
            {"type": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]}, "valueInteger": 4},
            {"type": {"coding": [{"system": sys, "code": "note"}]}, "valueString": "knee ok"}
        ]));
        let v = read(&t).expect("valid");
        assert_eq!(v.report.pain().map(|p| p.get()), Some(4));
        assert_eq!(v.report.done_volume(3, 10), 30);
        assert!(is_late(&v));
        let obs = pain_observation("t1", &v, "2026-03-02T21:30:00+01:00").expect("pain");
        assert_eq!(obs["derivedFrom"][0]["reference"], "Task/t1");
        assert_eq!(obs["valueInteger"], 4);

        let mut bad = t.clone();
        bad.remove("executionPeriod");
        bad.insert("output".into(), json!([
            {"type": {"coding": [{"system": sys, "code": "mood"}]}, "valueInteger": 3},
            {"type": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]}, "valueInteger": 14},
            {"type": {"coding": [{"system": sys, "code": "sets-done"}]}, "valueString": "3"}
        ]));
        let issues = read(&bad).expect_err("invalid");
        let at: Vec<&str> = issues
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        assert_eq!(
            at,
            [
                "Task.executionPeriod",
                "Task.output[0].type",
                "Task.output[2].value[x]",
                "Task.output"
            ]
        );
    }

    #[test]
    fn changes_follow_the_lifecycle_and_keep_the_schedule() {
        let old = read(&task()).expect("valid");
        let mut done = old.clone();
        done.status = Status::Completed;
        assert!(check_change(&old, &done).is_ok());
        assert!(check_change(&done, &done).is_err(), "completed is final");
        let mut moved = old.clone();
        moved.due_until = old.due_until + jiff::Span::new().hours(5);
        let issues = check_change(&old, &moved).expect_err("moved");
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("Task.restriction.period")
        );
        let mut t = task();
        close(
            &mut t,
            Status::Failed,
            "not-performed",
            "2026-03-02T19:00:00Z",
        );
        let v = read(&t).expect("valid");
        assert_eq!(
            (v.status, v.reason.as_deref()),
            (Status::Failed, Some("not-performed"))
        );
        let mut failed_without_reason = task();
        failed_without_reason.insert("status".into(), json!("failed"));
        assert!(read(&failed_without_reason).is_err());
    }
}
