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

/// The library's exercises and templates are also searched by `status` and `topic`
/// (R4 `ActivityDefinition-status`, `-topic`, `PlanDefinition-status`, `-topic`).
const LIBRARY_PARAMS: &[(&str, [SearchParam; 2])] = &[
    (
        "ActivityDefinition",
        [
            SearchParam {
                name: "status",
                kind: ParamType::Token,
                definition: "http://hl7.org/fhir/SearchParameter/ActivityDefinition-status",
            },
            SearchParam {
                name: "topic",
                kind: ParamType::Token,
                definition: "http://hl7.org/fhir/SearchParameter/ActivityDefinition-topic",
            },
        ],
    ),
    (
        "PlanDefinition",
        [
            SearchParam {
                name: "status",
                kind: ParamType::Token,
                definition: "http://hl7.org/fhir/SearchParameter/PlanDefinition-status",
            },
            SearchParam {
                name: "topic",
                kind: ParamType::Token,
                definition: "http://hl7.org/fhir/SearchParameter/PlanDefinition-topic",
            },
        ],
    ),
];

fn library_params(resource_type: &str) -> Option<&'static [SearchParam; 2]> {
    LIBRARY_PARAMS
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map(|(_, p)| p)
}

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
    if let Some(library) = library_params(resource_type) {
        params.extend_from_slice(library);
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
    if library_params(resource_type).is_some() {
        if let Some(status) = json.get("status").and_then(Value::as_str) {
            out.push(TokenValue {
                param: "status",
                system: "http://hl7.org/fhir/publication-status".into(),
                code: status.to_string(),
            });
        }
        let topics = json.get("topic").and_then(Value::as_array);
        for coding in topics
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("coding").and_then(Value::as_array))
            .flatten()
        {
            if let Some(code) = coding.get("code").and_then(Value::as_str) {
                out.push(TokenValue {
                    param: "topic",
                    system: coding
                        .get("system")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    code: code.to_string(),
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
