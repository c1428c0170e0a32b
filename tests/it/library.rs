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

#[tokio::test]
async fn apply_a_template_then_tailor_and_activate() {
    let s = start().await;
    let p = s.create(patient("apply1")).await;
    let pid = p["id"].as_str().expect("id").to_string();
    let res = s
        .client
        .post(s.url(&format!(
            "PlanDefinition/knee-osteoarthritis/$apply?subject=Patient/{pid}"
        )))
        .send()
        .await
        .expect("apply");
    assert_eq!(res.status(), StatusCode::CREATED);
    let plan = json(res).await;
    assert_eq!(plan["resourceType"], "CarePlan");
    assert_eq!(plan["status"], "draft");
    assert_eq!(
        plan["instantiatesCanonical"][0],
        "https://hep-fhir.org/fhir/PlanDefinition/knee-osteoarthritis|1.0.0"
    );
    let activities = plan["activity"].as_array().expect("activities").clone();
    assert_eq!(activities.len(), 6);
    let div = plan["text"]["div"].as_str().expect("narrative");
    assert!(div.contains("Quadriceps sets: 3 sets of 10 repetitions, hold 5 seconds, both sides, twice a day, every day for 6 weeks."), "{div}");

    // the therapist tailors the first exercise (a draft may change) and activates everything
    let first = activities[0]["reference"]["reference"]
        .as_str()
        .expect("ref")
        .to_string();
    let mut rx = json(s.get(&first).await).await;
    assert_eq!(rx["status"], "draft");
    rx["extension"][0]["extension"][0]["valuePositiveInt"] = json!(2);
    let rx = json(s.put_json(&first, &rx).await).await;
    assert!(
        rx["patientInstruction"]
            .as_str()
            .is_some_and(|t| t.contains("2 sets of 10"))
    );
    for a in &activities {
        let r = a["reference"]["reference"].as_str().expect("ref");
        let mut sr = json(s.get(r).await).await;
        sr["status"] = json!("active");
        assert_eq!(s.put_json(r, &sr).await.status(), StatusCode::OK);
    }
    let id = plan["id"].as_str().expect("id");
    let mut active = json(s.get(&format!("CarePlan/{id}")).await).await;
    active["status"] = json!("active");
    let active = json(s.put_json(&format!("CarePlan/{id}"), &active).await).await;
    assert_eq!(active["status"], "active");
    assert!(
        active["text"]["div"]
            .as_str()
            .is_some_and(|d| d.contains("Quadriceps sets: 2 sets of 10"))
    );
}

#[tokio::test]
async fn apply_one_exercise_and_the_errors() {
    let s = start().await;
    let p = s.create(patient("apply2")).await;
    let pid = p["id"].as_str().expect("id").to_string();
    // the practitioner must exist like any reference
    let res = s
        .get(&format!(
            "ActivityDefinition/bridge/$apply?subject=Patient/{pid}&practitioner=Practitioner/t9"
        ))
        .await;
    outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    let t = s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Lee"}]}))
        .await;
    let tid = t["id"].as_str().expect("id");
    let res = s
        .get(&format!(
            "ActivityDefinition/bridge/$apply?subject=Patient/{pid}&practitioner=Practitioner/{tid}"
        ))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let sr = json(res).await;
    assert_eq!(sr["resourceType"], "ServiceRequest");
    assert_eq!(sr["requester"]["reference"], format!("Practitioner/{tid}"));
    assert!(
        sr["patientInstruction"]
            .as_str()
            .is_some_and(|t| t.starts_with("Bridge: 3 sets of 10 repetitions, hold 3 seconds"))
    );
    // with a Parameters body
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "subject", "valueString": format!("Patient/{pid}")}]});
    let res = s.post_json("ActivityDefinition/bridge/$apply", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    outcome(
        s.get("ActivityDefinition/bridge/$apply").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    outcome(
        s.get("ActivityDefinition/bridge/$apply?subject=Patient/nobody")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    outcome(
        s.get(&format!(
            "ActivityDefinition/nothing/$apply?subject=Patient/{pid}"
        ))
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    outcome(
        s.get(&format!(
            "PlanDefinition/bridge/$apply?subject=Patient/{pid}&setting=home"
        ))
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let cs = json(s.get("metadata").await).await;
    let pd = cs["rest"][0]["resource"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "PlanDefinition"))
        .cloned()
        .expect("PD");
    assert_eq!(pd["operation"][0]["name"], "apply");
}
