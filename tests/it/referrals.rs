//! Referral intake from EHRs: transaction and batch Bundles, idempotent pushes, referral
//! messages and the referral Task workflow.

use std::sync::Arc;

use api::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

pub(crate) async fn clinic(s: &TestServer) -> String {
    id_of(&s.create(clinic_organization()).await)
}

async fn post_bundle(s: &TestServer, bundle: &Value) -> reqwest::Response {
    s.post_json("", bundle).await
}

/// How many live resources a search finds.
async fn total(s: &TestServer, query: &str) -> u64 {
    let b = json(s.get(query).await).await;
    b["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("total of {query}: {b}"))
}

/// `Type/id` of a response entry (from its location).
pub(crate) fn local(entry: &Value) -> String {
    let location = entry["response"]["location"].as_str().expect("location");
    let parts: Vec<&str> = location.split('/').collect();
    format!("{}/{}", parts[0], parts[1])
}

const COUNTS: &[&str] = &[
    "Patient?identifier=http://riverside-hospital.example.org/mrn|MRN-4471203",
    "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1932847561",
    "Organization?identifier=http://hl7.org/fhir/sid/us-npi|1447290110",
    "Condition?identifier=http://riverside-hospital.example.org/problem|PRB-88120",
    "Coverage?identifier=http://northwind-health.example.org/member|NWH-55012-01",
    "ServiceRequest?identifier=http://riverside-hospital.example.org/referral|REF-2026-31877",
    "Task?identifier=http://riverside-hospital.example.org/referral-task|RT-2026-31877",
];

#[tokio::test]
async fn a_referral_transaction_is_stored_with_its_references() {
    let s = start().await;
    let clinic = clinic(&s).await;
    let res = post_bundle(&s, &referral()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer = json(res).await;
    assert_eq!(answer["type"], "transaction-response");
    let entries = answer["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 7);
    for e in entries {
        assert_eq!(e["response"]["status"], "201 Created", "{e}");
        assert!(
            e["response"]["etag"]
                .as_str()
                .is_some_and(|t| t == "W/\"1\"")
        );
        assert!(e["response"]["lastModified"].as_str().is_some());
        // minimal by default
        assert!(e.get("resource").is_none());
    }
    let ids: Vec<String> = entries.iter().map(local).collect();
    // every urn:uuid reference now names the resource made for its entry
    let sr = json(s.get(&ids[5]).await).await;
    assert_eq!(sr["subject"]["reference"], ids[0].as_str());
    assert_eq!(sr["requester"]["reference"], ids[1].as_str());
    assert_eq!(sr["reasonReference"][0]["reference"], ids[3].as_str());
    assert_eq!(sr["insurance"][0]["reference"], ids[4].as_str());
    let task = json(s.get(&ids[6]).await).await;
    assert_eq!(task["focus"]["reference"], ids[5].as_str());
    assert_eq!(task["for"]["reference"], ids[0].as_str());
    // the conditional reference found the clinic
    assert_eq!(task["owner"]["reference"], format!("Organization/{clinic}"));
    // the referral Task got its BSeR business status
    assert_eq!(task["businessStatus"]["coding"][0]["code"], "2.0");
    // the referrer and the clinic find it
    for q in [
        format!("Task?owner=Organization/{clinic}&status=requested"),
        format!("Task?focus={}", ids[5]),
        format!("Task?patient={}", ids[0]),
        "Task?code=http://hl7.org/fhir/CodeSystem/task-code|fulfill&business-status=2.0".into(),
        // authored 2026-11-20T09:31:00Z
        "Task?authored-on=2026-11-20".into(),
        "Task?authored-on=2026-11".into(),
        "Task?authored-on=ge2026-11-20&authored-on=lt2026-11-21".into(),
        "Task?authored-on=sa2026-11-19".into(),
        "Task?authored-on=le2026-11-20T09:31:00Z".into(),
        "Task?authored-on=gt2026-11-19,lt2020-01-01".into(),
        "ServiceRequest?authored=eb2026-11-21".into(),
        "Patient?birthdate=1961-03-14".into(),
    ] {
        assert_eq!(total(&s, &q).await, 1, "{q}");
    }
    for q in [
        "Task?authored-on=2026-11-21",
        "Task?authored-on=gt2026-11-20",
        "Task?authored-on=lt2026-11-20",
        "Task?authored-on=ne2026-11-20",
        "Task?authored-on=eb2026-11-20",
        "Task?authored-on=2026-11-20T09:30:00Z",
    ] {
        assert_eq!(total(&s, q).await, 0, "{q}");
    }
    outcome(
        s.get("Task?authored-on=around2026-11-20").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn a_referral_pushed_again_or_twenty_times_at_once_gives_one_set() {
    let s = start().await;
    clinic(&s).await;
    let first = json(post_bundle(&s, &referral()).await).await;
    let again = post_bundle(&s, &referral()).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again = json(again).await;
    for (a, b) in first["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .zip(again["entry"].as_array().expect("entries"))
    {
        assert_eq!(b["response"]["status"], "200 OK");
        assert_eq!(local(a), local(b));
    }
    let bundle = referral();
    let pushes = (0..20).map(|_| post_bundle(&s, &bundle));
    for res in futures_util::future::join_all(pushes).await {
        assert_eq!(res.status(), StatusCode::OK);
    }
    for q in COUNTS {
        assert_eq!(total(&s, q).await, 1, "{q}");
    }
}

#[tokio::test]
async fn twenty_first_pushes_at_once_give_one_set() {
    let s = start().await;
    clinic(&s).await;
    let bundle = referral();
    let pushes = (0..20).map(|_| post_bundle(&s, &bundle));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(pushes)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    for q in COUNTS {
        assert_eq!(total(&s, q).await, 1, "{q}");
    }
}

#[tokio::test]
async fn identifiers_of_patients_referrals_and_tasks_are_unique() {
    let s = start().await;
    s.create(patient("u-1")).await;
    let o = outcome(
        s.post_json("Patient", &patient("u-1")).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        o["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("urn:test:mrn|u-1"))
    );
    // other types may share identifiers (an NPI on two Practitioner records)
    let npi = json!({"resourceType": "Practitioner", "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9999999999"}]});
    s.create(npi.clone()).await;
    s.create(npi).await;
    // a deleted patient frees its identifier
    let p = s.create(patient("u-2")).await;
    let res = s
        .client
        .delete(s.url(&format!("Patient/{}", p["id"].as_str().expect("id"))))
        .send()
        .await
        .expect("delete");
    assert!(res.status().is_success());
    s.create(patient("u-2")).await;
}

#[tokio::test]
async fn a_failing_entry_fails_the_whole_transaction() {
    let s = start().await;
    // no clinic: the Task's conditional owner reference matches nothing
    let res = post_bundle(&s, &referral()).await;
    let o = outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    let issue = &o;
    assert!(
        issue["diagnostics"]
            .as_str()
            .is_some_and(|d| d.starts_with("Bundle.entry[6] (POST Task)")),
        "{o}"
    );
    assert!(
        issue["expression"][0]
            .as_str()
            .is_some_and(|e| e == "Bundle.entry[6].resource.owner.reference")
    );
    // nothing of it was stored
    for q in COUNTS {
        assert_eq!(total(&s, q).await, 0, "{q}");
    }
    // a reference to nothing in the Bundle or on the server
    let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:a1", "resource": patient("t-1"), "request": {"method": "POST", "url": "Patient"}},
        post_entry(observation("nowhere", PAIN))
    ]});
    let o = outcome(
        post_bundle(&s, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        o["expression"][0],
        "Bundle.entry[1].resource.subject.reference"
    );
    assert_eq!(total(&s, "Patient?identifier=urn:test:mrn|t-1").await, 0);
    // a urn that names no entry
    let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "pain"},
            "subject": {"reference": "urn:uuid:5b0e1c9a-3f1d-4c2e-9a47-000000000404"}}, "request": {"method": "POST", "url": "Observation"}}
    ]});
    outcome(
        post_bundle(&s, &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // a structurally invalid entry is located in the Bundle
    let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "birthDate": 12}, "request": {"method": "POST", "url": "Patient"}}
    ]});
    let o = outcome(post_bundle(&s, &bad).await, StatusCode::BAD_REQUEST).await;
    assert!(
        o["expression"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("Bundle.entry[0].resource")),
        "{o}"
    );
    // only transaction and batch
    let o = outcome(
        post_bundle(&s, &json!({"resourceType": "Bundle", "type": "collection"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(o["expression"][0], "Bundle.type");
}

#[tokio::test]
async fn a_transaction_processes_delete_post_put_patch_then_get() {
    let s = start().await;
    let old = s.create(patient("x-old")).await;
    let kept = s.create(patient("x-kept")).await;
    let kept_id = kept["id"].as_str().expect("id");
    let old_id = old["id"].as_str().expect("id");
    let patch = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        r#"[{"op": "add", "path": "/gender", "value": "female"}]"#,
    );
    let mut updated = patient("x-put");
    updated["active"] = json!(false);
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        // GET first in the Bundle, processed last: sees the writes
        {"request": {"method": "GET", "url": "Patient?identifier=urn:test:mrn|x-new"}},
        {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": patch},
         "request": {"method": "PATCH", "url": format!("Patient/{kept_id}"), "ifMatch": "W/\"1\""}},
        {"resource": updated, "request": {"method": "PUT", "url": "Patient?identifier=urn:test:mrn|x-put"}},
        {"fullUrl": "urn:uuid:5b0e1c9a-3f1d-4c2e-9a47-000000000001", "resource": patient("x-new"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "pain"},
            "subject": {"reference": "urn:uuid:5b0e1c9a-3f1d-4c2e-9a47-000000000001"}}, "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "DELETE", "url": format!("Patient/{old_id}")}},
        {"request": {"method": "GET", "url": format!("Patient/{kept_id}")}}
    ]});
    let res = s
        .client
        .post(s.url(""))
        .header("Content-Type", FHIR_JSON)
        .header("Prefer", "return=representation")
        .body(bundle.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::OK);
    let answer = json(res).await;
    let e = answer["entry"].as_array().expect("entries");
    let status = |i: usize| {
        e[i]["response"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(status(0), "200 OK");
    assert_eq!(e[0]["resource"]["total"], 1, "the search sees the POST");
    assert_eq!(status(1), "200 OK");
    assert_eq!(e[1]["resource"]["gender"], "female");
    assert_eq!(e[1]["response"]["etag"], "W/\"2\"");
    assert_eq!(status(2), "201 Created");
    assert_eq!(status(3), "201 Created");
    assert_eq!(
        e[4]["resource"]["subject"]["reference"],
        format!("Patient/{}", e[3]["resource"]["id"].as_str().expect("id"))
    );
    assert_eq!(status(5), "204 No Content");
    assert_eq!(e[6]["resource"]["gender"], "female");
    assert_eq!(
        s.get(&format!("Patient/{old_id}")).await.status(),
        StatusCode::GONE
    );
    // a stale ifMatch fails it all
    let stale = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        post_entry(patient("x-stale")),
        {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD, r#"[{"op": "add", "path": "/active", "value": true}]"#)},
         "request": {"method": "PATCH", "url": format!("Patient/{kept_id}"), "ifMatch": "W/\"1\""}}
    ]});
    let o = outcome(
        post_bundle(&s, &stale).await,
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    assert!(
        o["diagnostics"]
            .as_str()
            .is_some_and(|d| d.starts_with("Bundle.entry[1] (PATCH"))
    );
    assert_eq!(
        total(&s, "Patient?identifier=urn:test:mrn|x-stale").await,
        0
    );
}

