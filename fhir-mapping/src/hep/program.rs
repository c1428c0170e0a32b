//! The home exercise program profile of CarePlan: intent `plan`, the exercise-therapy
//! category, the patient as subject, one `activity.reference` per prescribed exercise
//! (an exercise-prescription ServiceRequest of the same patient). The server writes the
//! narrative from the prescriptions: every exercise with its whole dose in words.

use domain::program::Status;
use serde_json::{Map, Value, json};

use super::canonical;
use super::prescription::{self, EXERCISE_THERAPY, PrescriptionView};
use crate::outcome::{Issue, IssueType};

/// Canonical URL of the profile.
pub fn profile_url() -> String {
    canonical("StructureDefinition", "hep-program")
}

/// Whether a resource claims the profile (`meta.profile`).
pub fn claims_profile(json: &Map<String, Value>) -> bool {
    super::claims(json, &profile_url())
}

/// A program read from its CarePlan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramView {
    pub status: Status,
    pub patient: String,
    pub title: Option<String>,
    /// `ServiceRequest/...` of each exercise activity, in order.
    pub exercises: Vec<String>,
    /// The index in `activity` of each of `exercises`.
    pub exercise_activities: Vec<usize>,
    /// The outcome measures the program assigns (activities with a `detail`).
    pub measures: Vec<MeasureAssignment>,
    /// The remote therapeutic monitoring episode (`rtm-episode` extension), if any.
    pub rtm: Option<RtmEpisode>,
}

/// An outcome measure assigned to a program: a `CarePlan.activity.detail` of kind
/// `Task` whose `instantiatesCanonical` names the Questionnaire, answered at the
/// program's start, then every `scheduledTiming.repeat.period` days or weeks when
/// given, and at discharge when the `measure-at-discharge` extension says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureAssignment {
    /// The Questionnaire's canonical URL (without a version).
    pub questionnaire: String,
    /// Days between answers after the first; `None`: at the start only.
    pub every_days: Option<u32>,
    pub at_discharge: bool,
    /// Its index in `CarePlan.activity`.
    pub activity: usize,
}

/// A remote therapeutic monitoring episode of a program: its first day and, once it
/// ended, its last (dates in the patient's time zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmEpisode {
    pub start: jiff::civil::Date,
    pub end: Option<jiff::civil::Date>,
}

/// URL of the extension asking for a measure at discharge.
pub fn at_discharge_url() -> String {
    canonical("StructureDefinition", "measure-at-discharge")
}

/// URL of the extension stating a program's remote therapeutic monitoring episode.
pub fn rtm_episode_url() -> String {
    canonical("StructureDefinition", "rtm-episode")
}

