use serde_json::{Value, json};

use super::validate;
use crate::outcome::IssueType;

fn problems(doc: Value) -> Vec<(String, IssueType, String)> {
    validate(&doc)
        .into_iter()
        .map(|i| (i.expression.unwrap_or_default(), i.code, i.diagnostics))
        .collect()
}

fn locations(doc: Value) -> Vec<String> {
    problems(doc).into_iter().map(|p| p.0).collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("test JSON")
}

#[test]
fn a_valid_patient_has_no_problems() {
    let doc = json!({
        "resourceType": "Patient", "id": "p1",
        "meta": {"versionId": "1", "lastUpdated": "2024-01-01T10:00:00Z"},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Ann</div>"},
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
        "active": true,
        "name": [{"use": "official", "family": "Lee", "given": ["Ann", "B"]}],
        "telecom": [{"system": "phone", "value": "555", "use": "home"}],
        "gender": "female", "birthDate": "1990-02-28",
        "deceasedBoolean": false,
        "managingOrganization": {"reference": "Organization/1"},
        "contact": [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}], "name": {"family": "Lee"}}],
        "extension": [{"url": "http://example.org/x", "valueDateTime": "2020-02-29"}]
    });
    assert_eq!(problems(doc), vec![]);
}

#[test]
fn the_values_a_new_user_tried_are_all_refused_at_once() {
    let found = problems(json!({
        "resourceType": "Patient",
        "gender": "robot",
        "birthDate": "1990-13-45",
        "name": [{"family": ""}],
        "identifier": [{"system": "not a uri", "value": "1"}],
        "telecom": [{"system": "pigeon", "value": "x"}]
    }));
    let at: Vec<&str> = found.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        at,
        [
            "Patient.gender",
            "Patient.birthDate",
            "Patient.name[0].family",
            "Patient.identifier[0].system",
            "Patient.telecom[0].system"
        ]
    );
    assert_eq!(found[0].1, IssueType::CodeInvalid);
    assert!(
        found[0].2.contains("female, male, other, unknown"),
        "{}",
        found[0].2
    );
    for (_, _, text) in &found {
        assert!(!text.contains("serde") && !text.contains("Error"), "{text}");
    }
}

#[test]
fn observation_and_task_codes_instants_and_numbers() {
    let at = locations(parse(
        r#"{"resourceType":"Observation","status":"done","code":{"text":"w"},
            "issued":"2020-01-01",
            "valueQuantity":{"value":"1.5","comparator":"~"}}"#,
    ));
    assert_eq!(
        at,
        [
            "Observation.status",
            "Observation.issued",
            "Observation.value.ofType(Quantity).value",
            "Observation.value.ofType(Quantity).comparator"
        ]
    );
    let at = locations(json!({"resourceType": "Task", "status": "finished", "intent": "whatever"}));
    assert_eq!(at, ["Task.status", "Task.intent"]);
    let at = locations(json!({"resourceType": "Basic", "code": {"text": "x"},
        "extension": [{"url": "http://e.org/a", "valueDateTime": "2020-02-30"}]}));
    assert_eq!(at, ["Basic.extension[0].value.ofType(DateTime)"]);
}

#[test]
fn wrong_json_types_are_refused_not_converted() {
    let at = locations(json!({"resourceType": "Patient", "active": "true",
        "name": {"family": "A"}, "multipleBirthInteger": "2"}));
    assert_eq!(
        at,
        [
            "Patient.active",
            "Patient.name",
            "Patient.multipleBirth.ofType(Integer)"
        ]
    );
    let at = locations(json!({"resourceType": "Patient", "name": [{"given": [null]}]}));
    assert_eq!(at, ["Patient.name[0].given[0]"]);
    let at = locations(json!({"resourceType": "Patient", "gender": null}));
    assert_eq!(at, ["Patient.gender"]);
}

#[test]
fn nulls_and_primitive_extensions_line_up() {
    let ext = json!({"extension": [{"url": "http://e.org/a", "valueString": "x"}]});
    let ok = json!({"resourceType": "Patient",
        "name": [{"given": ["A", null], "_given": [null, ext]}]});
    assert_eq!(locations(ok), Vec::<String>::new());
    let misaligned = json!({"resourceType": "Patient",
        "name": [{"given": ["A", "B"], "_given": [null]}]});
    assert_eq!(locations(misaligned), ["Patient.name[0].given"]);
    let both_null = json!({"resourceType": "Patient",
        "name": [{"given": ["A", null], "_given": [null, null]}]});
    assert_eq!(
        locations(both_null),
        ["Patient.name[0].given[1]", "Patient.name[0].given[1]"]
    );
    // a status known only by its extension (data absent) is present
    let absent = json!({"resourceType": "Observation", "code": {"text": "x"},
        "_status": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}});
    assert_eq!(locations(absent), Vec::<String>::new());
    let not_primitive = json!({"resourceType": "Patient", "_name": {"id": "a"}});
    assert_eq!(locations(not_primitive), ["Patient._name"]);
}