#[tokio::test]
async fn batch_entries_succeed_or_fail_on_their_own() {
    let s = start().await;
    let p = s.create(patient("b-1")).await;
    let pid = p["id"].as_str().expect("id");
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        post_entry(patient("b-2")),
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"resource": p, "request": {"method": "PUT", "url": format!("Patient/{pid}"), "ifMatch": "W/\"7\""}},
        post_entry(patient("b-1")),
        {"request": {"method": "GET", "url": "Nothing/1"}},
        {"request": {"method": "GET", "url": format!("Patient/{pid}")}}
    ]});
    let res = post_bundle(&s, &bundle).await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer = json(res).await;
    assert_eq!(answer["type"], "batch-response");
    let e = answer["entry"].as_array().expect("entries");
    let statuses: Vec<&str> = e
        .iter()
        .map(|x| x["response"]["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        [
            "201 Created",
            "404 Not Found",
            "412 Precondition Failed",
            "409 Conflict",
            "400 Bad Request",
            "200 OK"
        ]
    );
    assert_eq!(
        e[1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(e[5]["resource"]["id"], pid);
    assert_eq!(total(&s, "Patient?identifier=urn:test:mrn|b-2").await, 1);
}

#[tokio::test]
async fn an_idempotency_key_gives_the_first_answer() {
    let s = start().await;
    let send = |body: Value, key: &'static str| {
        s.client
            .post(s.url("Patient"))
            .header("Content-Type", FHIR_JSON)
            .header("Idempotency-Key", key)
            .body(body.to_string())
            .send()
    };
    // a create without identifiers: only the key tells a retry from a new patient
    let anonymous = json!({"resourceType": "Patient", "name": [{"family": "Retry"}]});
    let first = send(anonymous.clone(), "key-1").await.expect("post");
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first = json(first).await;
    let retries = (0..5).map(|_| send(anonymous.clone(), "key-1"));
    for again in futures_util::future::join_all(retries).await {
        let again = again.expect("post");
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        assert_eq!(again.headers()["location"], location);
        assert_eq!(json(again).await["id"], first["id"]);
    }
    assert_eq!(total(&s, "Patient").await, 1);
    // the same key with another request is refused
    let other = json!({"resourceType": "Patient", "name": [{"family": "Other"}]});
    outcome(
        send(other, "key-1").await.expect("post"),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // transactions take keys too
    let res = s
        .client
        .post(s.url(""))
        .header("Content-Type", FHIR_JSON)
        .header("Idempotency-Key", "bundle-1")
        .body(bundle("transaction", vec![post_entry(anonymous)]).to_string());
    let a = res.try_clone().expect("clone").send().await.expect("post");
    let a = json(a).await;
    let b = res.send().await.expect("post");
    assert_eq!(b.headers()["idempotent-replayed"], "true");
    assert_eq!(json(b).await, a);
    let bad = s
        .client
        .post(s.url("Patient"))
        .header("Content-Type", FHIR_JSON)
        .header("Idempotency-Key", "")
        .body(patient("k").to_string())
        .send()
        .await
        .expect("post");
    outcome(bad, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn bundles_over_the_limits_are_refused() {
    let clock = Arc::new(ManualClock::new(
        "2026-11-20T10:00:00Z".parse().expect("instant"),
    ));
    let s = start_with(
        |c| {
            c.max_bundle_entries = 2;
            c.max_bundle_bytes = 64 * 1024;
        },
        clock,
    )
    .await;
    let o = outcome(
        post_bundle(&s, &referral()).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(
        o["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("7 entries") && d.contains("at most 2"))
    );
    let big = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Basic", "code": {"text": "x".repeat(70 * 1024)}}, "request": {"method": "POST", "url": "Basic"}}
    ]});
    outcome(post_bundle(&s, &big).await, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn a_referral_message_is_stored_and_answered() {
    let s = start().await;
    clinic(&s).await;
    let res = s
        .post_json("$process-message", &referral_message("msg-1"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer = json(res).await;
    assert_eq!(answer["type"], "message");
    let header = &answer["entry"][0]["resource"];
    assert_eq!(header["resourceType"], "MessageHeader");
    assert_eq!(header["response"]["code"], "ok");
    assert_eq!(header["response"]["identifier"], "header-msg-1");
    assert_eq!(
        header["destination"][0]["endpoint"],
        "https://riverside-hospital.example.org/fhir"
    );
    let task = &answer["entry"][1]["resource"];
    assert_eq!(task["resourceType"], "Task");
    assert_eq!(
        header["focus"][0]["reference"],
        answer["entry"][1]["fullUrl"]
    );
    // sent again, as the same message or as a new one: nothing new
    let again = json(
        s.post_json("$process-message", &referral_message("msg-1"))
            .await,
    )
    .await;
    assert_eq!(again["entry"][1]["resource"]["id"], task["id"]);
    let resent = json(
        s.post_json("$process-message", &referral_message("msg-2"))
            .await,
    )
    .await;
    assert_eq!(resent["entry"][1]["resource"]["id"], task["id"]);
    for q in COUNTS {
        assert_eq!(total(&s, q).await, 1, "{q}");
    }
    // other events are refused, located
    let mut other = referral_message("msg-3");
    other["entry"][0]["resource"]["eventCoding"]["code"] = json!("A01");
    let o = outcome(
        s.post_json("$process-message", &other).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(o["expression"][0], "Bundle.entry[0].resource.eventCoding");
}

pub(crate) async fn put(s: &TestServer, task: &Value) -> reqwest::Response {
    s.put_json(&format!("Task/{}", task["id"].as_str().expect("id")), task)
        .await
}

#[tokio::test]
async fn the_referral_task_follows_its_state_table() {
    let s = start().await;
    clinic(&s).await;
    let answer = json(post_bundle(&s, &referral()).await).await;
    let task_ref = local(&answer["entry"][6]);
    let mut task = json(s.get(&task_ref).await).await;
    // accepted by the clinic: business status 3.0
    task["status"] = json!("accepted");
    let res = put(&s, &task).await;
    assert_eq!(res.status(), StatusCode::OK);
    task = json(res).await;
    assert_eq!(task["businessStatus"]["coding"][0]["code"], "3.0");
    // on hold needs a reason
    task["status"] = json!("on-hold");
    let o = outcome(put(&s, &task).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(o["expression"][0], "Task.statusReason");
    // back to requested is not a move of the table
    task["status"] = json!("requested");
    outcome(put(&s, &task).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    // a new referral Task starts as requested
    let mut fresh = task.clone();
    fresh.as_object_mut().expect("object").remove("id");
    fresh.as_object_mut().expect("object").remove("identifier");
    fresh["status"] = json!("accepted");
    outcome(
        s.post_json("Task", &fresh).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // dropping what makes it a referral does not take it out of the rules
    let mut stripped = task.clone();
    stripped["status"] = json!("completed");
    stripped.as_object_mut().expect("object").remove("focus");
    outcome(put(&s, &stripped).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    // cancelled by the referrer, with a reason: final
    task["status"] = json!("cancelled");
    task["statusReason"] = json!({"text": "Patient moved away"});
    let res = put(&s, &task).await;
    assert_eq!(res.status(), StatusCode::OK);
    task = json(res).await;
    assert_eq!(task["businessStatus"]["coding"][0]["code"], "6.0");
    task["status"] = json!("in-progress");
    task.as_object_mut().expect("object").remove("statusReason");
    outcome(put(&s, &task).await, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn the_program_moves_its_referral_task() {
    let clock = Arc::new(ManualClock::new(
        "2026-11-23T08:00:00Z".parse().expect("instant"),
    ));
    let s = start_with(|_| {}, clock.clone()).await;
    clinic(&s).await;
    let answer = json(post_bundle(&s, &referral()).await).await;
    let patient_ref = local(&answer["entry"][0]);
    let referral_ref = local(&answer["entry"][5]);
    let task_ref = local(&answer["entry"][6]);
    let mut task = json(s.get(&task_ref).await).await;
    task["status"] = json!("accepted");
    assert_eq!(put(&s, &task).await.status(), StatusCode::OK);
    // the therapist makes the program for the referral: the Task is in progress
    let patient = patient_ref.trim_start_matches("Patient/");
    let week = ("2026-11-23", "2026-11-29");
    let rx = id_of(&s.create(prescription(patient, "Bridge", 3, week)).await);
    let mut plan = program(patient, &[&rx], week);
    plan["basedOn"] = json!([{"reference": referral_ref}]);
    plan = s.create(plan).await;
    let task = json(s.get(&task_ref).await).await;
    assert_eq!(task["status"], "in-progress");
    assert_eq!(task["businessStatus"]["coding"][0]["code"], "5.x");
    // discharge: the program is completed, the Task too, with what the clinic returns
    clock.set("2026-11-30T09:00:00Z".parse().expect("instant"));
    plan["status"] = json!("completed");
    let res = s
        .put_json(
            &format!("CarePlan/{}", plan["id"].as_str().expect("id")),
            &plan,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let task = json(s.get(&task_ref).await).await;
    assert_eq!(task["status"], "completed");
    assert_eq!(task["businessStatus"]["coding"][0]["code"], "7.0");
    let outputs = task["output"].as_array().expect("outputs");
    let by_code = |code: &str| {
        outputs
            .iter()
            .find(|o| o["type"]["coding"][0]["code"] == code)
            .and_then(|o| o["valueReference"]["reference"].as_str())
            .map(str::to_string)
    };
    assert_eq!(
        by_code("care-plan"),
        Some(format!("CarePlan/{}", plan["id"].as_str().expect("id")))
    );
    let summary = by_code("adherence-summary").expect("summary output");
    let obs = json(s.get(&summary).await).await;
    assert_eq!(
        obs["code"]["coding"][0]["code"],
        "program-exercise-adherence"
    );
    // 7 sessions due, none done
    assert_eq!(obs["valueQuantity"]["value"].as_f64(), Some(0.0));
    // a completed referral Task is final
    let mut again = task.clone();
    again["note"] = json!([{"text": "one more thing"}]);
    outcome(put(&s, &again).await, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn an_xml_transaction_and_a_conditional_delete() {
    let s = start().await;
    s.create(patient("d-1")).await;
    let xml = r#"<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/>
      <entry><request><method value="DELETE"/><url value="Patient?identifier=urn:test:mrn|d-1"/></request></entry>
      <entry><fullUrl value="urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"/>
        <resource><Patient><identifier><system value="urn:test:mrn"/><value value="d-2"/></identifier></Patient></resource>
        <request><method value="POST"/><url value="Patient"/></request></entry>
      <entry><resource><Observation><status value="final"/><code><text value="pain"/></code>
        <subject><reference value="urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"/></subject></Observation></resource>
        <request><method value="POST"/><url value="Observation"/></request></entry>
    </Bundle>"#;
    let res = s
        .client
        .post(s.url(""))
        .header("Content-Type", "application/fhir+xml")
        .header("Accept", "application/fhir+xml")
        .body(xml)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.expect("body");
    assert!(
        text.contains("<type value=\"transaction-response\"/>"),
        "{text}"
    );
    assert!(text.contains("204 No Content") && text.contains("201 Created"));
    assert_eq!(total(&s, "Patient?identifier=urn:test:mrn|d-1").await, 0);
    assert_eq!(total(&s, "Patient?identifier=urn:test:mrn|d-2").await, 1);
    let obs = json(s.get("Observation").await).await;
    let patient = json(s.get("Patient?identifier=urn:test:mrn|d-2").await).await;
    assert_eq!(
        obs["entry"][0]["resource"]["subject"]["reference"],
        format!(
            "Patient/{}",
            patient["entry"][0]["resource"]["id"].as_str().expect("id")
        )
    );
}
