//! The search parameters the server supports, per resource type: the one source for the
//! query parser, the index extraction and the CapabilityStatement.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::compartment_table::PATIENT_COMPARTMENT;
use crate::references::identifiers;

/// The version of what [`token_values`] and [`date_values`] extract: raise it whenever a parameter is added
/// or extracted differently, and the server rebuilds the stored index at start.
pub const INDEX_VERSION: &str = "8";

/// The type of a search parameter (R4 search.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Token,
    Date,
    Reference,
    String,
    Uri,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Token => "token",
            ParamType::Date => "date",
            ParamType::Reference => "reference",
            ParamType::String => "string",
            ParamType::Uri => "uri",
        }
    }
}

/// One supported search parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParam {
    pub name: &'static str,
    pub kind: ParamType,
    /// Canonical URL of the SearchParameter that defines it.
    pub definition: &'static str,
}

const ID: SearchParam = SearchParam {
    name: "_id",
    kind: ParamType::Token,
    definition: "http://hl7.org/fhir/SearchParameter/Resource-id",
};
const LAST_UPDATED: SearchParam = SearchParam {
    name: "_lastUpdated",
    kind: ParamType::Date,
    definition: "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
};
const IDENTIFIER: SearchParam = SearchParam {
    name: "identifier",
    kind: ParamType::Token,
    definition: "http://hl7.org/fhir/SearchParameter/clinical-identifier",
};

const URL: SearchParam = SearchParam {
    name: "url",
    kind: ParamType::Uri,
    definition: "http://hl7.org/fhir/SearchParameter/conformance-url",
};
const VERSION: SearchParam = SearchParam {
    name: "version",
    kind: ParamType::Token,
    definition: "http://hl7.org/fhir/SearchParameter/conformance-version",
};

/// A search parameter on elements of one resource type: the FHIR paths (dot paths,
/// arrays flattened) whose values it indexes.
struct ElementParam {
    resource_type: &'static str,
    param: SearchParam,
    paths: &'static [&'static str],
    /// For a token: the index parameter of its text (`CodeableConcept.text`, `Coding.display`)
    /// searched by `:text`.
    text_param: &'static str,
}

macro_rules! element_params {
    ($(($t:literal, $name:literal, $kind:ident, [$($path:literal),+], $def:literal)),+ $(,)?) => {
        &[$(ElementParam {
            resource_type: $t,
            param: SearchParam {
                name: $name,
                kind: ParamType::$kind,
                definition: concat!("http://hl7.org/fhir/SearchParameter/", $def),
            },
            paths: &[$($path),+],
            text_param: concat!($name, ":text"),
        }),+]
    };
}