/// Reads one measure activity's detail; `None` when it is not one (stopped, cancelled).
fn read_measure(detail: &Value, i: usize, issues: &mut Vec<Issue>) -> Option<MeasureAssignment> {
    let at = |p: &str| format!("CarePlan.activity[{i}].detail{p}");
    let status = detail.get("status").and_then(Value::as_str).unwrap_or("");
    if matches!(
        status,
        "cancelled" | "stopped" | "entered-in-error" | "completed"
    ) {
        return None;
    }
    if detail.get("kind").and_then(Value::as_str) != Some("Task") {
        issues.push(
            Issue::error(
                IssueType::Value,
                "an outcome measure of a program is an activity detail of kind Task naming its Questionnaire in instantiatesCanonical",
            )
            .at(at(".kind")),
        );
        return None;
    }
    let Some(questionnaire) = detail
        .pointer("/instantiatesCanonical/0")
        .and_then(Value::as_str)
        .map(|c| c.split('|').next().unwrap_or(c).to_string())
    else {
        issues.push(
            Issue::error(
                IssueType::Required,
                "name the outcome measure's Questionnaire in instantiatesCanonical",
            )
            .at(at(".instantiatesCanonical")),
        );
        return None;
    };
    let mut every_days = None;
    if let Some(timing) = detail.get("scheduledTiming") {
        let repeat = timing.get("repeat");
        let period = repeat
            .and_then(|r| r.get("period"))
            .and_then(Value::as_f64)
            .filter(|p| p.fract() == 0.0 && *p >= 1.0 && *p <= 520.0);
        let unit = repeat
            .and_then(|r| r.get("periodUnit"))
            .and_then(Value::as_str);
        let frequency = repeat
            .and_then(|r| r.get("frequency"))
            .and_then(Value::as_u64)
            .unwrap_or(1);
        match (period, unit, frequency) {
            (Some(p), Some("d"), 1) => every_days = Some(p as u32),
            (Some(p), Some("wk"), 1) => every_days = Some(p as u32 * 7),
            _ => issues.push(
                Issue::error(
                    IssueType::Value,
                    "a measure's schedule is once every N days or weeks: scheduledTiming.repeat with period N (1 to 520), periodUnit d or wk, and frequency 1 if stated",
                )
                .at(at(".scheduledTiming")),
            ),
        }
    }
    let at_discharge = detail
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(at_discharge_url().as_str()))
        .and_then(|e| e.get("valueBoolean"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Some(MeasureAssignment {
        questionnaire,
        every_days,
        at_discharge,
        activity: i,
    })
}

/// Reads the program's `rtm-episode` extension (a Period of dates).
fn read_rtm(json: &Map<String, Value>, issues: &mut Vec<Issue>) -> Option<RtmEpisode> {
    let url = rtm_episode_url();
    let (i, ext) = json
        .get("extension")
        .and_then(Value::as_array)?
        .iter()
        .enumerate()
        .find(|(_, e)| e.get("url").and_then(Value::as_str) == Some(url.as_str()))?;
    let at = format!("CarePlan.extension[{i}].value.ofType(Period)");
    let date = |k: &str| -> Result<Option<jiff::civil::Date>, ()> {
        match ext.get("valuePeriod").and_then(|p| p.get(k)) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .and_then(|s| s.get(..10))
                .and_then(|s| s.parse::<jiff::civil::Date>().ok())
                .map(Some)
                .ok_or(()),
        }
    };
    match (date("start"), date("end")) {
        (Ok(Some(start)), Ok(end)) if end.is_none_or(|e| e >= start) => {
            Some(RtmEpisode { start, end })
        }
        _ => {
            issues.push(
                Issue::error(
                    IssueType::Value,
                    "a remote therapeutic monitoring episode is a valuePeriod with a start date (YYYY-MM-DD) and, once it ended, an end date on or after it",
                )
                .at(at),
            );
            None
        }
    }
}

/// Reads and checks a CarePlan against the profile, reporting every problem.
pub fn read(json: &Map<String, Value>) -> Result<ProgramView, Vec<Issue>> {
    let mut issues = Vec::new();
    let status = super::read_status(json, "CarePlan", &mut issues);
    let patient = super::read_patient(json, "CarePlan", &mut issues);
    let mut need = |ok: bool, at: &str, code: IssueType, msg: &str| {
        if !ok {
            issues.push(Issue::error(code, msg).at(format!("CarePlan.{at}")));
        }
    };
    need(
        json.get("intent").and_then(Value::as_str) == Some("plan"),
        "intent",
        IssueType::Value,
        "a home exercise program has intent plan",
    );
    need(
        super::has_coding(json.get("category"), EXERCISE_THERAPY.0, EXERCISE_THERAPY.1),
        "category",
        IssueType::Required,
        "a category of SNOMED CT 229065009 (exercise therapy) is required",
    );
    let mut exercises = Vec::new();
    let mut exercise_activities = Vec::new();
    let mut measures = Vec::new();
    if let Some(activities) = json.get("activity").and_then(Value::as_array) {
        for (i, a) in activities.iter().enumerate() {
            match a.pointer("/reference/reference").and_then(Value::as_str) {
                Some(r) if r.starts_with("ServiceRequest/") => {
                    exercises.push(r.to_string());
                    exercise_activities.push(i);
                }
                None if a.get("detail").is_some() => {
                    if let Some(m) = a.get("detail").and_then(|d| read_measure(d, i, &mut issues)) {
                        if measures.iter().any(|o: &MeasureAssignment| o.questionnaire == m.questionnaire) {
                            issues.push(
                                Issue::error(
                                    IssueType::BusinessRule,
                                    "the program assigns this measure twice: one activity per measure",
                                )
                                .at(format!("CarePlan.activity[{i}].detail.instantiatesCanonical")),
                            );
                        } else {
                            measures.push(m);
                        }
                    }
                }
                _ => issues.push(
                    Issue::error(
                        IssueType::Value,
                        "each activity references an exercise prescription (ServiceRequest) or assigns an outcome measure (a detail of kind Task naming its Questionnaire)",
                    )
                    .at(format!("CarePlan.activity[{i}]")),
                ),
            }
        }
    }
    let rtm = read_rtm(json, &mut issues);
    match (status, patient, issues.is_empty()) {
        (Some(status), Some(patient), true) => Ok(ProgramView {
            status,
            patient,
            title: json
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_string),
            exercises,
            exercise_activities,
            measures,
            rtm,
        }),
        _ => Err(issues),
    }
}

