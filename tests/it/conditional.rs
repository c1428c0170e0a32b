use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

async fn conditional_create(s: &TestServer, criteria: &str, mrn: &str) -> reqwest::Response {
    s.client
        .post(s.url("Patient"))
        .header("Content-Type", FHIR_JSON)
        .header("If-None-Exist", criteria)
        .body(patient(mrn).to_string())
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn if_none_exist() {
    let s = start().await;
    let first = conditional_create(&s, "identifier=urn:test:mrn|c1", "c1").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = json(first).await;
    let again = conditional_create(&s, "identifier=urn:test:mrn|c1", "c1").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(json(again).await["id"], first["id"]);
    // the criteria may be given as a URL
    let again = conditional_create(&s, "Patient?identifier=urn:test:mrn|c1", "c1").await;
    assert_eq!(again.status(), StatusCode::OK);
    // a code without system matches any system
    let again = conditional_create(&s, "identifier=c1", "c1").await;
    assert_eq!(again.status(), StatusCode::OK);
    // two matches (identifiers are unique per system: the same value in two systems)
    s.create(patient("dup")).await;
    let mut other = patient("dup");
    other["identifier"][0]["system"] = json!("urn:test:other");
    s.create(other).await;
    outcome(
        conditional_create(&s, "identifier=dup", "dup").await,
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    // unsupported criteria
    outcome(
        conditional_create(&s, "nickname=x", "x").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    outcome(
        conditional_create(&s, "_count=1", "x").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn if_none_exist_after_the_match_changed() {
    let s = start().await;
    let first = json(conditional_create(&s, "identifier=urn:test:mrn|m1", "m1").await).await;
    let id = first["id"].as_str().expect("id");
    // the resource no longer matches: a new conditional create must create again
    let mut moved = first.clone();
    moved["identifier"][0]["value"] = json!("m2");
    assert_eq!(
        s.put_json(&format!("Patient/{id}"), &moved).await.status(),
        StatusCode::OK
    );
    let res = conditional_create(&s, "identifier=urn:test:mrn|m1", "m1").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // and after a delete too
    let second = json(res).await;
    s.client
        .delete(s.url(&format!("Patient/{}", second["id"].as_str().expect("id"))))
        .send()
        .await
        .expect("delete");
    assert_eq!(
        conditional_create(&s, "identifier=urn:test:mrn|m1", "m1")
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn conditional_update_by_identifier() {
    let s = start().await;
    let url = "Patient?identifier=urn:test:mrn|u1";
    let res = s.put_json(url, &patient("u1")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created = json(res).await;
    let mut p = patient("u1");
    p["active"] = json!(false);
    let res = s.put_json(url, &p).await;
    assert_eq!(res.status(), StatusCode::OK);
    let updated = json(res).await;
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["meta"]["versionId"], "2");
    // an id in the body must be the match's
    p["id"] = json!("someone-else");
    outcome(s.put_json(url, &p).await, StatusCode::BAD_REQUEST).await;
    // several matches
    s.create(patient("u2")).await;
    let mut other = patient("u2");
    other["identifier"][0]["system"] = json!("urn:test:other");
    s.create(other).await;
    outcome(
        s.put_json("Patient?identifier=u2", &patient("u2")).await,
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    // no criteria
    outcome(
        s.put_json("Patient", &patient("u3")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn search_by_id_identifier_and_last_updated() {
    let s = start().await;
    let a = s.create(patient("s1")).await;
    let b = s.create(patient("s2")).await;
    let a_id = a["id"].as_str().expect("id");
    let b_ts = b["meta"]["lastUpdated"].as_str().expect("ts");
    let found = json(s.get("Patient?identifier=urn:test:mrn|s1").await).await;
    assert_eq!(found["type"], "searchset");
    assert_eq!(found["total"], 1);
    assert_eq!(found["entry"][0]["resource"]["id"], a_id);
    assert_eq!(found["entry"][0]["search"]["mode"], "match");
    let found = json(s.get("Patient?identifier=s1,s2").await).await;
    assert_eq!(found["total"], 2);
    let found = json(s.get(&format!("Patient?_id={a_id}")).await).await;
    assert_eq!(found["total"], 1);
    let found = json(s.get("Patient?identifier=other|s1").await).await;
    assert_eq!(found["total"], 0);
    let found = json(s.get(&format!("Patient?_lastUpdated=ge{}", b_ts)).await).await;
    assert_eq!(found["total"], 1);
    let found = json(s.get(&format!("Patient?_lastUpdated=lt{}", b_ts)).await).await;
    assert_eq!(found["total"], 1);
    let found = json(s.get("Patient?_lastUpdated=gt2999").await).await;
    assert_eq!(found["total"], 0);
    // POST _search
    let res = s
        .client
        .post(s.url("Patient/_search"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("identifier=urn%3Atest%3Amrn%7Cs2")
        .send()
        .await
        .expect("post");
    let found = json(res).await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["entry"][0]["resource"]["id"], b["id"]);
}