/// The R4 standard parameters on elements that the HEP flows search by.
const ELEMENT_PARAMS: &[ElementParam] = element_params![
    (
        "ActivityDefinition",
        "status",
        Token,
        ["status"],
        "ActivityDefinition-status"
    ),
    (
        "ActivityDefinition",
        "topic",
        Token,
        ["topic"],
        "ActivityDefinition-topic"
    ),
    (
        "PlanDefinition",
        "status",
        Token,
        ["status"],
        "PlanDefinition-status"
    ),
    (
        "PlanDefinition",
        "topic",
        Token,
        ["topic"],
        "PlanDefinition-topic"
    ),
    (
        "CarePlan",
        "subject",
        Reference,
        ["subject"],
        "CarePlan-subject"
    ),
    ("CarePlan", "status", Token, ["status"], "CarePlan-status"),
    ("CarePlan", "intent", Token, ["intent"], "CarePlan-intent"),
    (
        "CarePlan",
        "category",
        Token,
        ["category"],
        "CarePlan-category"
    ),
    (
        "CarePlan",
        "based-on",
        Reference,
        ["basedOn"],
        "CarePlan-based-on"
    ),
    (
        "CarePlan",
        "activity-reference",
        Reference,
        ["activity.reference"],
        "CarePlan-activity-reference"
    ),
    (
        "CarePlan",
        "instantiates-canonical",
        Reference,
        ["instantiatesCanonical"],
        "CarePlan-instantiates-canonical"
    ),
    (
        "ServiceRequest",
        "subject",
        Reference,
        ["subject"],
        "ServiceRequest-subject"
    ),
    (
        "ServiceRequest",
        "status",
        Token,
        ["status"],
        "ServiceRequest-status"
    ),
    (
        "ServiceRequest",
        "intent",
        Token,
        ["intent"],
        "ServiceRequest-intent"
    ),
    ("ServiceRequest", "code", Token, ["code"], "clinical-code"),
    (
        "ServiceRequest",
        "category",
        Token,
        ["category"],
        "ServiceRequest-category"
    ),
    (
        "ServiceRequest",
        "requester",
        Reference,
        ["requester"],
        "ServiceRequest-requester"
    ),
    (
        "ServiceRequest",
        "performer",
        Reference,
        ["performer"],
        "ServiceRequest-performer"
    ),
    (
        "ServiceRequest",
        "based-on",
        Reference,
        ["basedOn"],
        "ServiceRequest-based-on"
    ),
    (
        "ServiceRequest",
        "replaces",
        Reference,
        ["replaces"],
        "ServiceRequest-replaces"
    ),
    (
        "ServiceRequest",
        "instantiates-canonical",
        Reference,
        ["instantiatesCanonical"],
        "ServiceRequest-instantiates-canonical"
    ),
    ("Task", "subject", Reference, ["for"], "Task-subject"),
    ("Task", "owner", Reference, ["owner"], "Task-owner"),
    (
        "Task",
        "requester",
        Reference,
        ["requester"],
        "Task-requester"
    ),
    ("Task", "status", Token, ["status"], "Task-status"),
    (
        "Task",
        "business-status",
        Token,
        ["businessStatus"],
        "Task-business-status"
    ),
    ("Task", "code", Token, ["code"], "Task-code"),
    ("Task", "focus", Reference, ["focus"], "Task-focus"),
    ("Task", "based-on", Reference, ["basedOn"], "Task-based-on"),
    ("Task", "part-of", Reference, ["partOf"], "Task-part-of"),
    (
        "Task",
        "authored-on",
        Date,
        ["authoredOn"],
        "Task-authored-on"
    ),
    ("Task", "modified", Date, ["lastModified"], "Task-modified"),
    ("Task", "period", Date, ["executionPeriod"], "Task-period"),
    (
        "ServiceRequest",
        "authored",
        Date,
        ["authoredOn"],
        "ServiceRequest-authored"
    ),
    (
        "ServiceRequest",
        "occurrence",
        Date,
        ["occurrenceDateTime", "occurrencePeriod"],
        "ServiceRequest-occurrence"
    ),
    ("CarePlan", "date", Date, ["period"], "clinical-date"),
    (
        "Observation",
        "date",
        Date,
        ["effectiveDateTime", "effectivePeriod", "effectiveInstant"],
        "clinical-date"
    ),
    (
        "Patient",
        "birthdate",
        Date,
        ["birthDate"],
        "individual-birthdate"
    ),
    (
        "Observation",
        "subject",
        Reference,
        ["subject"],
        "Observation-subject"
    ),
    ("Observation", "code", Token, ["code"], "clinical-code"),
    (
        "Observation",
        "category",
        Token,
        ["category"],
        "Observation-category"
    ),
    (
        "Observation",
        "status",
        Token,
        ["status"],
        "Observation-status"
    ),
    (
        "Observation",
        "based-on",
        Reference,
        ["basedOn"],
        "Observation-based-on"
    ),
    (
        "Observation",
        "derived-from",
        Reference,
        ["derivedFrom"],
        "Observation-derived-from"
    ),
    ("Patient", "gender", Token, ["gender"], "individual-gender"),
    ("AuditEvent", "date", Date, ["recorded"], "AuditEvent-date"),
    (
        "AuditEvent",
        "entity",
        Reference,
        ["entity.what"],
        "AuditEvent-entity"
    ),
    (
        "AuditEvent",
        "subtype",
        Token,
        ["subtype"],
        "AuditEvent-subtype"
    ),
    (
        "AuditEvent",
        "outcome",
        Token,
        ["outcome"],
        "AuditEvent-outcome"
    ),
    (
        "AuditEvent",
        "action",
        Token,
        ["action"],
        "AuditEvent-action"
    ),
    ("Patient", "name", String, ["name"], "Patient-name"),
    (
        "Patient",
        "family",
        String,
        ["name.family"],
        "individual-family"
    ),
    (
        "Patient",
        "given",
        String,
        ["name.given"],
        "individual-given"
    ),
    (
        "Practitioner",
        "name",
        String,
        ["name"],
        "Practitioner-name"
    ),
    (
        "Organization",
        "name",
        String,
        ["name", "alias"],
        "Organization-name"
    ),
    (
        "ActivityDefinition",
        "name",
        String,
        ["name"],
        "ActivityDefinition-name"
    ),
    (
        "ActivityDefinition",
        "title",
        String,
        ["title"],
        "ActivityDefinition-title"
    ),
    (
        "PlanDefinition",
        "name",
        String,
        ["name"],
        "PlanDefinition-name"
    ),
    (
        "PlanDefinition",
        "title",
        String,
        ["title"],
        "PlanDefinition-title"
    ),
    ("Goal", "subject", Reference, ["subject"], "Goal-subject"),
    (
        "Goal",
        "lifecycle-status",
        Token,
        ["lifecycleStatus"],
        "Goal-lifecycle-status"
    ),
    ("Goal", "category", Token, ["category"], "Goal-category"),
    // groups of patients (Bulk Data export of a Group)
    (
        "Group",
        "member",
        Reference,
        ["member.entity"],
        "Group-member"
    ),
    ("Group", "type", Token, ["type"], "Group-type"),
    ("Group", "code", Token, ["code"], "Group-code"),
    // the Patient compartment of the other clinical types a clinic's records bring
    (
        "Encounter",
        "subject",
        Reference,
        ["subject"],
        "Encounter-subject"
    ),
    (
        "Condition",
        "subject",
        Reference,
        ["subject"],
        "Condition-subject"
    ),
    (
        "Procedure",
        "subject",
        Reference,
        ["subject"],
        "Procedure-subject"
    ),
    (
        "MedicationRequest",
        "subject",
        Reference,
        ["subject"],
        "MedicationRequest-subject"
    ),
    (
        "DiagnosticReport",
        "subject",
        Reference,
        ["subject"],
        "DiagnosticReport-subject"
    ),
    (
        "DocumentReference",
        "subject",
        Reference,
        ["subject"],
        "DocumentReference-subject"
    ),
    (
        "CareTeam",
        "subject",
        Reference,
        ["subject"],
        "CareTeam-subject"
    ),
    (
        "ImagingStudy",
        "subject",
        Reference,
        ["subject"],
        "ImagingStudy-subject"
    ),
    (
        "MedicationAdministration",
        "subject",
        Reference,
        ["subject"],
        "MedicationAdministration-subject"
    ),
    (
        "Immunization",
        "patient",
        Reference,
        ["patient"],
        "Immunization-patient"
    ),
    (
        "AllergyIntolerance",
        "patient",
        Reference,
        ["patient"],
        "AllergyIntolerance-patient"
    ),
    ("Claim", "patient", Reference, ["patient"], "Claim-patient"),
    (
        "ExplanationOfBenefit",
        "patient",
        Reference,
        ["patient"],
        "ExplanationOfBenefit-patient"
    ),
    (
        "Coverage",
        "patient",
        Reference,
        ["beneficiary"],
        "Coverage-patient"
    ),
    (
        "Device",
        "patient",
        Reference,
        ["patient"],
        "Device-patient"
    ),
    (
        "SupplyDelivery",
        "patient",
        Reference,
        ["patient"],
        "SupplyDelivery-patient"
    ),
];

