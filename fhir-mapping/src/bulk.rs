//! HL7 Bulk Data Access 2.0 (`$export`): the parameters of a kick-off sent as a
//! `Parameters` resource, the completion manifest, and the split of `_typeFilter`.

use serde_json::{Map, Value, json};

/// The `_outputFormat` values accepted: NDJSON of FHIR resources and its aliases.
pub const OUTPUT_FORMATS: &[&str] = &["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// The media type of the files.
pub const NDJSON: &str = "application/fhir+ndjson";

/// The kick-off parameters of a `Parameters` body as name/value pairs, in the form they
/// have in a query string (`patient` as `Patient/id`). Values of unknown types are an
/// error naming the parameter.
pub fn kickoff_pairs(parameters: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err("the body of a POST kick-off is a Parameters resource".into());
    }
    let mut pairs = Vec::new();
    for p in parameters
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or("every parameter has a name")?;
        let value = [
            "valueString",
            "valueInstant",
            "valueDateTime",
            "valueCode",
            "valueUri",
            "valueUrl",
            "valueCanonical",
        ]
        .iter()
        .find_map(|k| p.get(*k).and_then(Value::as_str).map(str::to_string))
        .or_else(|| {
            p.get("valueBoolean")
                .and_then(Value::as_bool)
                .map(|b| b.to_string())
        })
        .or_else(|| {
            p.pointer("/valueReference/reference")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or_else(|| format!("the parameter `{name}` has no value this operation reads"))?;
        pairs.push((name.to_string(), value));
    }
    Ok(pairs)
}

/// The queries of a `_typeFilter` value: several are separated by commas, and a comma
/// inside a query (an OR of values) stays in it: a new query starts only where a
/// resource type and `?` follow the comma.
pub fn split_type_filters(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in value.match_indices(',') {
        if starts_query(&value[i + 1..]) {
            out.push(&value[start..i]);
            start = i + 1;
        }
    }
    out.push(&value[start..]);
    out.into_iter().filter(|q| !q.trim().is_empty()).collect()
}

fn starts_query(s: &str) -> bool {
    match s.split_once('?') {
        Some((t, _)) => {
            t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && t.chars().all(|c| c.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// One file of a manifest.
#[derive(Debug, Clone)]
pub struct ManifestFile<'a> {
    pub resource_type: &'a str,
    pub url: String,
    pub count: u64,
}

/// The manifest of a completed export.
pub fn manifest(
    transaction_time: &str,
    request: &str,
    output: &[ManifestFile<'_>],
    error: &[ManifestFile<'_>],
) -> Value {
    let files = |files: &[ManifestFile<'_>]| -> Vec<Value> {
        files
            .iter()
            .map(|f| json!({ "type": f.resource_type, "url": f.url, "count": f.count }))
            .collect()
    };
    json!({
        "transactionTime": transaction_time,
        "request": request,
        "requiresAccessToken": true,
        "output": files(output),
        "error": files(error),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filters_split_between_queries_only() {
        assert_eq!(
            split_type_filters("Task?status=completed,failed,CarePlan?status=active"),
            vec!["Task?status=completed,failed", "CarePlan?status=active"]
        );
        assert_eq!(split_type_filters("Task?code=a,b"), vec!["Task?code=a,b"]);
        assert!(split_type_filters("").is_empty());
    }

    #[test]
    fn parameters_become_pairs() {
        let body = json!({
            "resourceType": "Parameters",
            "parameter": [
                { "name": "_type", "valueString": "Patient,Task" },
                { "name": "_since", "valueInstant": "2026-01-01T00:00:00Z" },
                { "name": "patient", "valueReference": { "reference": "Patient/p1" } }
            ]
        });
        let pairs = kickoff_pairs(body.as_object().expect("object")).expect("pairs");
        assert_eq!(
            pairs,
            vec![
                ("_type".to_string(), "Patient,Task".to_string()),
                ("_since".to_string(), "2026-01-01T00:00:00Z".to_string()),
                ("patient".to_string(), "Patient/p1".to_string()),
            ]
        );
        let bad = json!({ "resourceType": "Parameters", "parameter": [{ "name": "x", "valueQuantity": {} }] });
        assert!(kickoff_pairs(bad.as_object().expect("object")).is_err());
    }
}
