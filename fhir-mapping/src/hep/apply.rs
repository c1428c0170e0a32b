//! `$apply`: a draft exercise prescription from a library exercise (ActivityDefinition),
//! and a draft program from a protocol template (PlanDefinition). The therapist then
//! tailors the doses and activates the program.

use domain::schedule::{Days, Duration, Schedule, ScheduleParts};
use jiff::civil::Date;
use serde_json::{Map, Value, json};

use super::{dosage, prescription, program, timing};
use crate::outcome::{Issue, IssueType};

/// Who and when the result is for.
#[derive(Debug, Clone)]
pub struct ApplyContext {
    /// `Patient/<id>`.
    pub patient: String,
    /// `Practitioner/<id>` or `PractitionerRole/<id>`, when given.
    pub practitioner: Option<String>,
    /// First day of the program.
    pub start: Date,
    /// Length of the program in weeks.
    pub weeks: u8,
}

fn issue(code: IssueType, msg: impl Into<String>, at: &str) -> Vec<Issue> {
    vec![Issue::error(code, msg).at(at)]
}

/// `url|version` of a canonical resource.
pub fn versioned_canonical(json: &Map<String, Value>, kind: &str) -> Result<String, Vec<Issue>> {
    let url = json.get("url").and_then(Value::as_str);
    let version = json.get("version").and_then(Value::as_str);
    match (url, version) {
        (Some(u), Some(v)) => Ok(format!("{u}|{v}")),
        _ => Err(issue(
            IssueType::BusinessRule,
            "a library exercise or template needs a url and a version to be applied",
            kind,
        )),
    }
}

/// A draft exercise prescription for the patient, from a library exercise: its name,
/// its default dose and times a day, over the context's weeks.
pub fn prescription_from(ad: &Map<String, Value>, ctx: &ApplyContext) -> Result<Value, Vec<Issue>> {
    let canonical = versioned_canonical(ad, "ActivityDefinition")?;
    let name = ad
        .get("title")
        .or_else(|| ad.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            issue(
                IssueType::Required,
                "the exercise has no title",
                "ActivityDefinition.title",
            )
        })?;
    // the library exercise's default dose
    let dose = dosage::read_from(ad, "ActivityDefinition")?;
    let per_day = ad
        .get("timingTiming")
        .and_then(|t| t.pointer("/repeat/frequency"))
        .and_then(Value::as_u64)
        .and_then(|f| u8::try_from(f).ok())
        .unwrap_or(1);
    let schedule = Schedule::new(ScheduleParts {
        per_day,
        days: Days::Every,
        times: Vec::new(),
        start: ctx.start,
        duration: Duration::Weeks(ctx.weeks),
        count: None,
    })
    .map_err(|e| {
        issue(
            IssueType::Value,
            e.to_string(),
            "ActivityDefinition.timingTiming",
        )
    })?;
    let mut sr = json!({
        "resourceType": "ServiceRequest",
        "meta": {"profile": [prescription::profile_url()]},
        "extension": [dosage::to_extension(&dose)],
        "instantiatesCanonical": [canonical],
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{"system": prescription::EXERCISE_THERAPY.0, "code": prescription::EXERCISE_THERAPY.1, "display": prescription::EXERCISE_THERAPY.2}]}],
        "code": {"text": name},
        "subject": {"reference": ctx.patient},
        "occurrenceTiming": timing::to_timing(&schedule),
        "performer": [{"reference": ctx.patient}]
    });
    if let Some(p) = &ctx.practitioner {
        sr["requester"] = json!({"reference": p});
    }
    Ok(sr)
}

