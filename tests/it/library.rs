//! The starter library: loaded once into a new database, never over a clinic's changes.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn starter_library_is_loaded_once() {
    let dir = tempfile::tempdir().expect("dir");
    let url = dir.path().join("library.db").display().to_string();
    let clock = std::sync::Arc::new(api::clock::SystemClock);
    let u = url.clone();
    let s = start_with(move |c| c.database_url = u, clock.clone()).await;
    let found = json(s.get("ActivityDefinition?_count=0").await).await;
    assert!(found["total"].as_u64().is_some_and(|n| n >= 40), "{found}");
    let templates = json(s.get("PlanDefinition?_count=0").await).await;
    assert!(templates["total"].as_u64().is_some_and(|n| n >= 5));
    let quad = json(s.get("ActivityDefinition/quad-sets").await).await;
    assert_eq!(quad["meta"]["tag"][0]["code"], "starter");
    assert!(
        quad["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("1. "))
    );
    // a clinic edits one exercise and deletes another
    let mut edited = quad.clone();
    edited["title"] = json!("Quad sets (our version)");
    assert_eq!(
        s.put_json("ActivityDefinition/quad-sets", &edited)
            .await
            .status(),
        StatusCode::OK
    );
    let res = s
        .client
        .delete(s.url("ActivityDefinition/ankle-alphabet"))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    drop(s);
    // after a restart both choices stand
    let u = url.clone();
    let s = start_with(move |c| c.database_url = u, clock.clone()).await;
    let quad = json(s.get("ActivityDefinition/quad-sets").await).await;
    assert_eq!(quad["title"], "Quad sets (our version)");
    assert_eq!(
        s.get("ActivityDefinition/ankle-alphabet").await.status(),
        StatusCode::GONE
    );
}

#[tokio::test]
async fn the_library_can_be_turned_off() {
    let s = start_with(
        |c| c.starter_library = false,
        std::sync::Arc::new(api::clock::SystemClock),
    )
    .await;
    let found = json(s.get("ActivityDefinition?_count=0").await).await;
    assert_eq!(found["total"], 0);
    // the profiles are there all the same
    assert_eq!(
        s.get("StructureDefinition/hep-program").await.status(),
        StatusCode::OK
    );
}
