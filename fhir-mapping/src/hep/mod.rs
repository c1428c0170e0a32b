//! The project's own FHIR content: one canonical base for its profiles, extension and
//! code systems, and the mapping of the HEP domain (dose, schedule) to FHIR elements.

pub mod adherence;
pub mod apply;
pub mod conformance;
pub mod dosage;
pub mod handout;
pub mod library;
pub mod measures;
pub mod monitoring;
pub mod outcome_task;
pub mod prescription;
pub mod program;
pub mod referral;
pub mod rtm;
pub mod session;
pub mod timing;

/// The canonical base of every StructureDefinition, CodeSystem and SearchParameter the
/// project defines. Defined here once.
pub const CANONICAL_BASE: &str = "https://hep-fhir.org/fhir";

/// Canonical URL of an artefact of the project: `canonical("StructureDefinition", "x")`.
pub fn canonical(kind: &str, id: &str) -> String {
    format!("{CANONICAL_BASE}/{kind}/{id}")
}

/// The UCUM code system.
pub const UCUM: &str = "http://unitsofmeasure.org";

use serde_json::{Map, Value, json};

use crate::outcome::{Issue, IssueType};

/// The rules of the project's profiles for a write: a resource that claims one (or is a
/// referral Task, see [`referral`]) is checked against it (every problem reported), gets
/// its generated elements, and its change from `current` (the stored version, for an
/// update) must be allowed. `lookup` gives the current stored JSON of a local reference
/// (`ServiceRequest/x`); `now` is the FHIR instant of the write; `actor` who writes
/// (the server's own moves of a referral Task are [`domain::referral::Actor::Server`]).
/// A stored referral Task stays one: a version that drops what made it a referral is
/// checked as a referral, and refused.
pub fn apply_rules(
    resource_type: &str,
    json: &mut Map<String, Value>,
    current: Option<&Map<String, Value>>,
    lookup: &mut dyn FnMut(&str) -> Option<Map<String, Value>>,
    now: &str,
    actor: domain::referral::Actor,
) -> Result<(), Vec<Issue>> {
    let business = |e: domain::program::LifecycleError, at: &str| {
        vec![Issue::error(IssueType::BusinessRule, e.to_string()).at(at)]
    };
    match resource_type {
        "ServiceRequest" if prescription::claims_profile(json) => {
            let view = prescription::read(json)?;
            if let Some(Ok(old)) = current
                .filter(|c| prescription::claims_profile(c))
                .map(prescription::read)
            {
                old.prescription
                    .check_update(&view.prescription)
                    .map_err(|e| business(e, "ServiceRequest"))?;
            }
            prescription::apply_generated(json, &view);
        }
        "CarePlan" if program::claims_profile(json) => {
            let view = program::read(json)?;
            if let Some(Ok(old)) = current
                .filter(|c| program::claims_profile(c))
                .map(program::read)
                && old.status != view.status
                && !old.status.can_become(view.status)
            {
                return Err(business(
                    domain::program::LifecycleError::Transition {
                        from: old.status,
                        to: view.status,
                    },
                    "CarePlan.status",
                ));
            }
            let prescriptions: Vec<Option<Map<String, Value>>> =
                view.exercises.iter().map(|r| lookup(r)).collect();
            program::apply_generated(json, &view, &prescriptions)?;
        }
        "Task"
            if outcome_task::claims_profile(json)
                || current.is_some_and(outcome_task::claims_profile) =>
        {
            return Err(outcome_task::refuse_client_write());
        }
        "Task" if session::claims_profile(json) => {
            let view = session::read(json)?;
            match current
                .filter(|c| session::claims_profile(c))
                .map(session::read)
            {
                Some(Ok(old)) => session::check_change(&old, &view)?,
                Some(Err(_)) | None => {
                    return Err(vec![
                        Issue::error(
                            IssueType::BusinessRule,
                            "exercise sessions are created by the server when a program is active; a client completes or fails them",
                        )
                        .at("Task.meta.profile"),
                    ]);
                }
            }
            session::apply_generated(json, &view, now);
        }
        "Task" if referral::is_referral(json) || current.is_some_and(referral::is_referral) => {
            let view = referral::read(json)?;
            // the server's own moves are its own; a client is any party until
            // authorization says which (`Actor::Unknown`)
            match current.filter(|c| referral::is_referral(c)) {
                Some(stored) => referral::check_update(stored, &view, actor)?,
                None => referral::check_create(&view)?,
            }
            referral::apply_generated(json, &view, current, now);
        }
        _ => {}
    }
    Ok(())
}

