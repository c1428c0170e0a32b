//! Faults of the database answered cleanly: 503 with `Retry-After` and an
//! OperationOutcome that says which, nothing half-written.

use std::sync::Arc;

use api::clock::SystemClock;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

/// A Patient of about 300 KB (its narrative).
fn large_patient(mrn: &str) -> serde_json::Value {
    let mut p = patient(mrn);
    p["text"] = json!({
        "status": "generated",
        "div": format!(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>",
            "exercise notes ".repeat(20_000)
        )
    });
    p
}

#[tokio::test]
async fn a_full_database_answers_503_disk_full_and_loses_nothing_acknowledged() {
    let s = start_with(
        |c| {
            c.sqlite_max_size_mb = 4;
            c.starter_library = false;
        },
        Arc::new(SystemClock),
    )
    .await;
    if s.database_url.starts_with("postgres") {
        return; // the cap is SQLite's (`max_page_count`)
    }
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..40 {
        let res = s
            .post_json("Patient", &large_patient(&format!("full-{i}")))
            .await;
        match res.status() {
            StatusCode::CREATED => acknowledged.push(format!("full-{i}")),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some(res);
                break;
            }
            other => panic!(
                "a write answered {other}: {}",
                res.text().await.unwrap_or_default()
            ),
        }
    }
    let res = refused.expect("the database reaches its size");
    assert!(!acknowledged.is_empty(), "some writes fit");
    assert_eq!(
        res.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("30")
    );
    let issue = outcome(res, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(issue["code"], "no-store", "{issue}");
    assert!(
        issue["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .starts_with("disk full"),
        "{issue}"
    );
    // reads go on, and every acknowledged write is there, whole
    let found = json(s.get("Patient?_count=100&_elements=identifier").await).await;
    let mut stored: Vec<String> = found["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["identifier"][0]["value"].as_str())
        .map(str::to_string)
        .collect();
    stored.sort();
    acknowledged.sort();
    assert_eq!(stored, acknowledged);
}