/// Checks the prescriptions the program lists (looked up by the caller) and writes the
/// narrative. `prescriptions` holds, per activity, the stored ServiceRequest if found.
pub fn apply_generated(
    json: &mut Map<String, Value>,
    view: &ProgramView,
    prescriptions: &[Option<Map<String, Value>>],
) -> Result<(), Vec<Issue>> {
    let mut issues = Vec::new();
    let mut read_ok: Vec<PrescriptionView> = Vec::new();
    for (i, found) in prescriptions.iter().enumerate() {
        let activity = view.exercise_activities.get(i).copied().unwrap_or(i);
        let at = format!("CarePlan.activity[{activity}].reference");
        match found
            .as_ref()
            .filter(|p| prescription::claims_profile(p))
            .map(prescription::read)
        {
            Some(Ok(p)) if p.patient == view.patient => read_ok.push(p),
            Some(Ok(_)) => issues.push(
                Issue::error(
                    IssueType::BusinessRule,
                    "the exercise is prescribed for another patient",
                )
                .at(at),
            ),
            _ => issues.push(
                Issue::error(
                    IssueType::BusinessRule,
                    format!(
                        "the activity is not an exercise prescription ({})",
                        prescription::profile_url()
                    ),
                )
                .at(at),
            ),
        }
    }
    if matches!(view.status, Status::Active) && view.exercises.is_empty() {
        issues.push(
            Issue::error(
                IssueType::BusinessRule,
                "a program needs at least one prescribed exercise to be active",
            )
            .at("CarePlan.activity"),
        );
    }
    for m in &view.measures {
        if super::measures::instrument(&m.questionnaire).is_none() {
            let known: Vec<String> = super::measures::INSTRUMENTS
                .iter()
                .map(|i| super::measures::url(i.id))
                .collect();
            issues.push(
                Issue::error(
                    IssueType::BusinessRule,
                    format!(
                        "the server schedules and scores the starter outcome measures: {}",
                        known.join(", ")
                    ),
                )
                .at(format!(
                    "CarePlan.activity[{}].detail.instantiatesCanonical",
                    m.activity
                )),
            );
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let title = view
        .title
        .clone()
        .unwrap_or_else(|| "Home exercise program".into());
    let mut div = format!(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p><b>{}</b></p>",
        super::escape(&title)
    );
    if read_ok.is_empty() {
        div.push_str("<p>No exercises yet.</p>");
    } else {
        div.push_str("<ul>");
        for p in &read_ok {
            div.push_str(&format!(
                "<li>{}</li>",
                super::escape(&prescription::instruction(p))
            ));
        }
        div.push_str("</ul>");
    }
    div.push_str("</div>");
    let text = json!({"status": "generated", "div": div});
    json.shift_remove("text");
    let pos = ["resourceType", "id", "meta", "implicitRules", "language"]
        .iter()
        .filter(|k| json.contains_key(**k))
        .count();
    json.shift_insert(pos, "text".into(), text);
    // apps that search by US Core's or the Physical Activity IG's category find programs
    super::add_category(json, super::ASSESS_PLAN);
    super::add_category(json, super::PHYSICAL_ACTIVITY);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn careplan(status: &str, activities: &[&str]) -> Map<String, Value> {
        let acts: Vec<Value> = activities
            .iter()
            .map(|r| json!({"reference": {"reference": r}}))
            .collect();
        let mut v = json!({
            "resourceType": "CarePlan",
            "meta": {"profile": [profile_url()]},
            "status": status,
            "intent": "plan",
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "229065009"}]}],
            "title": "Knee <phase 1>",
            "subject": {"reference": "Patient/p1"},
            "activity": acts
        });
        if activities.is_empty() {
            v.as_object_mut().map(|o| o.remove("activity"));
        }
        v.as_object().cloned().unwrap_or_default()
    }

    fn prescription_json(patient: &str) -> Map<String, Value> {
        let mut v = super::super::prescription::tests_support::example();
        v["subject"] = json!({"reference": patient});
        v["performer"] = json!([{"reference": patient}]);
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn narrative_lists_every_exercise_in_words() {
        let mut cp = careplan("active", &["ServiceRequest/a", "ServiceRequest/b"]);
        let view = read(&cp).unwrap_or_else(|e| panic!("{e:?}"));
        let rx = Some(prescription_json("Patient/p1"));
        apply_generated(&mut cp, &view, &[rx.clone(), rx]).unwrap_or_else(|e| panic!("{e:?}"));
        let div = cp["text"]["div"].as_str().unwrap_or_default();
        assert!(div.contains("<b>Knee &lt;phase 1&gt;</b>"), "{div}");
        assert_eq!(
            div.matches("<li>Quadriceps sets: 3 sets of 10 repetitions")
                .count(),
            2,
            "{div}"
        );
        let keys: Vec<&str> = cp.keys().map(String::as_str).collect();
        assert_eq!(keys[..3], ["resourceType", "meta", "text"]);
    }

    #[test]
    fn measures_and_the_monitoring_episode_are_read() {
        let mut cp = careplan("active", &["ServiceRequest/a"]);
        cp.insert(
            "extension".into(),
            json!([{"url": rtm_episode_url(), "valuePeriod": {"start": "2026-03-01"}}]),
        );
        if let Some(acts) = cp.get_mut("activity").and_then(Value::as_array_mut) {
            acts.insert(
                0,
                json!({"detail": {"kind": "Task", "status": "scheduled",
                "instantiatesCanonical": ["https://hep-fhir.org/fhir/Questionnaire/lefs|1.0.0"],
                "scheduledTiming": {"repeat": {"period": 4, "periodUnit": "wk"}},
                "extension": [{"url": at_discharge_url(), "valueBoolean": true}]}}),
            );
            acts.push(json!({"detail": {"kind": "Task", "status": "cancelled",
                "instantiatesCanonical": ["https://hep-fhir.org/fhir/Questionnaire/nprs"]}}));
        }
        let view = read(&cp).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(view.exercises, ["ServiceRequest/a"]);
        assert_eq!(view.exercise_activities, [1]);
        assert_eq!(
            view.measures,
            [MeasureAssignment {
                questionnaire: "https://hep-fhir.org/fhir/Questionnaire/lefs".into(),
                every_days: Some(28),
                at_discharge: true,
                activity: 0,
            }]
        );
        assert_eq!(
            view.rtm,
            Some(RtmEpisode {
                start: jiff::civil::date(2026, 3, 1),
                end: None
            })
        );
        // the narrative's exercise is found at its activity; the measure is one the
        // server scores
        let rx = Some(prescription_json("Patient/p1"));
        apply_generated(&mut cp, &view, &[rx]).unwrap_or_else(|e| panic!("{e:?}"));

        cp.insert(
            "extension".into(),
            json!([{"url": rtm_episode_url(), "valuePeriod": {"start": "2026-03-01", "end": "2026-02-01"}}]),
        );
        let issues = read(&cp).err().unwrap_or_default();
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("CarePlan.extension[0].value.ofType(Period)")
        );
    }

    #[test]
    fn refuses_what_is_not_a_program() {
        let mut cp = careplan("active", &[]);
        cp.insert("intent".into(), json!("order"));
        cp.insert(
            "activity".into(),
            json!([{"detail": {"status": "scheduled"}}, {"detail": {"kind": "Task", "status": "scheduled",
                "instantiatesCanonical": ["https://hep-fhir.org/fhir/Questionnaire/nprs"],
                "scheduledTiming": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "wk"}}}},
                {"reference": {"reference": "Goal/g1"}}]),
        );
        let issues = read(&cp).err().unwrap_or_default();
        let at: Vec<&str> = issues
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        assert_eq!(
            at,
            [
                "CarePlan.intent",
                "CarePlan.activity[0].detail.kind",
                "CarePlan.activity[1].detail.scheduledTiming",
                "CarePlan.activity[2]"
            ]
        );

        let mut cp = careplan("active", &[]);
        let view = read(&cp).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            apply_generated(&mut cp, &view, &[]).is_err(),
            "active without exercises"
        );

        let mut cp = careplan("draft", &["ServiceRequest/a", "ServiceRequest/b"]);
        let view = read(&cp).unwrap_or_else(|e| panic!("{e:?}"));
        let issues = apply_generated(
            &mut cp,
            &view,
            &[Some(prescription_json("Patient/other")), None],
        )
        .err()
        .unwrap_or_default();
        let at: Vec<&str> = issues
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        assert_eq!(
            at,
            [
                "CarePlan.activity[0].reference",
                "CarePlan.activity[1].reference"
            ]
        );
    }
}