/// Types the server adds to the R4 Patient compartment, with the parameters that put them
/// there: a patient's exercise sessions and referrals are Tasks `for` the patient, and
/// R4's definition has no Task.
const COMPARTMENT_ADDITIONS: &[(&str, &[&str])] = &[("Task", &["patient"])];

/// Per type of the compartment, the index parameters that put a resource in it (an
/// alias stands for the parameter whose rows it searches), built once.
static COMPARTMENT: LazyLock<HashMap<&'static str, Vec<&'static str>>> = LazyLock::new(|| {
    let named = PATIENT_COMPARTMENT
        .iter()
        .map(|(t, ps)| (*t, ps.iter().map(|p| p.name).collect::<Vec<_>>()))
        .chain(
            COMPARTMENT_ADDITIONS
                .iter()
                .map(|(t, ps)| (*t, ps.to_vec())),
        );
    let mut out: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
    for (t, names) in named {
        let params = out.entry(t).or_default();
        for name in names {
            let indexed = alias_of(t, name).map_or(name, |(of, _)| of);
            if !params.contains(&indexed) {
                params.push(indexed);
            }
        }
    }
    out
});

/// The index parameters that put a resource of `resource_type` in a patient's
/// compartment, as the R4 Patient CompartmentDefinition names them (plus Task by
/// `patient`): a resource is in patient X's compartment when one of them holds
/// `Patient/X`; the Patient X itself is too, and a Patient whose `link` names X. Empty
/// for a type outside every patient's compartment.
pub fn compartment_params(resource_type: &str) -> &'static [&'static str] {
    COMPARTMENT
        .get(resource_type)
        .map_or(&[], |params| params.as_slice())
}

/// Whether resources of `resource_type` can be in a patient's compartment.
pub fn is_compartment_type(resource_type: &str) -> bool {
    resource_type == "Patient" || !compartment_params(resource_type).is_empty()
}

/// The patient whose compartment a resource is in (its id for a Patient), if any: the
/// first the compartment's parameters name, in the definition's order.
pub fn patient_of(resource_type: &str, id: &str, json: &Map<String, Value>) -> Option<String> {
    if resource_type == "Patient" {
        return Some(id.to_string());
    }
    let params = compartment_params(resource_type);
    if params.is_empty() {
        return None;
    }
    let tokens = token_values(resource_type, json);
    params.iter().find_map(|p| {
        tokens
            .iter()
            .filter(|t| t.param == *p)
            .find_map(|t| t.code.strip_prefix("Patient/"))
            .map(str::to_string)
    })
}

/// Whether a resource is in `patient`'s compartment: the Patient itself, or a resource
/// one of whose compartment parameters names it ([`compartment_params`]).
pub fn in_patient_compartment(
    resource_type: &str,
    id: &str,
    json: &Map<String, Value>,
    patient: &str,
) -> bool {
    if resource_type == "Patient" && id == patient {
        return true;
    }
    let params = compartment_params(resource_type);
    if params.is_empty() {
        return false;
    }
    let target = format!("Patient/{patient}");
    token_values(resource_type, json)
        .iter()
        .any(|t| params.contains(&t.param) && t.code == target)
}

