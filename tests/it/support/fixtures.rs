//! The FHIR resources the tests send, one builder a kind. A test changes what it is
//! about on the value a builder returns, or writes its own JSON where the exact shape is
//! what it tests.

use serde_json::{Value, json};

/// The base of the project's canonical URLs (profiles, code systems, the library).
pub const BASE: &str = "https://hep-fhir.org/fhir";

const REFERRAL: &str = include_str!("../../fixtures/referral-transaction.json");

/// A Patient with the test identifier `urn:test:mrn|{mrn}`.
pub fn patient(mrn: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:mrn", "value": mrn}],
        "name": [{"family": "Testperson", "given": ["Alex"]}],
        "birthDate": "1970-01-01"
    })
}

/// The therapist: Jordan Lee, with a phone number.
pub fn practitioner() -> Value {
    json!({"resourceType": "Practitioner", "name": [{"family": "Lee", "given": ["Jordan"]}],
           "telecom": [{"system": "phone", "value": "555-0142"}]})
}

/// The LOINC code of a pain score (0 to 10).
pub const PAIN: &str = "72514-3";

/// A final Observation of `patient` (an id) with the LOINC `code` (such as `PAIN`) and
/// the value 3.
pub fn observation(patient: &str, code: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
           "subject": {"reference": format!("Patient/{patient}")}, "valueInteger": 3})
}

/// A plain CarePlan of `patient` (an id), draft: not a program.
pub fn care_plan(patient: &str) -> Value {
    json!({"resourceType": "CarePlan", "status": "draft", "intent": "plan",
           "subject": {"reference": format!("Patient/{patient}")}})
}

/// A plain ServiceRequest of `patient` (an id): not an exercise prescription.
pub fn service_request(patient: &str) -> Value {
    json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
           "subject": {"reference": format!("Patient/{patient}")}})
}

/// A plain Task for `patient` (an id).
pub fn task(patient: &str) -> Value {
    json!({"resourceType": "Task", "status": "requested", "intent": "order",
           "for": {"reference": format!("Patient/{patient}")}})
}

/// An active exercise prescription (the project's ServiceRequest profile) of the Bridge
/// from the library, named `name`, for `patient` (an id): `sets` sets of 10 repetitions
/// once a day through `period` (first and last day).
pub fn prescription(patient: &str, name: &str, sets: u32, (start, end): (&str, &str)) -> Value {
    json!({
        "resourceType": "ServiceRequest",
        "meta": {"profile": [format!("{BASE}/StructureDefinition/hep-exercise-prescription")]},
        "extension": [{"url": format!("{BASE}/StructureDefinition/exercise-dosage"), "extension": [
            {"url": "sets", "valuePositiveInt": sets},
            {"url": "repetitions", "valuePositiveInt": 10}
        ]}],
        "instantiatesCanonical": [format!("{BASE}/ActivityDefinition/bridge|1.0.0")],
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "229065009"}]}],
        "code": {"text": name},
        "subject": {"reference": format!("Patient/{patient}")},
        "occurrenceTiming": {"repeat": {"boundsPeriod": {"start": start, "end": end},
                                        "frequency": 1, "period": 1, "periodUnit": "d"}},
        "performer": [{"reference": format!("Patient/{patient}")}]
    })
}

/// An active exercise program (the project's CarePlan profile) of `patient` (an id)
/// through `period`, whose activities are the prescriptions `exercises` (ids).
pub fn program(patient: &str, exercises: &[&str], (start, end): (&str, &str)) -> Value {
    let mut plan = json!({
        "resourceType": "CarePlan",
        "meta": {"profile": [format!("{BASE}/StructureDefinition/hep-program")]},
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "229065009"}]}],
        "title": "Knee, phase 1",
        "subject": {"reference": format!("Patient/{patient}")},
        "period": {"start": start, "end": end}
    });
    if !exercises.is_empty() {
        // FHIR JSON has no empty arrays
        plan["activity"] = exercises
            .iter()
            .map(|id| json!({"reference": {"reference": format!("ServiceRequest/{id}")}}))
            .collect();
    }
    plan
}

/// A Bundle of `kind` (`transaction`, `batch`) with these entries.
pub fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

/// The Bundle entry that creates `resource`.
pub fn post_entry(resource: Value) -> Value {
    let url = resource["resourceType"].clone();
    json!({"resource": resource, "request": {"method": "POST", "url": url}})
}

/// The referral an EHR pushes: a transaction of the Patient, the referrer, the problem,
/// the coverage, the ServiceRequest and its Task (`tests/fixtures/`).
pub fn referral() -> Value {
    serde_json::from_str(REFERRAL).expect("fixture")
}

/// The clinic the referral Task is owned by (a conditional reference in the referral).
pub fn clinic_organization() -> Value {
    json!({"resourceType": "Organization", "name": "Springfield HEP clinic",
        "identifier": [{"system": "http://hep-clinic.example.org/site", "value": "main"}]})
}

/// The referral as a message (`$process-message`): a MessageHeader, then the entries of
/// the referral. `bundle_id` names the message (and its header `header-{bundle_id}`).
pub fn referral_message(bundle_id: &str) -> Value {
    let mut entries = vec![json!({
        "fullUrl": "urn:uuid:5e1a0c00-0000-4000-8000-000000000001",
        "resource": {
            "resourceType": "MessageHeader",
            "id": format!("header-{bundle_id}"),
            "eventCoding": {"system": "http://terminology.hl7.org/CodeSystem/v2-0003", "code": "I12"},
            "destination": [{"endpoint": "https://hep-clinic.example.org/fhir"}],
            "source": {"endpoint": "https://riverside-hospital.example.org/fhir"},
            "focus": [{"reference": "urn:uuid:0c3a1f4e-5d0b-4a53-9a43-6f1d2c7e8a07"}]
        }
    })];
    for e in referral()["entry"].as_array().expect("entries") {
        entries.push(json!({"fullUrl": e["fullUrl"], "resource": e["resource"]}));
    }
    json!({"resourceType": "Bundle", "id": bundle_id, "type": "message",
           "timestamp": "2026-11-20T09:32:00Z", "entry": entries})
}
