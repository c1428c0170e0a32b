//! The outcome-measure Task: one per due answer of a measure assigned to a program (at
//! its start, every N weeks, at discharge). Made by the server when the program is
//! active; completed by the server when the patient's QuestionnaireResponse arrives,
//! with the response and its score as outputs; failed when its window passes,
//! cancelled when the program stops. A client never writes one.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value, json};

use super::canonical;
use crate::outcome::{Issue, IssueType};

/// Canonical URL of the profile.
pub fn profile_url() -> String {
    canonical("StructureDefinition", "hep-outcome-task")
}

/// The code of the Task (the project's `outcome-measure` code system).
pub const TASK_CODE: &str = "answer-measure";

/// The code system of outcome measures and their Task, Observation and occasions.
pub fn code_system() -> String {
    canonical("CodeSystem", "outcome-measure")
}

/// The codes this module writes in the `outcome-measure` code system: (code, display).
pub const CODES: &[(&str, &str)] = &[
    (TASK_CODE, "Answer an outcome measure"),
    ("questionnaire", "The measure to answer (Task input)"),
    ("response", "The answers (Task output)"),
    ("score", "The score (Task output)"),
    ("baseline", "At the start of the program"),
    ("follow-up", "Follow-up during the program"),
    ("discharge", "At the end of the program"),
];

/// Whether a resource claims the profile (`meta.profile`).
pub fn claims_profile(json: &Map<String, Value>) -> bool {
    super::claims(json, &profile_url())
}

/// Why a measure is due: its first answer, a repeat, or the program's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occasion {
    Baseline,
    FollowUp,
    Discharge,
}

impl Occasion {
    /// The code (`baseline`, `follow-up`, `discharge`).
    pub fn code(self) -> &'static str {
        match self {
            Occasion::Baseline => "baseline",
            Occasion::FollowUp => "follow-up",
            Occasion::Discharge => "discharge",
        }
    }

    /// Words for a person.
    pub fn display(self) -> &'static str {
        match self {
            Occasion::Baseline => "At the start of the program",
            Occasion::FollowUp => "Follow-up during the program",
            Occasion::Discharge => "At the end of the program",
        }
    }
}

/// What the server needs to make one due measure.
pub struct NewMeasureTask<'a> {
    pub plan_id: &'a str,
    /// `Patient/...`
    pub patient: &'a str,
    /// The Questionnaire's canonical URL.
    pub questionnaire: &'a str,
    pub title: &'a str,
    pub occasion: Occasion,
    pub due_from: Timestamp,
    pub due_until: Timestamp,
    pub tz: &'a TimeZone,
    /// FHIR instant of the write.
    pub authored: &'a str,
}

fn local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// The Task of one due measure (no id yet).
pub fn build(t: &NewMeasureTask<'_>) -> Value {
    json!({
        "resourceType": "Task",
        "meta": {"profile": [profile_url()]},
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": code_system(), "code": TASK_CODE, "display": "Answer an outcome measure"}],
                 "text": format!("Answer: {}", t.title)},
        "description": format!("{}: {}", t.occasion.display(), t.title),
        "basedOn": [{"reference": format!("CarePlan/{}", t.plan_id)}],
        "for": {"reference": t.patient},
        "owner": {"reference": t.patient},
        "authoredOn": t.authored,
        "lastModified": t.authored,
        "reasonCode": {"coding": [{"system": code_system(), "code": t.occasion.code(), "display": t.occasion.display()}]},
        "restriction": {"period": {"start": local(t.due_from, t.tz), "end": local(t.due_until, t.tz)}},
        "input": [{
            "type": {"coding": [{"system": code_system(), "code": "questionnaire", "display": "The measure to answer"}]},
            "valueCanonical": t.questionnaire
        }]
    })
}

/// Marks a due measure answered: completed, with the response and its score Observation
/// as outputs.
pub fn complete(
    json: &mut Map<String, Value>,
    response_id: &str,
    observation: Option<&str>,
    now: &str,
) {
    json.insert("status".into(), json!("completed"));
    json.insert("lastModified".into(), json!(now));
    json.insert("executionPeriod".into(), json!({"end": now}));
    let mut output = vec![json!({
        "type": {"coding": [{"system": code_system(), "code": "response", "display": "The answers"}]},
        "valueReference": {"reference": format!("QuestionnaireResponse/{response_id}")}
    })];
    if let Some(obs) = observation {
        output.push(json!({
            "type": {"coding": [{"system": code_system(), "code": "score", "display": "The score"}]},
            "valueReference": {"reference": format!("Observation/{obs}")}
        }));
    }
    json.insert("output".into(), Value::Array(output));
}

/// The refusal of a client's write of a measure Task.
pub fn refuse_client_write() -> Vec<Issue> {
    vec![
        Issue::error(
            IssueType::BusinessRule,
            "outcome-measure Tasks are made by the server for the measures a program assigns, and completed when the patient's QuestionnaireResponse arrives; answer with a QuestionnaireResponse",
        )
        .at("Task.meta.profile"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, ParseLimits, parse_resource};

    #[test]
    fn a_due_and_an_answered_task_are_valid_r4() {
        let tz = TimeZone::get("Europe/Paris").unwrap_or(TimeZone::UTC);
        let from: Timestamp = "2026-03-01T08:00:00Z".parse().unwrap_or_default();
        let mut task = build(&NewMeasureTask {
            plan_id: "p1",
            patient: "Patient/x",
            questionnaire: "https://hep-fhir.org/fhir/Questionnaire/nprs",
            title: "Numeric Pain Rating Scale",
            occasion: Occasion::Baseline,
            due_from: from,
            due_until: from + jiff::SignedDuration::from_hours(24 * 7),
            tz: &tz,
            authored: "2026-03-01T08:00:00Z",
        });
        assert_eq!(
            task["restriction"]["period"]["start"],
            "2026-03-01T09:00:00+01:00"
        );
        let check = |v: &Value| {
            let bytes = serde_json::to_vec(v).unwrap_or_default();
            parse_resource(&bytes, Format::Json, &ParseLimits::default())
                .map(|_| ())
                .map_err(|e| format!("{e:?}"))
        };
        assert_eq!(check(&task), Ok(()));
        if let Some(obj) = task.as_object_mut() {
            assert!(claims_profile(obj));
            complete(obj, "r1", Some("o1"), "2026-03-02T10:00:00Z");
        }
        assert_eq!(check(&task), Ok(()));
        assert_eq!(
            task["output"][1]["valueReference"]["reference"],
            "Observation/o1"
        );
    }
}
