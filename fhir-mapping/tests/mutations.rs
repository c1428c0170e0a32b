//! Valid resources with one value swapped for a value of the wrong shape: every result
//! is either accepted (and then valid) or refused with a location, never a failure of
//! the reader.

use fhir_mapping::validate::validate;
use fhir_mapping::{Format, IssueType, ParseLimits, Severity, parse_resource};
use proptest::prelude::*;
use serde_json::{Value, json};

fn examples() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/r4-examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "json")
            && !path.to_string_lossy().contains("Binary-")
        {
            let text = std::fs::read(&path).expect("read");
            let doc: Value = serde_json::from_slice(&text).expect("JSON");
            if validate(&doc).iter().all(|i| i.severity != Severity::Error) {
                out.push(doc);
            }
        }
    }
    out.push(serde_json::from_str(include_str!("fixtures/careplan-hep.json")).expect("JSON"));
    out
}

/// The paths of every leaf (a value that is not an object or array) of a document.
fn leaves(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                if k == "resourceType" {
                    continue;
                }
                path.push(Step::Key(k.clone()));
                leaves(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(Step::Index(i));
                leaves(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn at<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let mut here = v;
    for step in path {
        here = match step {
            Step::Key(k) => here.get_mut(k.as_str())?,
            Step::Index(i) => here.get_mut(*i)?,
        };
    }
    Some(here)
}

/// Values of shapes a client gets wrong.
fn wrong_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("")),
        Just(json!(" padded ")),
        Just(json!("2020-13-45")),
        Just(json!("2020-02-30T10:00:00Z")),
        Just(json!("yesterday")),
        Just(json!("not a uri")),
        Just(json!("12")),
        Just(json!("true")),
        Just(json!(12)),
        Just(json!(-1)),
        Just(json!(3000000000u64)),
        Just(json!(1.5)),
        Just(json!(true)),
        Just(Value::Null),
        Just(json!({})),
        Just(json!([])),
        Just(json!({"x": 1})),
        Just(json!(["a"])),
        Just(json!("<div>no namespace</div>")),
        "[a-z ]{0,12}".prop_map(Value::String),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn a_wrong_value_is_accepted_valid_or_refused_with_a_location(
        pick in any::<prop::sample::Index>(),
        leaf in any::<prop::sample::Index>(),
        value in wrong_value(),
    ) {
        let docs = examples();
        let mut doc = docs[pick.index(docs.len())].clone();
        let mut paths = Vec::new();
        leaves(&doc, &mut Vec::new(), &mut paths);
        prop_assume!(!paths.is_empty());
        let path = paths[leaf.index(paths.len())].clone();
        if let Some(slot) = at(&mut doc, &path) {
            *slot = value;
        }
        let bytes = serde_json::to_vec(&doc).expect("JSON");
        match parse_resource(&bytes, Format::Json, &ParseLimits::default()) {
            Ok(parsed) => {
                let again = Value::Object(parsed.json().clone());
                let errors: Vec<_> = validate(&again)
                    .into_iter()
                    .filter(|i| i.severity == Severity::Error)
                    .collect();
                prop_assert!(errors.is_empty(), "accepted but invalid: {errors:?}");
            }
            Err(e) => {
                prop_assert!(!e.issues.is_empty());
                for issue in &e.issues {
                    prop_assert!(issue.code != IssueType::Exception, "{issue:?}");
                    prop_assert!(
                        issue.expression.is_some() || issue.position.is_some(),
                        "refused without a location: {issue:?} ({path:?})"
                    );
                }
            }
        }
    }
}
