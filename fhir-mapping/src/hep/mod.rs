//! The project's own FHIR content: one canonical base for its profiles, extension and
//! code systems, and the mapping of the HEP domain (dose, schedule) to FHIR elements.

pub mod dosage;
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
