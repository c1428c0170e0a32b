use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn fifty_identical_conditional_creates_make_one_resource() {
    let s = Arc::new(start().await);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let res = s
                .client
                .post(s.url("Patient"))
                .header("Content-Type", FHIR_JSON)
                .header("If-None-Exist", "identifier=urn:test:mrn|race")
                .body(patient("race").to_string())
                .send()
                .await
                .expect("post");
            let status = res.status();
            let body: Value = res.json().await.expect("json");
            (status, body["id"].as_str().unwrap_or_default().to_string())
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, id) = t.await.expect("task");
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("unexpected status {other}"),
        }
        ids.insert(id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1, "every answer names the same resource");
    let found = json(s.get("Patient?identifier=urn:test:mrn|race").await).await;
    assert_eq!(found["total"], 1);
}

#[tokio::test]
async fn concurrent_if_match_updates_lose_nothing() {
    let s = Arc::new(start().await);
    let mut p = patient("counter");
    p["id"] = json!("counter");
    p["multipleBirthInteger"] = json!(0);
    assert_eq!(
        s.put_json("Patient/counter", &p).await.status(),
        StatusCode::CREATED
    );
    let workers = 8;
    let per_worker = 5;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            let mut conflicts = 0;
            while done < per_worker {
                let res = s.get("Patient/counter").await;
                let etag = res.headers()["etag"].to_str().expect("etag").to_string();
                let mut current: Value = res.json().await.expect("json");
                let n = current["multipleBirthInteger"].as_i64().expect("counter");
                current["multipleBirthInteger"] = json!(n + 1);
                let res = s
                    .client
                    .put(s.url("Patient/counter"))
                    .header("Content-Type", FHIR_JSON)
                    .header("If-Match", etag)
                    .body(current.to_string())
                    .send()
                    .await
                    .expect("put");
                match res.status() {
                    StatusCode::OK => done += 1,
                    StatusCode::PRECONDITION_FAILED => conflicts += 1,
                    other => panic!("unexpected {other}"),
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let last = json(s.get("Patient/counter").await).await;
    let total = workers * per_worker;
    assert_eq!(last["multipleBirthInteger"], total);
    assert_eq!(last["meta"]["versionId"], (total + 1).to_string());
    let history = json(s.get("Patient/counter/_history?_count=1000").await).await;
    assert_eq!(
        history["entry"].as_array().map(Vec::len),
        Some(total as usize + 1)
    );
}

#[tokio::test]
async fn concurrent_plain_updates_each_get_their_own_version() {
    let s = Arc::new(start().await);
    let mut p = patient("plain");
    p["id"] = json!("plain");
    s.put_json("Patient/plain", &p).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        let mut p = p.clone();
        tasks.push(tokio::spawn(async move {
            p["multipleBirthInteger"] = json!(i);
            s.put_json("Patient/plain", &p).await.status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), StatusCode::OK);
    }
    let last = json(s.get("Patient/plain").await).await;
    assert_eq!(last["meta"]["versionId"], "21");
}