/// The exercises a template lists (`action.definitionCanonical`), in order.
pub fn template_exercises(pd: &Map<String, Value>) -> Result<Vec<String>, Vec<Issue>> {
    let actions = pd
        .get("action")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut issues = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        match a.get("definitionCanonical").and_then(Value::as_str) {
            Some(c) if c.contains("/ActivityDefinition/") => out.push(c.to_string()),
            _ => issues.push(
                Issue::error(
                    IssueType::NotSupported,
                    "only actions that are library exercises (ActivityDefinition) can be applied",
                )
                .at(format!("PlanDefinition.action[{i}]")),
            ),
        }
    }
    if out.is_empty() && issues.is_empty() {
        issues.push(
            Issue::error(IssueType::BusinessRule, "the template has no exercises")
                .at("PlanDefinition.action"),
        );
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(issues)
    }
}

/// A draft program for the patient from a template, listing the prescriptions created
/// for it (`ServiceRequest/<id>`).
pub fn program_from(
    pd: &Map<String, Value>,
    ctx: &ApplyContext,
    prescriptions: &[String],
) -> Result<Value, Vec<Issue>> {
    let canonical = versioned_canonical(pd, "PlanDefinition")?;
    let title = pd
        .get("title")
        .or_else(|| pd.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("Home exercise program");
    let activity: Vec<Value> = prescriptions
        .iter()
        .map(|r| json!({"reference": {"reference": r}}))
        .collect();
    let mut cp = json!({
        "resourceType": "CarePlan",
        "meta": {"profile": [program::profile_url()]},
        "instantiatesCanonical": [canonical],
        "status": "draft",
        "intent": "plan",
        "category": [{"coding": [{"system": prescription::EXERCISE_THERAPY.0, "code": prescription::EXERCISE_THERAPY.1, "display": prescription::EXERCISE_THERAPY.2}]}],
        "title": title,
        "subject": {"reference": ctx.patient},
        "period": {"start": ctx.start.to_string()},
        "activity": activity
    });
    if let Some(p) = &ctx.practitioner {
        cp["author"] = json!({"reference": p});
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hep::library;
    use jiff::civil::date;

    fn ctx() -> ApplyContext {
        ApplyContext {
            patient: "Patient/p1".into(),
            practitioner: Some("Practitioner/t1".into()),
            start: date(2026, 11, 30),
            weeks: 6,
        }
    }

    #[test]
    fn a_library_exercise_becomes_a_valid_draft_prescription() {
        for e in library::EXERCISES {
            let ad = library::activity_definition(e);
            let sr = prescription_from(ad.as_object().unwrap_or(&Map::new()), &ctx())
                .unwrap_or_else(|i| panic!("{}: {i:?}", e.id));
            let view = prescription::read(sr.as_object().unwrap_or(&Map::new()))
                .unwrap_or_else(|i| panic!("{}: {i:?}", e.id));
            assert_eq!(
                view.prescription.dose(),
                &library::default_dose(e).unwrap_or_else(|| panic!("dose"))
            );
            assert_eq!(view.prescription.schedule().per_day(), e.times_a_day);
            assert_eq!(view.prescription.schedule().weeks(), Some(6));
            assert_eq!(
                sr["instantiatesCanonical"][0],
                library::exercise_canonical(e.id)
            );
        }
    }

    #[test]
    fn a_template_becomes_a_draft_program() {
        let t = &library::TEMPLATES[0];
        let pd = library::plan_definition(t);
        let pd = pd.as_object().cloned().unwrap_or_default();
        let exercises = template_exercises(&pd).unwrap_or_default();
        assert_eq!(exercises.len(), t.exercises.len());
        let refs: Vec<String> = (0..exercises.len())
            .map(|i| format!("ServiceRequest/s{i}"))
            .collect();
        let cp = program_from(&pd, &ctx(), &refs).unwrap_or_default();
        let view = program::read(cp.as_object().unwrap_or(&Map::new()))
            .unwrap_or_else(|i| panic!("{i:?}"));
        assert_eq!(view.exercises, refs);
        assert_eq!(cp["author"]["reference"], "Practitioner/t1");
        let mut empty = pd.clone();
        empty.remove("action");
        assert!(template_exercises(&empty).is_err());
    }
}