/// Text for XHTML narrative and HTML pages: every markup character escaped.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `status` of a program or prescription; a located issue when it is not one of ours.
pub(crate) fn read_status(
    json: &Map<String, Value>,
    root: &str,
    issues: &mut Vec<Issue>,
) -> Option<domain::program::Status> {
    let status = json
        .get("status")
        .and_then(Value::as_str)
        .and_then(domain::program::Status::from_code);
    if status.is_none() {
        issues.push(
            Issue::error(
                IssueType::Value,
                "status is draft, active, on-hold, completed or revoked",
            )
            .at(format!("{root}.status")),
        );
    }
    status
}

/// `subject` when it is a Patient reference; a located issue otherwise.
pub(crate) fn read_patient(
    json: &Map<String, Value>,
    root: &str,
    issues: &mut Vec<Issue>,
) -> Option<String> {
    let patient = json
        .get("subject")
        .and_then(|s| s.get("reference"))
        .and_then(Value::as_str)
        .filter(|r| r.starts_with("Patient/"))
        .map(str::to_string);
    if patient.is_none() {
        issues.push(
            Issue::error(
                IssueType::Required,
                "the subject is the patient (a Patient reference)",
            )
            .at(format!("{root}.subject")),
        );
    }
    patient
}

/// The value of a part read on its own, its problems added to `issues`.
pub(crate) fn collect<T>(part: Result<T, Vec<Issue>>, issues: &mut Vec<Issue>) -> Option<T> {
    match part {
        Ok(v) => Some(v),
        Err(mut e) => {
            issues.append(&mut e);
            None
        }
    }
}

/// The project's profiles that the server checks, with the type each constrains.
pub fn profiles() -> Vec<(&'static str, String)> {
    vec![
        ("ServiceRequest", prescription::profile_url()),
        ("CarePlan", program::profile_url()),
        ("Task", session::profile_url()),
        ("Task", outcome_task::profile_url()),
    ]
}

/// Whether a resource claims one of the profiles whose rules the server applies. A
/// referral Task counts when it fulfils a ServiceRequest, claiming the PA profile or not
/// (see [`referral::is_referral`]).
pub fn claims_a_profile(resource_type: &str, json: &Map<String, Value>) -> bool {
    match resource_type {
        "ServiceRequest" => prescription::claims_profile(json),
        "CarePlan" => program::claims_profile(json),
        "Task" => {
            session::claims_profile(json)
                || referral::is_referral(json)
                || outcome_task::claims_profile(json)
        }
        _ => false,
    }
}

/// Whether `meta.profile` names `url` (with or without a version).
pub(crate) fn claims(json: &Map<String, Value>, url: &str) -> bool {
    json.get("meta")
        .and_then(|m| m.get("profile"))
        .and_then(Value::as_array)
        .is_some_and(|p| {
            p.iter()
                .any(|v| v.as_str().is_some_and(|s| s.split('|').next() == Some(url)))
        })
}

/// Whether a list of CodeableConcepts has a coding `system|code`.
/// US Core's CarePlan category (US Core CarePlan requires it).
pub const ASSESS_PLAN: (&str, &str, &str) = (
    "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
    "assess-plan",
    "Assessment and Plan of Treatment",
);

/// The HL7 Physical Activity IG's category of its CarePlans and ServiceRequests.
pub const PHYSICAL_ACTIVITY: (&str, &str, &str) = (
    "http://hl7.org/fhir/us/physical-activity/CodeSystem/pa-temporary-codes",
    "PhysicalActivity",
    "Physical Activity",
);

/// Adds a category coding, as its own CodeableConcept, when no category has it yet; the
/// element `category` is created at the end (callers put it in canonical order).
pub(crate) fn add_category(
    json: &mut Map<String, Value>,
    (system, code, display): (&str, &str, &str),
) {
    if has_coding(json.get("category"), system, code) {
        return;
    }
    let concept = json!({"coding": [{"system": system, "code": code, "display": display}]});
    match json.get_mut("category") {
        Some(Value::Array(items)) => items.push(concept),
        _ => {
            json.insert("category".into(), Value::Array(vec![concept]));
        }
    }
}

pub(crate) fn has_coding(concepts: Option<&Value>, system: &str, code: &str) -> bool {
    concepts.and_then(Value::as_array).is_some_and(|cats| {
        cats.iter().any(|c| {
            c.get("coding")
                .and_then(Value::as_array)
                .is_some_and(|codings| {
                    codings.iter().any(|cd| {
                        cd.get("system").and_then(Value::as_str) == Some(system)
                            && cd.get("code").and_then(Value::as_str) == Some(code)
                    })
                })
        })
    })
}
