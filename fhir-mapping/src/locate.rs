//! Names the FHIRPath location of a structural error.
//!
//! fhirbolt reads a document into an intermediate tree before it maps it onto the R4
//! model, so its errors carry neither a position nor a path. They do name what was
//! wrong (the unknown element with the elements expected there, or the offending value);
//! this module finds that element in the document and names its path.

use serde_json::{Map, Value};

/// The path of the element that `message` (a fhirbolt/serde error) is about, if it can
/// be found unambiguously enough to help.
pub fn locate(doc: &Value, root: &str, message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`')?;
        let expected: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return find(doc, root, &mut |obj| {
            obj.contains_key(field)
                && (expected.is_empty()
                    || obj
                        .keys()
                        .filter(|k| k.as_str() != field && k.as_str() != "resourceType")
                        .all(|k| expected.contains(&k.trim_start_matches('_'))))
        })
        .map(|p| format!("{p}.{field}"));
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let (field, _) = rest.split_once('`')?;
        let obj = doc.as_object()?;
        return (!obj.contains_key(field)).then(|| format!("{root}.{field}"));
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (kind, rest) = rest.split_once(' ')?;
        let (shown, _) = rest.rsplit_once(", expected")?;
        return find_leaf(doc, root, &|v| leaf_matches(v, kind, shown));
    }
    None
}

fn leaf_matches(v: &Value, kind: &str, shown: &str) -> bool {
    let shown = shown.trim_matches('`');
    match (kind, v) {
        ("string", Value::String(s)) => format!("{s:?}") == shown,
        ("integer" | "floating", Value::Number(n)) => n.to_string() == shown,
        ("boolean", Value::Bool(b)) => b.to_string() == shown,
        ("map", Value::Object(_)) | ("sequence", Value::Array(_)) => true,
        _ => false,
    }
}

fn find(
    v: &Value,
    path: &str,
    pred: &mut dyn FnMut(&Map<String, Value>) -> bool,
) -> Option<String> {
    match v {
        Value::Object(obj) => {
            if pred(obj) {
                return Some(path.to_string());
            }
            obj.iter()
                .find_map(|(k, child)| find(child, &format!("{path}.{k}"), pred))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, child)| find(child, &format!("{path}[{i}]"), pred)),
        _ => None,
    }
}

fn find_leaf(v: &Value, path: &str, pred: &dyn Fn(&Value) -> bool) -> Option<String> {
    match v {
        Value::Object(obj) => obj.iter().find_map(|(k, child)| {
            let p = format!("{path}.{k}");
            if pred(child) && !matches!(child, Value::Object(_) | Value::Array(_)) {
                Some(p)
            } else {
                find_leaf(child, &p, pred)
            }
        }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, child)| {
            let p = format!("{path}[{i}]");
            if pred(child) && !matches!(child, Value::Object(_) | Value::Array(_)) {
                Some(p)
            } else {
                find_leaf(child, &p, pred)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::locate;
    use serde_json::json;

    #[test]
    fn unknown_field_in_its_context() {
        let doc = json!({"resourceType":"Patient","name":[{"family":"A"},{"given":["x"],"nickname":"B"}]});
        let msg = "unknown field `nickname`, expected one of `id`, `extension`, `use`, `text`, `family`, `given`, `prefix`, `suffix`, `period`";
        assert_eq!(
            locate(&doc, "Patient", msg).as_deref(),
            Some("Patient.name[1].nickname")
        );
    }

    #[test]
    fn same_name_valid_elsewhere_is_not_blamed() {
        // `text` is valid in CodeableConcept but not in Coding.
        let doc = json!({"resourceType":"Observation","code":{"text":"ok","coding":[{"code":"1","text":"bad"}]}});
        let msg = "unknown field `text`, expected one of `id`, `extension`, `system`, `version`, `code`, `display`, `userSelected`";
        assert_eq!(
            locate(&doc, "Observation", msg).as_deref(),
            Some("Observation.code.coding[0].text")
        );
    }

    #[test]
    fn invalid_values() {
        let doc = json!({"resourceType":"Patient","name":[{"given":["x"]}],"birthDate":5});
        assert_eq!(
            locate(
                &doc,
                "Patient",
                "invalid type: integer `5`, expected a string"
            )
            .as_deref(),
            Some("Patient.birthDate")
        );
        let doc = json!({"resourceType":"Patient","gender":["x"]});
        assert_eq!(
            locate(&doc, "Patient", "invalid type: sequence, expected a string").as_deref(),
            None
        );
    }

    #[test]
    fn missing_field_at_the_root() {
        let doc = json!({"resourceType":"Observation","status":"final"});
        assert_eq!(
            locate(&doc, "Observation", "missing field `code`").as_deref(),
            Some("Observation.code")
        );
    }
}
