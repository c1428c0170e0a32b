//! References and identifiers inside a resource.

use serde_json::{Map, Value};

use crate::resource_types::{is_resource_type, is_valid_id};

/// What a `Reference.reference` string points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceTarget {
    /// `Type/id` or `Type/id/_history/vid` on this server.
    Local {
        resource_type: String,
        id: String,
        version: Option<String>,
    },
    /// `#id`: a contained resource.
    Contained(String),
    /// An absolute URL, `urn:uuid:` or `urn:oid:`: stored as it is.
    External(String),
    /// Anything else (a search URL, an unknown type, a malformed id).
    Invalid(String),
}

/// Classifies a reference string.
pub fn classify_reference(reference: &str) -> ReferenceTarget {
    if let Some(local) = reference.strip_prefix('#') {
        return ReferenceTarget::Contained(local.to_string());
    }
    if reference.starts_with("urn:uuid:")
        || reference.starts_with("urn:oid:")
        || reference.contains("://")
    {
        return ReferenceTarget::External(reference.to_string());
    }
    let parts: Vec<&str> = reference.split('/').collect();
    match parts.as_slice() {
        [t, id] if is_resource_type(t) && is_valid_id(id) => ReferenceTarget::Local {
            resource_type: (*t).to_string(),
            id: (*id).to_string(),
            version: None,
        },
        [t, id, "_history", v] if is_resource_type(t) && is_valid_id(id) && is_valid_id(v) => {
            ReferenceTarget::Local {
                resource_type: (*t).to_string(),
                id: (*id).to_string(),
                version: Some((*v).to_string()),
            }
        }
        _ => ReferenceTarget::Invalid(reference.to_string()),
    }
}

/// One `reference` found in a resource, with its FHIRPath location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundReference {
    pub path: String,
    pub reference: String,
}

/// Every `Reference.reference` in the resource (contained resources included).
pub fn find_references(resource_type: &str, json: &Map<String, Value>) -> Vec<FoundReference> {
    let mut out = Vec::new();
    let mut path = resource_type.to_string();
    walk_object(json, &mut path, &mut out);
    out
}

/// Whether `key` of `obj` holds the entries of a Bundle resource. A Bundle stored or
/// nested as a resource (a document, a collection, a message) is a world of its own: the
/// references of its entries are resolved against its `fullUrl`s, never against this
/// server or an enclosing transaction.
pub fn is_bundle_entries(obj: &Map<String, Value>, key: &str) -> bool {
    key == "entry" && obj.get("resourceType").and_then(Value::as_str) == Some("Bundle")
}

fn walk_object(obj: &Map<String, Value>, path: &mut String, out: &mut Vec<FoundReference>) {
    for (key, value) in obj {
        if is_bundle_entries(obj, key) {
            continue;
        }
        let len = path.len();
        path.push('.');
        path.push_str(key);
        match value {
            Value::String(s) if key == "reference" => out.push(FoundReference {
                path: path.clone(),
                reference: s.clone(),
            }),
            Value::Object(o) => walk_object(o, path, out),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Object(o) = item {
                        let l2 = path.len();
                        path.push_str(&format!("[{i}]"));
                        walk_object(o, path, out);
                        path.truncate(l2);
                    }
                }
            }
            _ => {}
        }
        path.truncate(len);
    }
}

/// The resource's business identifiers as `(system, value)` pairs (system empty when absent).
pub fn identifiers(json: &Map<String, Value>) -> Vec<(String, String)> {
    let one = |v: &Value| -> Option<(String, String)> {
        let value = v.get("value")?.as_str()?;
        let system = v.get("system").and_then(Value::as_str).unwrap_or("");
        Some((system.to_string(), value.to_string()))
    };
    match json.get("identifier") {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(v @ Value::Object(_)) => one(v).into_iter().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies() {
        assert_eq!(
            classify_reference("Patient/1"),
            ReferenceTarget::Local {
                resource_type: "Patient".into(),
                id: "1".into(),
                version: None
            }
        );
        assert!(matches!(
            classify_reference("Patient/1/_history/2"),
            ReferenceTarget::Local {
                version: Some(_),
                ..
            }
        ));
        assert!(matches!(
            classify_reference("#c1"),
            ReferenceTarget::Contained(_)
        ));
        assert!(matches!(
            classify_reference("https://ehr.example.org/fhir/Patient/9"),
            ReferenceTarget::External(_)
        ));
        assert!(matches!(
            classify_reference("urn:uuid:1234"),
            ReferenceTarget::External(_)
        ));
        assert!(matches!(
            classify_reference("Foo/1"),
            ReferenceTarget::Invalid(_)
        ));
        assert!(matches!(
            classify_reference("Patient/a_b"),
            ReferenceTarget::Invalid(_)
        ));
        assert!(matches!(
            classify_reference("Patient?identifier=x|1"),
            ReferenceTarget::Invalid(_)
        ));
    }

    #[test]
    fn finds_nested_references_with_paths() {
        let v = json!({"resourceType":"CarePlan","subject":{"reference":"Patient/1"},
            "activity":[{"reference":{"reference":"ServiceRequest/a"}},{"reference":{"display":"x"}},{"reference":{"reference":"ServiceRequest/b"}}]});
        let found = find_references("CarePlan", v.as_object().expect("object"));
        let paths: Vec<&str> = found.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "CarePlan.subject.reference",
                "CarePlan.activity[0].reference.reference",
                "CarePlan.activity[2].reference.reference"
            ]
        );
    }

    #[test]
    fn identifiers_from_array_or_single() {
        let v = json!({"identifier":[{"system":"s","value":"1"},{"value":"2"},{"system":"x"}]});
        assert_eq!(
            identifiers(v.as_object().expect("object")),
            vec![("s".into(), "1".into()), ("".into(), "2".into())]
        );
        let v = json!({"identifier":{"system":"s","value":"3"}});
        assert_eq!(identifiers(v.as_object().expect("object")).len(), 1);
    }
}
