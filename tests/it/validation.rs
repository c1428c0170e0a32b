//! Every value a client sends is checked against R4 on every write path, all problems
//! answered at once with their locations; `$validate` says the same without storing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// Every issue of an OperationOutcome answered with `status`: (expression, code, text).
async fn issues(res: reqwest::Response, status: StatusCode) -> Vec<(String, String, String)> {
    let got = res.status();
    let body: Value = res.json().await.expect("OperationOutcome");
    assert_eq!(got, status, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    body["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|i| {
            (
                i["expression"][0].as_str().unwrap_or_default().to_string(),
                i["code"].as_str().unwrap_or_default().to_string(),
                i["diagnostics"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn locations(found: &[(String, String, String)]) -> Vec<&str> {
    found.iter().map(|(at, _, _)| at.as_str()).collect()
}

async fn total(s: &TestServer, query: &str) -> u64 {
    let bundle = json(s.get(&format!("{query}&_summary=count")).await).await;
    bundle["total"].as_u64().expect("total")
}

#[tokio::test]
async fn invalid_values_are_refused_with_every_location_and_words_for_a_person() {
    let s = start().await;
    let found = issues(
        s.post_json(
            "Patient",
            &json!({"resourceType": "Patient", "gender": "robot", "birthDate": "1990-13-45",
                "name": [{"family": ""}], "identifier": [{"system": "not a uri", "value": "1"}],
                "telecom": [{"system": "pigeon", "value": "x"}]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        locations(&found),
        [
            "Patient.gender",
            "Patient.birthDate",
            "Patient.name[0].family",
            "Patient.identifier[0].system",
            "Patient.telecom[0].system"
        ]
    );
    assert_eq!(found[0].1, "code-invalid");
    for (_, _, text) in &found {
        assert!(
            !text.contains("serde") && !text.contains("enum") && !text.contains("Error {"),
            "{text}"
        );
    }
    let found = issues(
        s.post_raw(
            "Observation",
            FHIR_JSON,
            r#"{"resourceType":"Observation","status":"done","code":{"text":"x"},"issued":"2020-01-01","valueQuantity":{"value":"1.5","comparator":"~"}}"#,
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        locations(&found),
        [
            "Observation.status",
            "Observation.issued",
            "Observation.value.ofType(Quantity).value",
            "Observation.value.ofType(Quantity).comparator"
        ]
    );
    let found = issues(
        s.post_json(
            "Task",
            &json!({"resourceType": "Task", "status": "finished", "intent": "whatever",
                "extension": [{"url": "http://example.org/x", "valueDateTime": "2020-02-30"}]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        locations(&found),
        [
            "Task.status",
            "Task.intent",
            "Task.extension[0].value.ofType(DateTime)"
        ]
    );
    // an integer over 2^31, with words and a location
    let found = issues(
        s.post_raw(
            "Patient",
            FHIR_JSON,
            r#"{"resourceType":"Patient","multipleBirthInteger":3000000000}"#,
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(locations(&found), ["Patient.multipleBirth.ofType(Integer)"]);
    assert!(!found[0].2.contains("StringOrValue"), "{}", found[0].2);
    // a missing extension url is located at the extension
    let found = issues(
        s.post_json(
            "Patient",
            &json!({"resourceType": "Patient", "extension": [{"valueString": "x"}]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(locations(&found), ["Patient.extension[0].url"]);
    assert_eq!(total(&s, "Patient?").await, 0, "nothing was stored");
}

#[tokio::test]
async fn wrong_json_types_are_refused_not_converted() {
    let s = start().await;
    for (body, at) in [
        (
            r#"{"resourceType":"Patient","active":"true"}"#,
            "Patient.active",
        ),
        (
            r#"{"resourceType":"Patient","name":{"family":"A"}}"#,
            "Patient.name",
        ),
        (
            r#"{"resourceType":"Patient","name":[{"given":[null]}]}"#,
            "Patient.name[0].given[0]",
        ),
        (
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"12"}}"#,
            "Observation.value.ofType(Quantity).value",
        ),
    ] {
        let res = s
            .post_raw(body.split('"').nth(3).unwrap_or("Patient"), FHIR_JSON, body)
            .await;
        let found = issues(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(locations(&found), [at], "{body}");
    }
    // the same through PUT, PATCH and a transaction
    let p = s.create(patient("types")).await;
    let id = id_of(&p);
    let mut bad = p.clone();
    bad["active"] = json!("true");
    let found = issues(
        s.put_json(&format!("Patient/{id}"), &bad).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(locations(&found), ["Patient.active"]);
    let res = s
        .client
        .patch(s.url(&format!("Patient/{id}")))
        .header("Content-Type", "application/json-patch+json")
        .body(r#"[{"op":"add","path":"/birthDate","value":"yesterday"}]"#)
        .send()
        .await
        .expect("patch");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let stored = json(s.get(&format!("Patient/{id}")).await).await;
    assert_eq!(stored["meta"]["versionId"], "1", "nothing was written");
}

#[tokio::test]
async fn a_transaction_with_one_invalid_value_stores_nothing() {
    let s = start().await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6f1d2c3b-0000-4000-8000-000000000001", "resource": patient("tx-bad"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "not-a-status", "code": {"text": "pain"},
            "subject": {"reference": "urn:uuid:6f1d2c3b-0000-4000-8000-000000000001"}},
         "request": {"method": "POST", "url": "Observation"}}
    ]});
    let found = issues(s.post_json("", &bundle).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(locations(&found), ["Bundle.entry[1].resource.status"]);
    assert_eq!(total(&s, "Patient?").await, 0);
    assert_eq!(total(&s, "Observation?").await, 0);
}

#[tokio::test]
async fn what_r4_allows_is_accepted() {
    let s = start().await;
    // a stored document Bundle references its own entries, not this server
    let document = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "http://example.org/fhir/Patient/p1",
         "resource": {"resourceType": "Patient", "id": "p1"}},
        {"fullUrl": "urn:uuid:6f1d2c3b-0000-4000-8000-000000000002",
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"},
            "hasMember": [{"reference": "urn:uuid:6f1d2c3b-0000-4000-8000-000000000003"}]}}
    ]});
    let res = s.post_json("Bundle", &document).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // and inside a transaction, a nested Bundle's references stay its own
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": document, "request": {"method": "POST", "url": "Bundle"}}]});
    let res = s.post_json("", &tx).await;
    assert_eq!(res.status(), StatusCode::OK);
    // a resource that references itself, by PUT as in a transaction
    let me = json!({"resourceType": "Patient", "id": "self-ref",
        "link": [{"other": {"reference": "Patient/self-ref"}, "type": "seealso"}]});
    let res = s.put_json("Patient/self-ref", &me).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // base64 with line breaks, as R4 allows
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk\n+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let res = s
        .post_json(
            "Binary",
            &json!({"resourceType": "Binary", "contentType": "image/png", "data": png}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // an OperationOutcome is stored like any resource; Parameters has no endpoint
    let res = s
        .post_json(
            "OperationOutcome",
            &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational"}]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let found = issues(
        s.post_json("Parameters", &json!({"resourceType": "Parameters"}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(found[0].2.contains("no RESTful endpoint"), "{}", found[0].2);
    // an extension of a primitive, with a null in the aligned array
    let res = s
        .post_json(
            "Patient",
            &json!({"resourceType": "Patient", "name": [{"given": ["A", null],
                "_given": [null, {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}]}]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn validate_answers_every_problem_and_stores_nothing() {
    let s = start().await;
    // valid: one information issue
    let found = issues(
        s.post_json("Patient/$validate", &patient("v1")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, "informational");
    // invalid: every problem, 200, nothing stored
    let found = issues(
        s.post_json(
            "Patient/$validate",
            &json!({"resourceType": "Patient", "gender": "robot", "birthDate": "yesterday"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(locations(&found), ["Patient.gender", "Patient.birthDate"]);
    assert_eq!(total(&s, "Patient?").await, 0);
    // as a Parameters body, with the mode
    let p = s.create(patient("v2")).await;
    let id = id_of(&p);
    let mut changed = p.clone();
    changed["gender"] = json!("female");
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": changed}, {"name": "mode", "valueCode": "update"}]});
    let found = issues(
        s.post_json(&format!("Patient/{id}/$validate"), &params)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(found[0].1, "informational", "{found:?}");
    let stored = json(s.get(&format!("Patient/{id}")).await).await;
    assert!(stored.get("gender").is_none(), "the update was not written");
    assert_eq!(stored["meta"]["versionId"], "1");
    // a reference that would not resolve is what a create would answer
    let found = issues(
        s.post_json("Observation/$validate", &observation("nobody", PAIN))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        locations(&found),
        ["Observation.subject.reference"],
        "{found:?}"
    );
    assert_eq!(found[0].1, "not-found");
    // delete of what does not exist
    let found = issues(
        s.post_raw("Patient/nobody/$validate?mode=delete", FHIR_JSON, "")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(found[0].1, "not-found", "{found:?}");
    // a profile this server does not check
    let found = issues(
        s.post_json(
            "Patient/$validate?profile=http://example.org/StructureDefinition/x",
            &patient("v3"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(found[0].1, "not-supported");
    // the project's profile, asked for, runs its rules on a resource that does not claim it
    let found = issues(
        s.post_json(
            &format!("ServiceRequest/$validate?profile={BASE}/StructureDefinition/hep-exercise-prescription"),
            &service_request(&id),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_ne!(found[0].1, "informational", "{found:?}");
    assert_eq!(total(&s, "ServiceRequest?").await, 0);
    // a reference to a type R4 does not list there is a warning, kept by writes
    let plan = json!({"resourceType": "CarePlan", "status": "draft", "intent": "plan",
        "subject": {"reference": format!("Patient/{id}")},
        "basedOn": [{"reference": format!("Patient/{id}")}]});
    let res = s.post_json("CarePlan/$validate", &plan).await;
    let body = json(res).await;
    assert_eq!(body["issue"][0]["severity"], "warning", "{body}");
    assert_eq!(
        body["issue"][0]["expression"][0],
        "CarePlan.basedOn[0].reference"
    );
}

#[tokio::test]
async fn programs_and_prescriptions_carry_the_us_core_and_physical_activity_categories() {
    let s = start().await;
    let pid = id_of(&s.create(patient("cat")).await);
    let rx = s
        .create(prescription(
            &pid,
            "Bridge",
            3,
            ("2026-01-05", "2026-02-15"),
        ))
        .await;
    let codes = |v: &Value| -> Vec<String> {
        v["category"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["coding"].as_array().cloned().unwrap_or_default())
            .map(|c| {
                format!(
                    "{}|{}",
                    c["system"].as_str().unwrap_or(""),
                    c["code"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let pa =
        "http://hl7.org/fhir/us/physical-activity/CodeSystem/pa-temporary-codes|PhysicalActivity";
    let assess = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category|assess-plan";
    assert!(codes(&rx).contains(&pa.to_string()), "{rx}");
    let plan = s
        .create(program(&pid, &[&id_of(&rx)], ("2026-01-05", "2026-02-15")))
        .await;
    assert!(codes(&plan).contains(&pa.to_string()), "{plan}");
    assert!(codes(&plan).contains(&assess.to_string()), "{plan}");
    let found = json(s.get(&format!("CarePlan?category={assess}")).await).await;
    assert_eq!(found["total"], 1, "{found}");
    let found = json(s.get(&format!("ServiceRequest?category={pa}")).await).await;
    assert_eq!(found["total"], 1, "{found}");
}

#[tokio::test]
async fn validate_tells_a_patient_or_another_clinic_nothing_they_may_not_read() {
    let s = start().await;
    let mut victim = patient("victim");
    victim["name"] = json!([{"family": "Secretname"}]);
    let victim_id = id_of(&s.create(victim).await);
    let me = id_of(&s.create(patient("me")).await);
    let as_patient = client_with_token(&token(&s.database_url, "patient/*.cruds", Some(&me)));
    let other_clinic = client_of_tenant(&s, "other");
    for (who, client) in [("patient", &as_patient), ("other clinic", &other_clinic)] {
        for mode in ["update", "delete"] {
            let ask = |id: String| {
                let body = json!({"resourceType": "Patient", "id": id, "gender": "other"});
                client
                    .post(s.url(&format!("Patient/{id}/$validate?mode={mode}")))
                    .header("Content-Type", FHIR_JSON)
                    .body(body.to_string())
                    .send()
            };
            let seen = ask(victim_id.clone()).await.expect("request");
            let nowhere = ask("no-such-patient".into()).await.expect("request");
            let (status, body) = (seen.status(), seen.text().await.unwrap_or_default());
            let (status2, body2) = (nowhere.status(), nowhere.text().await.unwrap_or_default());
            assert_eq!(status, status2, "{who} {mode}: {body} / {body2}");
            assert_eq!(
                body.replace(&victim_id, "ID"),
                body2.replace("no-such-patient", "ID"),
                "{who} {mode}"
            );
            assert!(!body.contains("Secretname"), "{who} {mode}: {body}");
        }
    }
    // nothing of it was written
    let stored = json(s.get(&format!("Patient/{victim_id}")).await).await;
    assert_eq!(stored["meta"]["versionId"], "1");
}
