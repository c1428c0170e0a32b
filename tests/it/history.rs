use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn instance_history_newest_first_with_deletes() {
    let s = start().await;
    let created = s.create(patient("h1")).await;
    let id = created["id"].as_str().expect("id").to_string();
    let mut v = created.clone();
    v["active"] = json!(true);
    assert_eq!(
        s.put_json(&format!("Patient/{id}"), &v).await.status(),
        StatusCode::OK
    );
    s.client
        .delete(s.url(&format!("Patient/{id}")))
        .send()
        .await
        .expect("delete");

    let bundle = json(s.get(&format!("Patient/{id}/_history")).await).await;
    assert_eq!(bundle["type"], "history");
    let e = entries(&bundle);
    assert_eq!(e.len(), 3);
    assert_eq!(e[0]["request"]["method"], "DELETE");
    assert!(e[0].get("resource").is_none());
    assert_eq!(e[0]["response"]["etag"], "W/\"3\"");
    assert_eq!(e[1]["request"]["method"], "PUT");
    assert_eq!(e[1]["resource"]["active"], true);
    assert_eq!(e[1]["resource"]["meta"]["versionId"], "2");
    assert_eq!(e[2]["request"]["method"], "POST");
    assert_eq!(e[2]["request"]["url"], "Patient");
    assert_eq!(e[2]["resource"]["meta"]["versionId"], "1");
    assert!(e[2].get("active").is_none());
    assert_eq!(e[2]["fullUrl"], s.url(&format!("Patient/{id}")).as_str());
    outcome(
        s.get("Patient/unknown/_history").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn type_and_system_history_since_and_paging() {
    let s = start().await;
    let mut ids = Vec::new();
    let mut first_ts = String::new();
    for i in 0..5 {
        let p = s.create(patient(&format!("h{i}"))).await;
        ids.push(p["id"].as_str().expect("id").to_string());
        if i == 0 {
            first_ts = p["meta"]["lastUpdated"].as_str().expect("ts").to_string();
        }
    }
    let practitioner = s.create(practitioner()).await;
    let t_after_patients = practitioner["meta"]["lastUpdated"]
        .as_str()
        .expect("ts")
        .to_string();

    let types = json(s.get("Patient/_history").await).await;
    assert_eq!(entries(&types).len(), 5);
    assert!(
        entries(&types)
            .iter()
            .all(|e| e["resource"]["resourceType"] == "Patient")
    );
    // (the server's own conformance resources were written before)
    let all = json(s.get(&format!("_history?_since={first_ts}")).await).await;
    let e = entries(&all);
    assert_eq!(e.len(), 6);
    assert_eq!(e[0]["resource"]["resourceType"], "Practitioner");

    let since = json(
        s.get(&format!(
            "_history?_since={}",
            t_after_patients.replace('+', "%2B")
        ))
        .await,
    )
    .await;
    assert_eq!(entries(&since).len(), 1);

    // paging two at a time walks every version once, newest first
    let mut seen = Vec::new();
    let mut url = s.url("Patient/_history?_count=2");
    loop {
        let page = json(s.client.get(&url).send().await.expect("page")).await;
        for e in entries(&page) {
            seen.push(e["resource"]["id"].as_str().expect("id").to_string());
        }
        // a write between pages does not shift later pages
        if seen.len() == 2 {
            s.create(patient("late")).await;
        }
        match page["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        {
            Some(next) => url = next["url"].as_str().expect("url").to_string(),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
}
