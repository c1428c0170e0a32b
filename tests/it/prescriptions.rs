//! Exercise prescriptions (ServiceRequest with the project's profile) through REST:
//! validated with every problem located, the dose mirrored into words by the server,
//! never edited once active.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// Quadriceps sets, `sets` x 10 held 5 s, left side, twice a day for six weeks: every
/// part of the dose the server writes in words.
fn quad_sets(patient: &str, sets: u32, status: &str) -> Value {
    let mut rx = prescription(
        patient,
        "Quadriceps sets",
        sets,
        ("2026-11-02", "2026-12-13"),
    );
    rx["status"] = json!(status);
    rx["instantiatesCanonical"] = json!([format!("{BASE}/ActivityDefinition/quad-sets|1.0.0")]);
    rx["occurrenceTiming"]["repeat"]["frequency"] = json!(2);
    rx["extension"][0]["extension"]
        .as_array_mut()
        .expect("dosage")
        .extend([
            json!({"url": "hold", "valueDuration": {"value": 5, "unit": "s", "system": "http://unitsofmeasure.org", "code": "s"}}),
            json!({"url": "side", "valueCoding": {"system": format!("{BASE}/CodeSystem/exercise-side"), "code": "left"}}),
        ]);
    rx
}

#[tokio::test]
async fn the_server_writes_the_dose_in_words() {
    let s = start().await;
    let p = s.create(patient("rx1")).await;
    let pid = p["id"].as_str().expect("id");
    let created = s.create(quad_sets(pid, 3, "active")).await;
    assert_eq!(
        created["patientInstruction"],
        "Quadriceps sets: 3 sets of 10 repetitions, hold 5 seconds, left side, twice a day, every day for 6 weeks."
    );
    assert_eq!(created["text"]["status"], "generated");
    assert_eq!(
        created["occurrenceTiming"]["code"]["text"],
        "twice a day, every day for 6 weeks"
    );
    // a client's own instruction text is replaced by the server's
    let mut other = quad_sets(pid, 2, "draft");
    other["patientInstruction"] = json!("do lots");
    let created = s.create(other).await;
    assert!(
        created["patientInstruction"]
            .as_str()
            .is_some_and(|t| t.contains("2 sets of 10"))
    );
}

