//! The project's own FHIR content: one canonical base for its profiles, extension and
//! code systems, and the mapping of the HEP domain (dose, schedule) to FHIR elements.

pub mod dosage;
pub mod prescription;
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

use serde_json::{Map, Value};

use crate::outcome::{Issue, IssueType};

/// The rules of the project's profiles for a write: a resource that claims one is
/// checked against it (every problem reported), gets its generated elements, and its
/// change from `current` (the stored version, for an update) must be allowed.
pub fn apply_rules(
    resource_type: &str,
    json: &mut Map<String, Value>,
    current: Option<&Map<String, Value>>,
) -> Result<(), Vec<Issue>> {
    if resource_type == "ServiceRequest" && prescription::claims_profile(json) {
        let view = prescription::read(json)?;
        if let Some(before) = current.filter(|c| prescription::claims_profile(c))
            && let Ok(old) = prescription::read(before)
        {
            old.prescription
                .check_update(&view.prescription)
                .map_err(|e| {
                    vec![Issue::error(IssueType::BusinessRule, e.to_string()).at("ServiceRequest")]
                })?;
        }
        prescription::apply_generated(json, &view);
    }
    Ok(())
}
