//! The search parameters the server supports, per resource type: the one source for the
//! query parser, the index extraction and the CapabilityStatement.

use serde_json::{Map, Value};

use crate::references::identifiers;

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

/// Canonical resources searched by `url` and `version` (the ones this server defines or
/// a clinic adds: exercises, templates, profiles, code systems).
const CANONICAL_TYPES: &[&str] = &[
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_where_the_type_has_one() {
        assert!(find_param("Patient", "identifier").is_some());
        assert!(find_param("Binary", "identifier").is_none());
        assert!(find_param("Binary", "_id").is_some());
        assert!(find_param("Patient", "name").is_none());
        assert!(find_param("ActivityDefinition", "url").is_some());
        assert!(find_param("Patient", "url").is_none());
    }
}