#[tokio::test]
async fn every_problem_is_reported_at_once() {
    let s = start().await;
    let p = s.create(patient("rx2")).await;
    let pid = p["id"].as_str().expect("id");
    // 0 sets is no positiveInt at all: a 400 at the value, before any rule of the profile
    let res = s
        .post_json("ServiceRequest", &quad_sets(pid, 0, "active"))
        .await;
    let issue = outcome(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        issue["expression"][0],
        "ServiceRequest.extension[0].extension[0].value.ofType(PositiveInt)"
    );
    // 25 sets is a positiveInt but more than the profile allows
    let mut bad = quad_sets(pid, 25, "active");
    bad["intent"] = json!("proposal");
    bad["occurrenceTiming"]["repeat"]["frequency"] = json!(12);
    let res = s.post_json("ServiceRequest", &bad).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let oo = json(res).await;
    let at: Vec<&str> = oo["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .filter_map(|i| i["expression"][0].as_str())
        .collect();
    assert_eq!(
        at,
        [
            "ServiceRequest.intent",
            "ServiceRequest.extension[0].extension[0]",
            "ServiceRequest.occurrenceTiming.repeat"
        ]
    );
    // a ServiceRequest that does not claim the profile is stored as any resource
    let mut plain = bad.clone();
    if let Some(o) = plain.as_object_mut() {
        o.remove("meta");
        o.remove("extension");
    }
    plain["intent"] = json!("order");
    assert_eq!(
        s.post_json("ServiceRequest", &plain).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn active_prescriptions_change_status_but_not_dose() {
    let s = start().await;
    let p = s.create(patient("rx3")).await;
    let pid = p["id"].as_str().expect("id").to_string();
    // a draft may be edited
    let draft = s.create(quad_sets(&pid, 3, "draft")).await;
    let id = draft["id"].as_str().expect("id").to_string();
    let mut edit = quad_sets(&pid, 4, "draft");
    edit["id"] = json!(id);
    let res = s.put_json(&format!("ServiceRequest/{id}"), &edit).await;
    assert_eq!(res.status(), StatusCode::OK);
    // activate
    let mut active = quad_sets(&pid, 4, "active");
    active["id"] = json!(id);
    assert_eq!(
        s.put_json(&format!("ServiceRequest/{id}"), &active)
            .await
            .status(),
        StatusCode::OK
    );
    // the dose of an active prescription is not edited
    let mut changed = quad_sets(&pid, 5, "active");
    changed["id"] = json!(id);
    let res = s.put_json(&format!("ServiceRequest/{id}"), &changed).await;
    let issue = outcome(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(issue["code"], "business-rule");
    // its status follows the lifecycle
    let mut held = quad_sets(&pid, 4, "on-hold");
    held["id"] = json!(id);
    assert_eq!(
        s.put_json(&format!("ServiceRequest/{id}"), &held)
            .await
            .status(),
        StatusCode::OK
    );
    let mut back_to_draft = quad_sets(&pid, 4, "draft");
    back_to_draft["id"] = json!(id);
    let issue = outcome(
        s.put_json(&format!("ServiceRequest/{id}"), &back_to_draft)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["code"], "business-rule");
    // the change of dose is a new prescription that replaces the old one
    let mut revoked = quad_sets(&pid, 4, "revoked");
    revoked["id"] = json!(id);
    assert_eq!(
        s.put_json(&format!("ServiceRequest/{id}"), &revoked)
            .await
            .status(),
        StatusCode::OK
    );
    let mut replacement = quad_sets(&pid, 5, "active");
    replacement["replaces"] = json!([{"reference": format!("ServiceRequest/{id}")}]);
    let new = s.create(replacement).await;
    assert!(
        new["patientInstruction"]
            .as_str()
            .is_some_and(|t| t.contains("5 sets"))
    );
    // both versions of the old one remain in its history
    let history = json(s.get(&format!("ServiceRequest/{id}/_history")).await).await;
    assert_eq!(history["entry"].as_array().map(Vec::len), Some(5));
}

/// A program through the six weeks of `quad_sets`.
fn knee_program(patient: &str, status: &str, exercises: &[&str]) -> Value {
    let mut plan = program(patient, exercises, ("2026-11-02", "2026-12-13"));
    plan["status"] = json!(status);
    plan
}

#[tokio::test]
async fn a_program_lists_its_exercises_and_follows_its_lifecycle() {
    let s = start().await;
    let p = s.create(patient("prog1")).await;
    let pid = p["id"].as_str().expect("id").to_string();
    let a = s.create(quad_sets(&pid, 3, "active")).await;
    let b = s.create(quad_sets(&pid, 2, "active")).await;
    let (a, b) = (a["id"].as_str().expect("id"), b["id"].as_str().expect("id"));
    let plan = s.create(knee_program(&pid, "draft", &[a, b])).await;
    let id = plan["id"].as_str().expect("id").to_string();
    let div = plan["text"]["div"].as_str().expect("narrative");
    assert!(
        div.contains("<li>Quadriceps sets: 3 sets of 10 repetitions"),
        "{div}"
    );
    assert!(
        div.contains("<li>Quadriceps sets: 2 sets of 10 repetitions"),
        "{div}"
    );
    assert_eq!(plan["text"]["status"], "generated");

    let mut active = knee_program(&pid, "active", &[a, b]);
    active["id"] = json!(id);
    assert_eq!(
        s.put_json(&format!("CarePlan/{id}"), &active)
            .await
            .status(),
        StatusCode::OK
    );
    let mut draft_again = knee_program(&pid, "draft", &[a, b]);
    draft_again["id"] = json!(id);
    let issue = outcome(
        s.put_json(&format!("CarePlan/{id}"), &draft_again).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["expression"][0], "CarePlan.status");
    // an active program needs exercises
    let empty = knee_program(&pid, "active", &[]);
    outcome(
        s.post_json("CarePlan", &empty).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // an activity must be an exercise prescription of this patient
    let other = s.create(patient("prog2")).await;
    let other_rx = s
        .create(quad_sets(other["id"].as_str().expect("id"), 1, "active"))
        .await;
    let wrong = knee_program(&pid, "draft", &[other_rx["id"].as_str().expect("id")]);
    let issue = outcome(
        s.post_json("CarePlan", &wrong).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["expression"][0], "CarePlan.activity[0].reference");
    // the history keeps both versions
    let history = json(s.get(&format!("CarePlan/{id}/_history")).await).await;
    assert_eq!(history["entry"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_profiles_are_served() {
    let s = start().await;
    for path in [
        "StructureDefinition/exercise-dosage",
        "StructureDefinition/hep-exercise-prescription",
        "StructureDefinition/hep-program",
        "CodeSystem/exercise-side",
    ] {
        let res = s.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let body = json(res).await;
        assert!(
            body["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(BASE) && u.ends_with(path)),
            "{body}"
        );
    }
    let sd = json(s.get("StructureDefinition/exercise-dosage").await).await;
    assert_eq!(sd["type"], "Extension");
    assert_eq!(sd["meta"]["versionId"], "1");
}

#[tokio::test]
async fn a_restart_does_not_rewrite_the_profiles() {
    let dir = tempfile::tempdir().expect("dir");
    let url = dir.path().join("restart.db").display().to_string();
    let clock = std::sync::Arc::new(api::clock::SystemClock);
    for _ in 0..2 {
        let u = url.clone();
        let s = start_with(move |c| c.database_url = u, clock.clone()).await;
        let sd = json(s.get("StructureDefinition/hep-program").await).await;
        assert_eq!(sd["meta"]["versionId"], "1");
    }
}