/// The project's own search parameter on the due window of an exercise session
/// (`Task.restriction.period`), defined by the SearchParameter resource of that URL.
pub const DUE_WINDOW: SearchParam = SearchParam {
    name: "restriction-period",
    kind: ParamType::Date,
    definition: "https://hep-fhir.org/fhir/SearchParameter/Task-restriction-period",
};
const DUE_WINDOW_PARAM: ElementParam = ElementParam {
    resource_type: "Task",
    param: DUE_WINDOW,
    paths: &["restriction.period"],
    text_param: "",
};

/// The project's own search parameter on the local day of an exercise session: the
/// date of `Task.restriction.period.start` as written, in the patient's offset, so that
/// `session-day=2026-12-02` finds the sessions of that day in the patient's time zone
/// whatever the server's or the client's zone.
pub const SESSION_DAY: SearchParam = SearchParam {
    name: "session-day",
    kind: ParamType::Date,
    definition: "https://hep-fhir.org/fhir/SearchParameter/Task-session-day",
};
const SESSION_DAY_PARAM: ElementParam = ElementParam {
    resource_type: "Task",
    param: SESSION_DAY,
    paths: &["restriction.period.start"],
    text_param: "",
};

/// Parameters searched through another one's index rows: `patient` is `subject` (or
/// `for`) restricted to Patient references. (type, name, indexed parameter, target
/// type, definition)
const ALIASES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "AuditEvent",
        "patient",
        "entity",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/AuditEvent-patient",
    ),
    (
        "CarePlan",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "ServiceRequest",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "Task",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/Task-patient",
    ),
    (
        "Observation",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "Goal",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "Encounter",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "Condition",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "Procedure",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "MedicationRequest",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "DiagnosticReport",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "DocumentReference",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "CareTeam",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "ImagingStudy",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
    (
        "MedicationAdministration",
        "patient",
        "subject",
        "Patient",
        "http://hl7.org/fhir/SearchParameter/clinical-patient",
    ),
];

/// For an alias: the parameter whose index rows it searches, and the one type of
/// reference it matches.
pub fn alias_of(resource_type: &str, name: &str) -> Option<(&'static str, &'static str)> {
    ALIASES
        .iter()
        .find(|(t, n, ..)| *t == resource_type && *n == name)
        .map(|(_, _, of, target, _)| (*of, *target))
}

/// One indexed parameter of a type: a hand-written [`ElementParam`], or a parameter of
/// the Patient compartment that the hand-written ones do not define.
#[derive(Debug, Clone, Copy)]
struct Indexed {
    param: SearchParam,
    paths: &'static [&'static str],
    text_param: &'static str,
    /// Only references to this type are indexed (`.where(resolve() is Patient)`).
    only: Option<&'static str>,
    /// The one type its references point to, when there is one.
    target: Option<&'static str>,
}

/// The parameters on elements of each type, built once: the hand-written ones, then
/// those of the generated compartment table that no hand-written parameter or alias of
/// the same name already covers.
static INDEXED: LazyLock<HashMap<&'static str, Vec<Indexed>>> = LazyLock::new(|| {
    let mut by_type: HashMap<&'static str, Vec<Indexed>> = HashMap::new();
    for p in ELEMENT_PARAMS
        .iter()
        .chain([&DUE_WINDOW_PARAM, &SESSION_DAY_PARAM])
    {
        by_type.entry(p.resource_type).or_default().push(Indexed {
            param: p.param,
            paths: p.paths,
            text_param: p.text_param,
            only: None,
            target: None,
        });
    }
    for (t, params) in PATIENT_COMPARTMENT {
        for c in *params {
            let hand_written = ELEMENT_PARAMS
                .iter()
                .any(|p| p.resource_type == *t && p.param.name == c.name)
                || alias_of(t, c.name).is_some();
            if hand_written {
                continue;
            }
            by_type.entry(t).or_default().push(Indexed {
                param: SearchParam {
                    name: c.name,
                    kind: ParamType::Reference,
                    definition: c.definition,
                },
                paths: c.paths,
                text_param: "",
                only: c.only,
                target: c.target,
            });
        }
    }
    by_type
});

fn element_params(resource_type: &str) -> impl Iterator<Item = &'static Indexed> {
    INDEXED
        .get(resource_type)
        .map_or(&[][..], |params| params.as_slice())
        .iter()
}

/// The index parameter that holds the text of token parameter `name` (for `:text`).
pub fn text_param(resource_type: &str, name: &str) -> Option<&'static str> {
    element_params(resource_type)
        .find(|p| p.param.name == name && p.param.kind == ParamType::Token)
        .map(|p| p.text_param)
}

/// The one type a reference parameter can point to, when it has only one (the target of
/// a chain such as `patient.identifier=` that names no type).
pub fn single_target(resource_type: &str, name: &str) -> Option<&'static str> {
    if let Some((_, target)) = alias_of(resource_type, name) {
        return Some(target);
    }
    if let Some(target) = element_params(resource_type)
        .find(|p| p.param.name == name)
        .and_then(|p| p.target)
    {
        return Some(target);
    }
    match (resource_type, name) {
        ("ServiceRequest", "replaces") => Some("ServiceRequest"),
        ("CarePlan", "based-on") => Some("CarePlan"),
        (_, "patient") => Some("Patient"),
        _ => None,
    }
}

