//! PATCH with JSON Patch (RFC 6902): applied to the current version, then checked and
//! written like an update.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

async fn patch(
    s: &TestServer,
    path: &str,
    body: &str,
    if_match: Option<&str>,
) -> reqwest::Response {
    let mut r = s
        .client
        .patch(s.url(path))
        .header("Content-Type", "application/json-patch+json")
        .body(body.to_string());
    if let Some(v) = if_match {
        r = r.header("If-Match", v);
    }
    r.send().await.expect("PATCH")
}

#[tokio::test]
async fn json_patch_updates_and_refuses_what_an_update_would() {
    let s = start().await;
    let p = s.create(patient("patch1")).await;
    let id = p["id"].as_str().expect("id").to_string();
    let path = format!("Patient/{id}");
    let res = patch(&s, &path, r#"[{"op": "add", "path": "/gender", "value": "female"}, {"op": "add", "path": "/birthDate", "value": "1980-02-03"}]"#, Some("W/\"1\"")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["etag"], "W/\"2\"");
    let patched = json(res).await;
    assert_eq!(
        (patched["gender"].clone(), patched["birthDate"].clone()),
        (json!("female"), json!("1980-02-03"))
    );
    assert_eq!(patched["meta"]["versionId"], "2");
    // a stale If-Match
    outcome(
        patch(
            &s,
            &path,
            r#"[{"op": "remove", "path": "/birthDate"}]"#,
            Some("W/\"1\""),
        )
        .await,
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    // a test that fails, a path that is not there: 422, nothing written
    outcome(
        patch(
            &s,
            &path,
            r#"[{"op": "test", "path": "/gender", "value": "male"}]"#,
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    outcome(
        patch(
            &s,
            &path,
            r#"[{"op": "remove", "path": "/telecom/7"}]"#,
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // a result that is not a valid Patient: the same 422/400 as an update
    let issue = outcome(
        patch(
            &s,
            &path,
            r#"[{"op": "add", "path": "/colour", "value": "red"}]"#,
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        issue["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("colour")),
        "{issue}"
    );
    outcome(
        patch(
            &s,
            &path,
            r#"[{"op": "replace", "path": "/id", "value": "other"}]"#,
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // not a patch document; not JSON Patch
    outcome(
        patch(&s, &path, r#"{"op": "add"}"#, None).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let res = s
        .client
        .patch(s.url(&path))
        .header("Content-Type", FHIR_JSON)
        .body("[]")
        .send()
        .await
        .expect("PATCH");
    outcome(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    outcome(
        patch(&s, "Patient/nobody", "[]", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let history = json(s.get(&format!("{path}/_history")).await).await;
    assert_eq!(
        history["entry"].as_array().map(Vec::len),
        Some(2),
        "only the first patch was written"
    );
}
