//! The exercise prescription profile of ServiceRequest: one prescribed exercise with
//! its dose (the dosage extension), its schedule (`occurrenceTiming`), the patient as
//! subject and performer, and the library exercise it instantiates. The server writes
//! `patientInstruction` and the narrative from the structured data, so that systems that
//! ignore the extension still show the right dose.

use domain::program::Prescription;
use serde_json::{Map, Value, json};

use super::{canonical, dosage, timing};
use crate::outcome::{Issue, IssueType};

/// Canonical URL of the profile.
pub fn profile_url() -> String {
    canonical("StructureDefinition", "hep-exercise-prescription")
}

/// SNOMED CT 229065009 |Exercise therapy|.
pub const EXERCISE_THERAPY: (&str, &str, &str) =
    ("http://snomed.info/sct", "229065009", "Exercise therapy");

/// Whether a resource claims the profile (`meta.profile`).
pub fn claims_profile(json: &Map<String, Value>) -> bool {
    super::claims(json, &profile_url())
}

/// A prescription read from its ServiceRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrescriptionView {
    pub prescription: Prescription,
    /// The exercise's name (`code.text` or the first coding's display).
    pub exercise_name: String,
    /// `Patient/...` of subject and performer.
    pub patient: String,
}

/// Reads and checks a ServiceRequest against the profile, reporting every problem.
pub fn read(json: &Map<String, Value>) -> Result<PrescriptionView, Vec<Issue>> {
    let mut issues = Vec::new();
    let status = super::read_status(json, "ServiceRequest", &mut issues);
    let subject = super::read_patient(json, "ServiceRequest", &mut issues);
    let mut need = |ok: bool, at: &str, code: IssueType, msg: &str| {
        if !ok {
            issues.push(Issue::error(code, msg).at(format!("ServiceRequest.{at}")));
        }
    };
    let intent = json.get("intent").and_then(Value::as_str);
    need(
        matches!(intent, Some("order" | "plan")),
        "intent",
        IssueType::Value,
        "intent is order or plan",
    );
    let category_ok =
        super::has_coding(json.get("category"), EXERCISE_THERAPY.0, EXERCISE_THERAPY.1);
    need(
        category_ok,
        "category",
        IssueType::Required,
        "a category of SNOMED CT 229065009 (exercise therapy) is required",
    );
    let exercise_name = json
        .get("code")
        .and_then(|c| {
            c.get("text")
                .and_then(Value::as_str)
                .or_else(|| c.pointer("/coding/0/display").and_then(Value::as_str))
        })
        .map(str::to_string);
    need(
        exercise_name.is_some(),
        "code",
        IssueType::Required,
        "the exercise needs a name (code.text or a coding with a display)",
    );
    let performer_ok = json
        .get("performer")
        .and_then(Value::as_array)
        .is_some_and(|p| {
            p.iter().any(|r| {
                r.get("reference").and_then(Value::as_str) == subject.as_deref()
                    && subject.is_some()
            })
        });
    need(
        performer_ok,
        "performer",
        IssueType::Required,
        "the patient who does the exercise is a performer",
    );
    let exercise = json
        .get("instantiatesCanonical")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .map(str::to_string);
    need(
        exercise
            .as_deref()
            .is_some_and(|c| c.contains("/ActivityDefinition/") && c.contains('|')),
        "instantiatesCanonical",
        IssueType::Required,
        "instantiatesCanonical names the library exercise with its version (url|version)",
    );

    let dose = super::collect(dosage::read_from(json, "ServiceRequest"), &mut issues);
    let schedule = match json.get("occurrenceTiming") {
        Some(t) => super::collect(
            timing::from_timing(t, "ServiceRequest.occurrenceTiming"),
            &mut issues,
        ),
        None => {
            issues.push(
                Issue::error(
                    IssueType::Required,
                    "the schedule is required (occurrenceTiming)",
                )
                .at("ServiceRequest.occurrenceTiming"),
            );
            None
        }
    };
    match (
        status,
        exercise_name,
        subject,
        exercise,
        dose,
        schedule,
        issues.is_empty(),
    ) {
        (
            Some(status),
            Some(name),
            Some(patient),
            Some(exercise),
            Some(dose),
            Some(schedule),
            true,
        ) => Ok(PrescriptionView {
            prescription: Prescription::restore(&exercise, dose, schedule, status),
            exercise_name: name,
            patient,
        }),
        _ => Err(issues),
    }
}

/// The whole dose in words, as `patientInstruction` carries it.
pub fn instruction(view: &PrescriptionView) -> String {
    format!(
        "{}: {}, {}.",
        view.exercise_name,
        view.prescription.dose(),
        view.prescription.schedule()
    )
}

/// Writes the generated parts: `patientInstruction`, the narrative (`text`, status
/// `generated`) and the words of the schedule in `occurrenceTiming.code.text`.
pub fn apply_generated(json: &mut Map<String, Value>, view: &PrescriptionView) {
    let words = instruction(view);
    let div = format!(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p><b>{}</b></p><p>{}</p></div>",
        super::escape(&view.exercise_name),
        super::escape(&words)
    );
    json.insert("text".into(), json!({"status": "generated", "div": div}));
    if let Some(t) = json
        .get_mut("occurrenceTiming")
        .and_then(Value::as_object_mut)
    {
        t.insert(
            "code".into(),
            json!({"text": view.prescription.schedule().to_string()}),
        );
    }
    json.insert("patientInstruction".into(), Value::String(words));
    // apps that search by the Physical Activity IG's category find every prescription
    super::add_category(json, super::PHYSICAL_ACTIVITY);
    reorder(json);
}

