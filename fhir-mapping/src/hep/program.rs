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
    /// `ServiceRequest/...` of each activity, in order.
    pub exercises: Vec<String>,
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
    if let Some(activities) = json.get("activity").and_then(Value::as_array) {
        for (i, a) in activities.iter().enumerate() {
            match a.pointer("/reference/reference").and_then(Value::as_str) {
                Some(r) if r.starts_with("ServiceRequest/") => exercises.push(r.to_string()),
                _ => issues.push(
                    Issue::error(
                        IssueType::Value,
                        "each activity references an exercise prescription (ServiceRequest)",
                    )
                    .at(format!("CarePlan.activity[{i}]")),
                ),
            }
        }
    }
    match (status, patient, issues.is_empty()) {
        (Some(status), Some(patient), true) => Ok(ProgramView {
            status,
            patient,
            title: json
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_string),
            exercises,
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
        let at = format!("CarePlan.activity[{i}].reference");
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
    fn refuses_what_is_not_a_program() {
        let mut cp = careplan("active", &[]);
        cp.insert("intent".into(), json!("order"));
        cp.insert(
            "activity".into(),
            json!([{"detail": {"status": "scheduled"}}]),
        );
        let issues = read(&cp).err().unwrap_or_default();
        let at: Vec<&str> = issues
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect();
        assert_eq!(at, ["CarePlan.intent", "CarePlan.activity[0]"]);

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