/// The form in which string values are indexed and searched: case and accents removed
/// (Unicode canonical decomposition without its combining marks, then lower case).
pub fn normalize(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    s.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// System marking the index row of a string value as written (searched by `:exact`); the
/// normalized value has the empty system.
pub const EXACT_SYSTEM: &str = "exact";

/// The strings of a string parameter's value: a string, or the parts of a HumanName.
fn string_parts(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Object(o) => {
            let mut out = Vec::new();
            for key in ["text", "family"] {
                if let Some(s) = o.get(key).and_then(Value::as_str) {
                    out.push(s);
                }
            }
            for key in ["given", "prefix", "suffix"] {
                if let Some(a) = o.get(key).and_then(Value::as_array) {
                    out.extend(a.iter().filter_map(Value::as_str));
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The texts of a token value (`CodeableConcept.text`, `Coding.display`).
fn token_texts(v: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        out.push(t);
    }
    let codings = match v.get("coding").and_then(Value::as_array) {
        Some(c) => c.iter().collect(),
        None => vec![v],
    };
    out.extend(
        codings
            .into_iter()
            .filter_map(|c| c.get("display").and_then(Value::as_str)),
    );
    out
}

/// The values at a dot path, arrays flattened.
fn values_at<'a>(json: &'a Map<String, Value>, path: &str) -> Vec<&'a Value> {
    let mut current: Vec<&Value> = Vec::new();
    let mut parts = path.split('.');
    if let Some(first) = parts.next().and_then(|p| json.get(p)) {
        current.push(first);
    }
    for part in parts {
        current = current
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .filter_map(|v| v.get(part))
            .collect();
    }
    current
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(a) => a.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .collect()
}

/// The `(system, code)` pairs of a token value: a code, a Coding or a CodeableConcept.
fn token_pairs(v: &Value) -> Vec<(String, String)> {
    let pair = |c: &Value| {
        c.get("code").and_then(Value::as_str).map(|code| {
            (
                c.get("system")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                code.to_string(),
            )
        })
    };
    match v {
        Value::String(code) => vec![(String::new(), code.clone())],
        Value::Object(o) => match o.get("coding").and_then(Value::as_array) {
            Some(codings) => codings.iter().filter_map(pair).collect(),
            None => pair(v).into_iter().collect(),
        },
        _ => Vec::new(),
    }
}

/// The index codes of a reference value: `Type/id` and the bare `id` for a local
/// reference (so that `param=id` finds it), the string itself for a canonical.
fn reference_codes(v: &Value) -> Vec<String> {
    let reference = match v {
        Value::String(canonical) => return vec![canonical.clone()],
        other => other.get("reference").and_then(Value::as_str),
    };
    let Some(r) = reference else {
        return Vec::new();
    };
    match r.split_once('/') {
        Some((t, id))
            if !id.contains('/') && t.chars().next().is_some_and(|c| c.is_ascii_uppercase()) =>
        {
            vec![r.to_string(), id.to_string()]
        }
        _ => vec![r.to_string()],
    }
}

/// Whether a Reference value is a local reference to a resource of `resource_type`.
fn refers_to(v: &Value, resource_type: &str) -> bool {
    v.get("reference")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(resource_type))
        .is_some_and(|id| id.starts_with('/'))
}

/// Canonical resources searched by `url` and `version` (the ones this server defines or
/// a clinic adds: exercises, templates, profiles, code systems).
pub const CANONICAL_TYPES: &[&str] = &[
    "ActivityDefinition",
    "CodeSystem",
    "OperationDefinition",
    "PlanDefinition",
    "Questionnaire",
    "SearchParameter",
    "StructureDefinition",
    "ValueSet",
];

/// Types whose R4 definition has no `identifier` element.
const NO_IDENTIFIER: &[&str] = &[
    "AuditEvent",
    "Binary",
    "CapabilityStatement",
    "CompartmentDefinition",
    "Linkage",
    "OperationDefinition",
    "SearchParameter",
    "Subscription",
    "TerminologyCapabilities",
];

/// The search parameters supported for `resource_type`.
pub fn params_for(resource_type: &str) -> Vec<SearchParam> {
    let mut params = vec![ID, LAST_UPDATED];
    if !NO_IDENTIFIER.contains(&resource_type) {
        params.push(IDENTIFIER);
    }
    if CANONICAL_TYPES.contains(&resource_type) {
        params.push(URL);
        params.push(VERSION);
    }
    params.extend(element_params(resource_type).map(|p| p.param));
    params.extend(ALIASES.iter().filter(|(t, ..)| *t == resource_type).map(
        |(_, name, _, _, definition)| SearchParam {
            name,
            kind: ParamType::Reference,
            definition,
        },
    ));
    params
}

/// Looks up one supported parameter by name.
pub fn find_param(resource_type: &str, name: &str) -> Option<SearchParam> {
    params_for(resource_type)
        .into_iter()
        .find(|p| p.name == name)
}

/// A token value to index: `(parameter, system, code)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenValue {
    pub param: &'static str,
    pub system: String,
    pub code: String,
}