/// Puts the elements the server inserted in their canonical place.
fn reorder(json: &mut Map<String, Value>) {
    const ORDER: &[&str] = &[
        "resourceType",
        "id",
        "meta",
        "implicitRules",
        "language",
        "text",
        "contained",
        "extension",
        "modifierExtension",
        "identifier",
        "instantiatesCanonical",
        "instantiatesUri",
        "basedOn",
        "replaces",
        "requisition",
        "status",
        "intent",
        "category",
        "priority",
        "doNotPerform",
        "code",
        "orderDetail",
        "quantityQuantity",
        "quantityRatio",
        "quantityRange",
        "subject",
        "encounter",
        "occurrenceDateTime",
        "occurrencePeriod",
        "occurrenceTiming",
        "asNeededBoolean",
        "asNeededCodeableConcept",
        "authoredOn",
        "requester",
        "performerType",
        "performer",
        "locationCode",
        "locationReference",
        "reasonCode",
        "reasonReference",
        "insurance",
        "supportingInfo",
        "specimen",
        "bodySite",
        "note",
        "patientInstruction",
        "relevantHistory",
    ];
    let mut ordered = Map::new();
    for key in ORDER {
        if let Some(v) = json.shift_remove(*key) {
            ordered.insert((*key).to_string(), v);
        }
    }
    ordered.append(json);
    *json = ordered;
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A valid exercise prescription for Patient/p1.
    pub(crate) fn example() -> Value {
        json!({
            "resourceType": "ServiceRequest",
            "meta": {"profile": [profile_url()]},
            "extension": [{"url": dosage::extension_url(), "extension": [
                {"url": "sets", "valuePositiveInt": 3},
                {"url": "repetitions", "valuePositiveInt": 10},
                {"url": "hold", "valueDuration": {"value": 5, "unit": "s", "system": "http://unitsofmeasure.org", "code": "s"}},
                {"url": "side", "valueCoding": {"system": dosage::side_system(), "code": "left"}}
            ]}],
            "instantiatesCanonical": ["https://hep-fhir.org/fhir/ActivityDefinition/quad-sets|1.0.0"],
            "status": "active",
            "intent": "order",
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "229065009", "display": "Exercise therapy"}]}],
            "code": {"text": "Quadriceps sets"},
            "subject": {"reference": "Patient/p1"},
            "occurrenceTiming": {"repeat": {"boundsPeriod": {"start": "2026-11-02", "end": "2026-12-13"}, "frequency": 2, "period": 1, "periodUnit": "d"}},
            "performer": [{"reference": "Patient/p1"}],
            "patientInstruction": "whatever the client wrote"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::example;
    use super::*;

    #[test]
    fn reads_the_profile_and_writes_the_words() {
        let mut json = example().as_object().cloned().unwrap_or_default();
        assert!(claims_profile(&json));
        let view = read(&json).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(view.patient, "Patient/p1");
        assert_eq!(
            instruction(&view),
            "Quadriceps sets: 3 sets of 10 repetitions, hold 5 seconds, left side, twice a day, every day for 6 weeks."
        );
        apply_generated(&mut json, &view);
        assert_eq!(json["patientInstruction"], instruction(&view));
        assert_eq!(json["text"]["status"], "generated");
        assert!(
            json["text"]["div"]
                .as_str()
                .is_some_and(|d| d.contains("hold 5 seconds"))
        );
        assert_eq!(
            json["occurrenceTiming"]["code"]["text"],
            "twice a day, every day for 6 weeks"
        );
        let keys: Vec<&str> = json.keys().map(String::as_str).collect();
        assert_eq!(keys[..4], ["resourceType", "meta", "text", "extension"]);
        assert_eq!(keys.last(), Some(&"patientInstruction"));
        // what the server wrote reads back to the same prescription
        assert_eq!(read(&json).map(|v| v.prescription), Ok(view.prescription));
    }

    #[test]
    fn reports_every_problem_with_its_location() {
        let mut v = example();
        v["status"] = json!("in-progress");
        v["intent"] = json!("proposal");
        v["category"] = json!([{"text": "exercise"}]);
        v["performer"] = json!([{"reference": "Practitioner/t1"}]);
        v["instantiatesCanonical"] =
            json!(["https://hep-fhir.org/fhir/ActivityDefinition/quad-sets"]);
        v["extension"][0]["extension"][0]["valuePositiveInt"] = json!(99);
        v["occurrenceTiming"]["repeat"]["frequency"] = json!(9);
        let issues = read(v.as_object().unwrap_or(&Map::new()))
            .err()
            .unwrap_or_default();
        let at: Vec<&str> = issues
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        assert_eq!(
            at,
            [
                "ServiceRequest.status",
                "ServiceRequest.intent",
                "ServiceRequest.category",
                "ServiceRequest.performer",
                "ServiceRequest.instantiatesCanonical",
                "ServiceRequest.extension[0].extension[0]",
                "ServiceRequest.occurrenceTiming.repeat"
            ]
        );
        let mut v = example();
        v.as_object_mut().map(|o| o.remove("extension"));
        v.as_object_mut().map(|o| o.remove("occurrenceTiming"));
        let issues = read(v.as_object().unwrap_or(&Map::new()))
            .err()
            .unwrap_or_default();
        assert_eq!(issues.len(), 2);
    }
}
