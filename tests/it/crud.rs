use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn create_read_update_delete() {
    let s = start().await;
    let res = s.post_json("Patient", &patient("100")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert_eq!(res.headers()["etag"], "W/\"1\"");
    assert!(res.headers().contains_key("last-modified"));
    let created_bytes = res.bytes().await.expect("body");
    let created: serde_json::Value = serde_json::from_slice(&created_bytes).expect("json");
    let id = created["id"].as_str().expect("server id").to_string();
    assert_eq!(location, s.url(&format!("Patient/{id}/_history/1")));
    assert_eq!(created["meta"]["versionId"], "1");
    assert!(
        created["meta"]["lastUpdated"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // read serves the stored bytes
    let res = s.get(&format!("Patient/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "W/\"1\"");
    assert_eq!(res.bytes().await.expect("body"), created_bytes);

    // update
    let mut changed = created.clone();
    changed["birthDate"] = json!("1971-02-03");
    let res = s.put_json(&format!("Patient/{id}"), &changed).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "W/\"2\"");
    let updated = json(res).await;
    assert_eq!(updated["meta"]["versionId"], "2");
    assert_eq!(updated["birthDate"], "1971-02-03");

    // vread of both versions
    let v1 = json(s.get(&format!("Patient/{id}/_history/1")).await).await;
    assert_eq!(v1["birthDate"], "1970-01-01");
    let v2 = json(s.get(&format!("Patient/{id}/_history/2")).await).await;
    assert_eq!(v2["birthDate"], "1971-02-03");
    let missing = s.get(&format!("Patient/{id}/_history/3")).await;
    outcome(missing, StatusCode::NOT_FOUND).await;

    // delete, then read is 410 and vread of the deletion too
    let res = s
        .client
        .delete(s.url(&format!("Patient/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["etag"], "W/\"3\"");
    outcome(s.get(&format!("Patient/{id}")).await, StatusCode::GONE).await;
    outcome(
        s.get(&format!("Patient/{id}/_history/3")).await,
        StatusCode::GONE,
    )
    .await;
    // older versions stay readable
    assert_eq!(
        s.get(&format!("Patient/{id}/_history/2")).await.status(),
        StatusCode::OK
    );
    // deleting again changes nothing
    let res = s
        .client
        .delete(s.url(&format!("Patient/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["etag"], "W/\"3\"");
    // a resource that never existed
    let res = s
        .client
        .delete(s.url("Patient/never"))
        .send()
        .await
        .expect("delete");
    outcome(res, StatusCode::NOT_FOUND).await;
    outcome(s.get("Patient/never").await, StatusCode::NOT_FOUND).await;

    // update after delete brings it back as a new version (201)
    let res = s.put_json(&format!("Patient/{id}"), &changed).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["etag"], "W/\"4\"");
}

#[tokio::test]
async fn update_as_create_uses_the_client_id() {
    let s = start().await;
    let mut p = patient("200");
    p["id"] = json!("client-chosen.1");
    let res = s.put_json("Patient/client-chosen.1", &p).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        res.headers()["location"],
        s.url("Patient/client-chosen.1/_history/1").as_str()
    );
    let read = json(s.get("Patient/client-chosen.1").await).await;
    assert_eq!(read["identifier"][0]["value"], "200");
}

#[tokio::test]
async fn create_ignores_a_client_id_and_meta() {
    let s = start().await;
    let mut p = patient("300");
    p["id"] = json!("mine");
    p["meta"] =
        json!({"versionId": "77", "lastUpdated": "2001-01-01T00:00:00Z", "source": "urn:ehr"});
    let created = s.create(p).await;
    assert_ne!(created["id"], "mine");
    assert_eq!(created["meta"]["versionId"], "1");
    assert_eq!(created["meta"]["source"], "urn:ehr");
    assert_ne!(created["meta"]["lastUpdated"], "2001-01-01T00:00:00Z");
}

#[tokio::test]
async fn if_match_guards_update_and_delete() {
    let s = start().await;
    let created = s.create(patient("400")).await;
    let id = created["id"].as_str().expect("id");
    let put = |etag: &'static str| {
        s.client
            .put(s.url(&format!("Patient/{id}")))
            .header("Content-Type", FHIR_JSON)
            .header("If-Match", etag)
            .body(created.to_string())
    };
    let res = put("W/\"1\"").send().await.expect("put");
    assert_eq!(res.status(), StatusCode::OK);
    let res = put("W/\"1\"").send().await.expect("put");
    outcome(res, StatusCode::PRECONDITION_FAILED).await;
    let res = put("garbage").send().await.expect("put");
    outcome(res, StatusCode::BAD_REQUEST).await;
    let res = s
        .client
        .delete(s.url(&format!("Patient/{id}")))
        .header("If-Match", "W/\"1\"")
        .send()
        .await
        .expect("delete");
    outcome(res, StatusCode::PRECONDITION_FAILED).await;
    let res = s
        .client
        .delete(s.url(&format!("Patient/{id}")))
        .header("If-Match", "W/\"2\"")
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // If-Match on something that does not exist
    let mut p = patient("401");
    p["id"] = json!("nothere");
    let res = s
        .client
        .put(s.url("Patient/nothere"))
        .header("Content-Type", FHIR_JSON)
        .header("If-Match", "W/\"1\"")
        .body(p.to_string())
        .send()
        .await
        .expect("put");
    outcome(res, StatusCode::PRECONDITION_FAILED).await;
}

#[tokio::test]
async fn prefer_return() {
    let s = start().await;
    let send = |prefer: &'static str| {
        s.client
            .post(s.url("Patient"))
            .header("Content-Type", FHIR_JSON)
            .header("Prefer", prefer)
            .body(patient(prefer).to_string())
    };
    let res = send("return=minimal").send().await.expect("post");
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().contains_key("location"));
    assert!(res.bytes().await.expect("body").is_empty());
    let res = send("return=OperationOutcome").send().await.expect("post");
    assert_eq!(res.status(), StatusCode::CREATED);
    let body = json(res).await;
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["issue"][0]["severity"], "information");
    let res = send("return=representation").send().await.expect("post");
    assert_eq!(json(res).await["resourceType"], "Patient");
}

#[tokio::test]
async fn references_must_resolve_in_the_same_store() {
    let s = start().await;
    let p = s.create(patient("600")).await;
    let pid = p["id"].as_str().expect("id");
    let obs = |subject: &str| {
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "pain"},
               "subject": {"reference": subject},
               "performer": [{"reference": "https://other.example.org/fhir/Practitioner/1"}]})
    };
    let ok = s
        .post_json("Observation", &obs(&format!("Patient/{pid}")))
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let versioned = s
        .post_json("Observation", &obs(&format!("Patient/{pid}/_history/1")))
        .await;
    assert_eq!(versioned.status(), StatusCode::CREATED);
    let issue = outcome(
        s.post_json("Observation", &obs("Patient/missing")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["expression"][0], "Observation.subject.reference");
    let issue = outcome(
        s.post_json("Observation", &obs(&format!("Patient/{pid}/_history/9")))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["expression"][0], "Observation.subject.reference");
    // pointing at the wrong type is as unresolved as a missing id
    let issue = outcome(
        s.post_json("Observation", &obs(&format!("Group/{pid}")))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["code"], "not-found");
    let issue = outcome(
        s.post_json("Observation", &obs("Patient?identifier=x"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["code"], "value");
    // a deleted target no longer resolves
    s.client
        .delete(s.url(&format!("Patient/{pid}")))
        .send()
        .await
        .expect("delete");
    outcome(
        s.post_json("Observation", &obs(&format!("Patient/{pid}")))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}
