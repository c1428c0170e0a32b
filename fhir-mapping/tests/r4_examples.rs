//! The official R4 examples (`hl7.fhir.r4.examples` 4.0.1, CC0) through the value
//! validator: every example that is valid R4 passes, and each one known to be invalid is
//! listed with why.
//!
//! The package is not in the repository: `.ci/run` fetches it and sets
//! `HEP_R4_EXAMPLES` to its `package` directory. Without it the test checks the small
//! committed subset in `tests/fixtures/r4-examples/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fhir_mapping::Severity;
use fhir_mapping::validate::validate;

/// Examples of the official package that are not valid R4, with the reason. The
/// validator must refuse each of them, at the location given.
const KNOWN_INVALID: &[(&str, &str, &str)] = &[
    (
        "ActivityDefinition-blood-tubes-supply.json",
        "ActivityDefinition.text.div",
        "its narrative is only white space (txt-2)",
    ),
    (
        "ActivityDefinition-heart-valve-replacement.json",
        "ActivityDefinition.text.div",
        "its narrative is only white space (txt-2)",
    ),
    (
        "EventDefinition-example.json",
        "EventDefinition.text.div",
        "its narrative is only white space (txt-2)",
    ),
    (
        "ImplementationGuide-fhir.json",
        "ImplementationGuide.name",
        "no name and no status (both 1..1); a reference id of 69 characters",
    ),
    (
        "Questionnaire-qs1.json",
        "Questionnaire.item[0].item[0].linkId",
        "nested items without linkId (1..1)",
    ),
    (
        "Questionnaire-zika-virus-exposure-assessment.json",
        "Questionnaire.text.div",
        "its narrative is an empty <pre> (txt-2)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-author.json",
        "SearchParameter.base",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-effective.json",
        "SearchParameter.base",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-end.json",
        "SearchParameter.base",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-keyword.json",
        "SearchParameter.base",
        "no base (1..*)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-workflow.json",
        "SearchParameter.base",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-author.json",
        "SearchParameter.base",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-effective.json",
        "SearchParameter.base",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-end.json",
        "SearchParameter.base",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-keyword.json",
        "SearchParameter.base",
        "no base (1..*)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-workflow.json",
        "SearchParameter.base",
        "no base (1..*)",
    ),
    (
        "ig-r4.json",
        "ImplementationGuide.name",
        "the same ImplementationGuide as ImplementationGuide-fhir.json",
    ),
];

fn example_files() -> (PathBuf, Vec<PathBuf>) {
    let dir = match std::env::var_os("HEP_R4_EXAMPLES") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/r4-examples"),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| n != "package.json" && n != ".index.json")
        })
        .collect();
    files.sort();
    (dir, files)
}

#[test]
fn every_valid_r4_example_passes_and_the_invalid_ones_are_refused() {
    let (dir, files) = example_files();
    assert!(!files.is_empty(), "no examples in {}", dir.display());
    let mut unexpected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut refused = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let doc: serde_json::Value =
            serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let errors: Vec<String> = validate(&doc)
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| format!("{}: {}", i.expression.unwrap_or_default(), i.diagnostics))
            .collect();
        match KNOWN_INVALID.iter().find(|(file, _, _)| *file == name) {
            Some((_, at, why)) => {
                assert!(
                    errors.iter().any(|e| e.starts_with(&format!("{at}: "))),
                    "{name} is invalid ({why}) but was not refused at {at}: {errors:?}"
                );
                refused.push(name);
            }
            None if !errors.is_empty() => {
                unexpected.insert(name, errors);
            }
            None => {}
        }
    }
    let shown: Vec<String> = unexpected
        .iter()
        .take(40)
        .map(|(n, e)| format!("{n}: {}", e.join(" | ")))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} of {} examples refused:\n{}",
        unexpected.len(),
        files.len(),
        shown.join("\n")
    );
    eprintln!(
        "{} examples: {} valid, {} known invalid and refused",
        files.len(),
        files.len() - refused.len(),
        refused.len()
    );
}