#[test]
fn unknown_elements_required_elements_and_extensions() {
    let found = problems(json!({"resourceType": "Patient", "nickname": "x",
        "extension": [{"valueString": "no url"}, {"url": "http://e.org/a"},
            {"url": "http://e.org/b", "valueString": "v", "extension": [{"url": "c", "valueString": "d"}]}]}));
    let at: Vec<&str> = found.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        at,
        [
            "Patient.nickname",
            "Patient.extension[0].url",
            "Patient.extension[1]",
            "Patient.extension[2]"
        ]
    );
    assert_eq!(found[1].1, IssueType::Required);
    let at = locations(json!({"resourceType": "Observation"}));
    assert_eq!(at, ["Observation.status", "Observation.code"]);
    let at = locations(json!({"resourceType": "Patient", "name": [{"id": "only"}]}));
    assert_eq!(at, ["Patient.name[0]"]);
}

#[test]
fn references_are_checked_by_form_type_and_target() {
    let at = locations(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": "Nothing/1"},
        "performer": [{"reference": "Patient/"}, {"reference": "urn:uuid:NOT"}, {"reference": "#missing"},
            {"reference": "Practitioner/a b"}, {"reference": "Observation/1"}]}),
    );
    assert_eq!(
        at,
        [
            "Observation.subject.reference",
            "Observation.performer[0].reference",
            "Observation.performer[1].reference",
            "Observation.performer[2].reference",
            "Observation.performer[3].reference",
            "Observation.performer[4].reference"
        ]
    );
    let ok = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "contained": [{"resourceType": "Patient", "id": "p"}],
        "subject": {"reference": "#p"},
        "performer": [{"reference": "http://other.org/fhir/Practitioner/7/_history/2"},
            {"reference": "urn:uuid:1c0f1a5e-9e5b-4a48-8a7c-0d9a7d1c2b3e"},
            {"reference": "Practitioner?identifier=http://x|1"}]});
    assert_eq!(locations(ok), Vec::<String>::new());
}

#[test]
fn contained_and_bundled_resources_are_checked_where_they_are() {
    let at = locations(json!({"resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "gender": "x"}},
                  {"resource": {"resourceType": "Observation", "status": "not-a-status", "code": {"text": "x"}}}]}));
    assert_eq!(
        at,
        [
            "Bundle.entry[0].resource.gender",
            "Bundle.entry[1].resource.status"
        ]
    );
    let at = locations(json!({"resourceType": "Patient",
        "contained": [{"resourceType": "Patient", "id": "a", "contained": [{"resourceType": "Patient"}]},
                      {"resourceType": "Unknown"}]}));
    assert_eq!(
        at,
        [
            "Patient.contained[0].contained",
            "Patient.contained[1].resourceType"
        ]
    );
}

#[test]
fn nested_definitions_and_required_bindings_on_codings() {
    // Questionnaire.item.item takes the definition of Questionnaire.item
    let at = locations(json!({"resourceType": "Questionnaire", "status": "active",
        "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "nonsense"}]}]}));
    assert_eq!(at, ["Questionnaire.item[0].item[0].type"]);
    // Timing.repeat is an inline element of a datatype
    let at = locations(
        json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/1"},
        "occurrenceTiming": {"repeat": {"frequency": 0, "periodUnit": "fortnight"}}}),
    );
    assert_eq!(
        at,
        [
            "ServiceRequest.occurrence.ofType(Timing).repeat.frequency",
            "ServiceRequest.occurrence.ofType(Timing).repeat.periodUnit"
        ]
    );
}

#[test]
fn narratives_are_checked() {
    let at = locations(json!({"resourceType": "Patient",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x</script></div>"}}));
    assert_eq!(at, ["Patient.text.div"]);
}

#[test]
fn not_a_resource() {
    assert_eq!(locations(json!({"id": "x"})), ["resourceType"]);
    assert_eq!(locations(json!([1])), ["Resource"]);
    assert_eq!(
        locations(json!({"resourceType": "DomainResource"})),
        ["resourceType"]
    );
}