/// The token values of a resource for its indexed parameters.
pub fn token_values(resource_type: &str, json: &Map<String, Value>) -> Vec<TokenValue> {
    let mut out = Vec::new();
    if !NO_IDENTIFIER.contains(&resource_type) {
        for (system, code) in identifiers(json) {
            out.push(TokenValue {
                param: IDENTIFIER.name,
                system,
                code,
            });
        }
    }
    if CANONICAL_TYPES.contains(&resource_type) {
        for param in [URL, VERSION] {
            if let Some(v) = json.get(param.name).and_then(Value::as_str) {
                out.push(TokenValue {
                    param: param.name,
                    system: String::new(),
                    code: v.to_string(),
                });
            }
        }
    }
    for p in element_params(resource_type) {
        for path in p.paths {
            for v in values_at(json, path) {
                match p.param.kind {
                    ParamType::Date => {}
                    ParamType::String => {
                        for part in string_parts(v) {
                            out.push(TokenValue {
                                param: p.param.name,
                                system: String::new(),
                                code: normalize(part),
                            });
                            out.push(TokenValue {
                                param: p.param.name,
                                system: EXACT_SYSTEM.to_string(),
                                code: part.to_string(),
                            });
                        }
                    }
                    ParamType::Reference => {
                        if p.only.is_some_and(|t| !refers_to(v, t)) {
                            continue;
                        }
                        for code in reference_codes(v) {
                            out.push(TokenValue {
                                param: p.param.name,
                                system: String::new(),
                                code,
                            });
                        }
                    }
                    _ => {
                        for (system, code) in token_pairs(v) {
                            out.push(TokenValue {
                                param: p.param.name,
                                system,
                                code,
                            });
                        }
                        for text in token_texts(v) {
                            out.push(TokenValue {
                                param: p.text_param,
                                system: String::new(),
                                code: normalize(text),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// A date search value: the instants `[lo, hi)` (microseconds since the Unix epoch)
/// that an element covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateValue {
    pub param: &'static str,
    pub lo: i64,
    pub hi: i64,
}

/// The date values of a resource for its indexed date parameters: a date or dateTime
/// covers what it names (a whole day, month or year when partial; in UTC when it has
/// no offset), a Period from the start of its start to the end of its end (open ends
/// unbounded).
pub fn date_values(resource_type: &str, json: &Map<String, Value>) -> Vec<DateValue> {
    let mut out = Vec::new();
    for p in element_params(resource_type).filter(|p| p.param.kind == ParamType::Date) {
        for path in p.paths {
            for v in values_at(json, path) {
                let range = match v {
                    // the local day a dateTime is written in: its first 10 characters
                    Value::String(s) if p.param.name == SESSION_DAY.name => {
                        s.get(..10).and_then(date_range)
                    }
                    Value::String(s) => date_range(s),
                    Value::Object(period) => {
                        let start = period.get("start").and_then(Value::as_str);
                        let end = period.get("end").and_then(Value::as_str);
                        match (start.map(date_range), end.map(date_range)) {
                            (Some(None), _) | (_, Some(None)) | (None, None) => None,
                            (s, e) => Some((
                                s.flatten().map_or(i64::MIN, |r| r.0),
                                e.flatten().map_or(i64::MAX, |r| r.1),
                            )),
                        }
                    }
                    _ => None,
                };
                if let Some((lo, hi)) = range {
                    out.push(DateValue {
                        param: p.param.name,
                        lo,
                        hi,
                    });
                }
            }
        }
    }
    out.sort_by_key(|d| (d.param, d.lo, d.hi));
    out.dedup();
    out
}

/// The instant range `[lo, hi)` in microseconds that a FHIR date/dateTime/instant
/// denotes (partial dates cover their whole year, month or day, in UTC).
pub fn date_range(s: &str) -> Option<(i64, i64)> {
    use jiff::civil::{Date, DateTime};
    use jiff::{Timestamp, tz::TimeZone};
    let micros = |t: Timestamp| t.as_microsecond();
    let at_utc = |d: DateTime| d.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
    match s.len() {
        4 => {
            let y: i16 = s.parse().ok()?;
            let lo = Date::new(y, 1, 1).ok()?;
            let hi = Date::new(y.checked_add(1)?, 1, 1).ok()?;
            Some((micros(at_utc(lo.into())?), micros(at_utc(hi.into())?)))
        }
        7 => {
            let lo: Date = format!("{s}-01").parse().ok()?;
            let hi = lo.checked_add(jiff::Span::new().months(1)).ok()?;
            Some((micros(at_utc(lo.into())?), micros(at_utc(hi.into())?)))
        }
        10 => {
            let lo: Date = s.parse().ok()?;
            let hi = lo.tomorrow().ok()?;
            Some((micros(at_utc(lo.into())?), micros(at_utc(hi.into())?)))
        }
        _ => {
            let t: Timestamp = s.parse().ok()?;
            let lo = micros(t);
            // A dateTime denotes the second (or finer unit) it names.
            let precision = match s.find('.') {
                Some(dot) => {
                    let digits = s[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
                    10i64.pow(6u32.saturating_sub(digits.min(6) as u32))
                }
                None => 1_000_000,
            };
            Some((lo, lo + precision))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_day_is_the_local_date_of_its_window() {
        let task = serde_json::json!({
            "resourceType": "Task",
            "restriction": {"period": {"start": "2026-12-02T00:00:00-05:00",
                                       "end": "2026-12-03T00:00:00-05:00"}}
        });
        let Value::Object(task) = task else {
            panic!("object")
        };
        let day = date_values("Task", &task)
            .into_iter()
            .find(|d| d.param == "session-day");
        // the day as written in the patient's offset, not the UTC day of the instant
        let (lo, hi) = date_range("2026-12-02").unwrap_or_default();
        assert_eq!(
            day,
            Some(DateValue {
                param: "session-day",
                lo,
                hi
            })
        );
    }

    #[test]
    fn dates_and_periods_become_ranges() {
        let task = serde_json::json!({
            "resourceType": "Task",
            "authoredOn": "2026-11-20T09:31:00Z",
            "executionPeriod": {"start": "2026-11-21"},
            "lastModified": "not a date"
        });
        let Value::Object(task) = task else {
            panic!("object")
        };
        let v = date_values("Task", &task);
        let (lo, hi) = date_range("2026-11-20T09:31:00Z").unwrap_or_default();
        assert_eq!(hi - lo, 1_000_000);
        assert!(v.contains(&DateValue {
            param: "authored-on",
            lo,
            hi
        }));
        let (day, _) = date_range("2026-11-21").unwrap_or_default();
        assert!(v.contains(&DateValue {
            param: "period",
            lo: day,
            hi: i64::MAX
        }));
        assert_eq!(v.len(), 2, "an unreadable date is not indexed: {v:?}");
        // a date parameter is not a token
        assert!(
            token_values("Task", &task)
                .iter()
                .all(|t| t.param != "authored-on")
        );
    }

    #[test]
    fn names_are_indexed_without_case_or_accents_and_as_written() {
        let patient = serde_json::json!({"name": [{"family": "Álvarez-Núñez", "given": ["Zoë", "Ann"]}],
            "gender": "female"});
        let tokens = token_values("Patient", patient.as_object().expect("object"));
        let rows = |param: &str| -> Vec<(String, String)> {
            tokens
                .iter()
                .filter(|t| t.param == param)
                .map(|t| (t.system.clone(), t.code.clone()))
                .collect()
        };
        let family = rows("family");
        assert!(family.contains(&(String::new(), "alvarez-nunez".into())));
        assert!(family.contains(&(EXACT_SYSTEM.into(), "Álvarez-Núñez".into())));
        assert_eq!(rows("given").len(), 4);
        assert_eq!(rows("name").len(), 6);
        assert_eq!(normalize("ÅNGSTRÖM Ǆ"), "angstrom ǆ");
    }

    #[test]
    fn token_texts_are_indexed_for_text_searches() {
        let obs = serde_json::json!({"code": {"text": "Pain severity",
            "coding": [{"system": "http://loinc.org", "code": "72514-3", "display": "Pain severity - 0-10 verbal numeric rating"}]}});
        let tokens = token_values("Observation", obs.as_object().expect("object"));
        let texts: Vec<&str> = tokens
            .iter()
            .filter(|t| t.param == "code:text")
            .map(|t| t.code.as_str())
            .collect();
        assert_eq!(
            texts,
            [
                "pain severity",
                "pain severity - 0-10 verbal numeric rating"
            ]
        );
        assert_eq!(text_param("Observation", "code"), Some("code:text"));
        assert_eq!(single_target("Task", "patient"), Some("Patient"));
        assert_eq!(single_target("Task", "focus"), None);
    }

    #[test]
    fn the_generated_table_is_the_r4_patient_compartment() {
        // R4 4.0.1 lists 66 types with parameters, the Patient (by `link`) among them
        assert_eq!(PATIENT_COMPARTMENT.len(), 66);
        let params = |t: &str| -> Vec<&str> {
            PATIENT_COMPARTMENT
                .iter()
                .find(|(x, _)| *x == t)
                .map(|(_, ps)| ps.iter().map(|p| p.name).collect())
                .unwrap_or_default()
        };
        assert_eq!(params("Observation"), ["subject", "performer"]);
        assert_eq!(params("Communication"), ["subject", "sender", "recipient"]);
        assert_eq!(params("Provenance"), ["patient"]);
        assert_eq!(params("Task"), Vec::<&str>::new(), "R4 has no Task");
        assert_eq!(params("Device"), Vec::<&str>::new());
        // every parameter of the table is a supported reference parameter
        for (t, ps) in PATIENT_COMPARTMENT {
            for p in *ps {
                let found = find_param(t, p.name);
                assert_eq!(
                    found.map(|f| f.kind),
                    Some(ParamType::Reference),
                    "{t}.{}",
                    p.name
                );
            }
            assert!(is_compartment_type(t), "{t}");
        }
        assert!(is_compartment_type("Task"));
        assert!(!is_compartment_type("Device") && !is_compartment_type("Practitioner"));
        assert_eq!(compartment_params("Observation"), ["subject", "performer"]);
        // an alias stands for the parameter whose rows it searches
        assert_eq!(compartment_params("CarePlan"), ["subject", "performer"]);
        assert_eq!(compartment_params("Task"), ["subject"]);
    }

    #[test]
    fn hand_written_parameters_agree_with_the_r4_definitions() {
        for (t, ps) in PATIENT_COMPARTMENT {
            // the audit trail is the server's own and never in a patient's reach
            if *t == "AuditEvent" {
                continue;
            }
            for c in *ps {
                if let Some((of, target)) = alias_of(t, c.name) {
                    let paths = element_params(t)
                        .find(|p| p.param.name == of)
                        .map(|p| p.paths);
                    assert_eq!(paths, Some(c.paths), "{t}.{} is {of}", c.name);
                    assert_eq!(c.only.or(c.target), Some(target), "{t}.{}", c.name);
                } else if let Some(p) = element_params(t).find(|p| p.param.name == c.name) {
                    assert_eq!(p.paths, c.paths, "{t}.{}", c.name);
                    assert_eq!(p.only, c.only, "{t}.{}", c.name);
                }
            }
        }
    }

    #[test]
    fn compartment_parameters_are_indexed_and_place_resources() {
        let obs = serde_json::json!({"subject": {"reference": "Patient/other"},
            "performer": [{"reference": "Practitioner/t"}, {"reference": "Patient/p1"}]});
        let obs = obs.as_object().expect("object");
        assert!(in_patient_compartment("Observation", "o", obs, "p1"));
        assert!(in_patient_compartment("Observation", "o", obs, "other"));
        assert!(!in_patient_compartment("Observation", "o", obs, "p2"));
        assert_eq!(
            patient_of("Observation", "o", obs).as_deref(),
            Some("other")
        );
        // `.where(resolve() is Patient)`: only the Patient references are indexed
        let prov = serde_json::json!({"target": [{"reference": "Observation/o"},
            {"reference": "Patient/p1"}], "agent": [{"who": {"reference": "Practitioner/t"}}]});
        let prov = prov.as_object().expect("object");
        let codes: Vec<String> = token_values("Provenance", prov)
            .into_iter()
            .filter(|t| t.param == "patient")
            .map(|t| t.code)
            .collect();
        assert_eq!(codes, ["Patient/p1", "p1"]);
        assert_eq!(patient_of("Provenance", "v", prov).as_deref(), Some("p1"));
        assert_eq!(single_target("Provenance", "patient"), Some("Patient"));
        let comm = serde_json::json!({"recipient": [{"reference": "Patient/p1"}]});
        assert!(in_patient_compartment(
            "Communication",
            "c",
            comm.as_object().expect("object"),
            "p1"
        ));
        // a Patient: itself, or one whose link names the patient
        let linked = serde_json::json!({"link": [{"other": {"reference": "Patient/p1"}, "type": "seealso"}]});
        let linked = linked.as_object().expect("object");
        assert!(in_patient_compartment("Patient", "p1", &Map::new(), "p1"));
        assert!(in_patient_compartment("Patient", "p9", linked, "p1"));
        assert!(!in_patient_compartment("Patient", "p9", &Map::new(), "p1"));
        // outside every compartment
        let device = serde_json::json!({"patient": {"reference": "Patient/p1"}});
        let device = device.as_object().expect("object");
        assert!(!in_patient_compartment("Device", "d", device, "p1"));
        assert_eq!(patient_of("Device", "d", device), None);
    }

    #[test]
    fn identifier_where_the_type_has_one() {
        assert!(find_param("Patient", "identifier").is_some());
        assert!(find_param("Binary", "identifier").is_none());
        assert!(find_param("Binary", "_id").is_some());
        assert!(find_param("Patient", "nickname").is_none());
        assert!(find_param("ActivityDefinition", "url").is_some());
        assert!(find_param("Patient", "url").is_none());
        assert!(find_param("PlanDefinition", "topic").is_some());
        assert!(find_param("Patient", "topic").is_none());
    }

    #[test]
    fn library_status_and_topics_are_indexed() {
        let ad = serde_json::json!({"status": "active", "topic": [{"coding": [
            {"system": "https://hep-fhir.org/fhir/CodeSystem/body-region", "code": "knee"},
            {"code": "rehab"}]}]});
        let tokens = token_values("ActivityDefinition", ad.as_object().expect("object"));
        let codes: Vec<(&str, &str)> = tokens.iter().map(|t| (t.param, t.code.as_str())).collect();
        assert_eq!(
            codes,
            [("status", "active"), ("topic", "knee"), ("topic", "rehab")]
        );
        assert!(token_values("Patient", ad.as_object().expect("object")).is_empty());
    }
}
