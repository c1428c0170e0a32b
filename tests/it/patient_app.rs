//! What the patient app stands on, for every app: a completion sent again is made once
//! (`Idempotency-Key` on PATCH and PUT), the app's files served from the binary with
//! their policy, and the app registered in every clinic for this server's own origin.

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::support::*;

const PAIN: &str = "http://loinc.org|72514-3";

/// A patient with an active program of one exercise today, and a token of that patient
/// as an app gets it (`patient/*.rs patient/Task.u`); the session Task of today.
async fn patient_with_a_session(s: &TestServer) -> (String, reqwest::Client, Value) {
    let pid = id_of(&s.create(patient("app-1")).await);
    let today = jiff::Zoned::now().date().to_string();
    let until = jiff::Zoned::now()
        .date()
        .checked_add(jiff::Span::new().days(6))
        .expect("a date")
        .to_string();
    let rx = id_of(
        &s.create(prescription(&pid, "Bridge", 3, (&today, &until)))
            .await,
    );
    s.create(program(&pid, &[&rx], (&today, &until))).await;
    let app = client_with_token(&token(
        &s.database_url,
        "patient/*.rs patient/Task.u",
        Some(&pid),
    ));
    let bundle: Value = app
        .get(s.url(&format!(
            "Task?patient={pid}&_sort=restriction-period&_count=1"
        )))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("Bundle");
    let task = bundle["entry"][0]["resource"].clone();
    assert_eq!(task["status"], "requested", "{bundle}");
    (pid, app, task)
}

/// A completion of the session as the app sends it (done a minute ago), with a pain score.
fn completion(pain: i64) -> String {
    let done = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .expect("a time");
    let done = done.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    json!([
        {"op": "replace", "path": "/status", "value": "completed"},
        {"op": "add", "path": "/executionPeriod", "value": {"end": done}},
        {"op": "add", "path": "/output", "value": [
            {"type": {"coding": [{"system": format!("{BASE}/CodeSystem/exercise-report"), "code": "sets-done"}]}, "valueInteger": 3},
            {"type": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]}, "valueInteger": pain}
        ]}
    ])
    .to_string()
}

async fn patch(
    s: &TestServer,
    app: &reqwest::Client,
    path: &str,
    key: &str,
    if_match: Option<&str>,
    body: String,
) -> reqwest::Response {
    let mut req = app
        .patch(s.url(path))
        .header("Content-Type", "application/json-patch+json")
        .header("Idempotency-Key", key)
        .body(body);
    if let Some(v) = if_match {
        req = req.header("If-Match", v);
    }
    req.send().await.expect("PATCH")
}

#[tokio::test]
async fn a_completion_sent_again_is_made_once() {
    let s = start().await;
    let (pid, app, task) = patient_with_a_session(&s).await;
    let path = format!("Task/{}", task["id"].as_str().expect("id"));

    // a request sent again is the same request, byte for byte
    let done = completion(4);
    let first = patch(&s, &app, &path, "done-1", Some("W/\"1\""), done.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("Task");
    assert_eq!(first["status"], "completed");
    assert_eq!(first["meta"]["versionId"], "2");

    // the app did not hear the answer and sends the same request again: its If-Match
    // names a version that is no longer current, yet it gets the first answer
    let again = patch(&s, &app, &path, "done-1", Some("W/\"1\""), done.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(
        again.headers().get("etag").map(|v| v.as_bytes()),
        Some(&b"W/\"2\""[..])
    );
    let again: Value = again.json().await.expect("Task");
    assert_eq!(again, first);
    // and without If-Match too
    let third = patch(&s, &app, &path, "done-1", None, done.clone()).await;
    assert_eq!(third.status(), StatusCode::OK);
    assert!(third.headers().get("idempotent-replayed").is_some());

    let now: Value = json(s.get(&path).await).await;
    assert_eq!(now["meta"]["versionId"], "2", "one completion");
    let pain = json(
        s.get(&format!("Observation?patient={pid}&code={PAIN}"))
            .await,
    )
    .await;
    assert_eq!(pain["total"], 1, "one pain score: {pain}");

    // the same key with another request is refused; a second completion is a 422
    let other = patch(&s, &app, &path, "done-1", None, completion(7)).await;
    let issue = outcome(other, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        issue["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("Idempotency-Key")),
        "{issue}"
    );
    let second = patch(&s, &app, &path, "done-2", None, completion(7)).await;
    outcome(second, StatusCode::UNPROCESSABLE_ENTITY).await;
    let pain = json(
        s.get(&format!("Observation?patient={pid}&code={PAIN}"))
            .await,
    )
    .await;
    assert_eq!(pain["total"], 1);

    // another patient's app with the same key neither replays nor learns of it
    let other_pid = id_of(&s.create(patient("app-2")).await);
    let stranger = client_with_token(&token(
        &s.database_url,
        "patient/*.rs patient/Task.u",
        Some(&other_pid),
    ));
    let res = patch(&s, &stranger, &path, "done-1", None, done.clone()).await;
    outcome(res, StatusCode::NOT_FOUND).await;
    // nor does another clinic's client
    let res = patch(
        &s,
        &client_of_tenant(&s, "north"),
        &path,
        "done-1",
        None,
        done,
    )
    .await;
    let issue = outcome(res, StatusCode::NOT_FOUND).await;
    assert!(!issue.to_string().contains(&pid), "{issue}");
}

#[tokio::test]
async fn an_update_sent_again_is_made_once() {
    let s = start().await;
    let (_, app, task) = patient_with_a_session(&s).await;
    let path = format!("Task/{}", task["id"].as_str().expect("id"));
    let mut failed = task.clone();
    failed["status"] = json!("failed");
    failed["statusReason"] = json!({"coding": [{"system": format!("{BASE}/CodeSystem/session-status-reason"), "code": "could-not-do"}], "text": "knee too sore"});
    let put = |key: &'static str| {
        app.put(s.url(&path))
            .header("Content-Type", FHIR_JSON)
            .header("If-Match", "W/\"1\"")
            .header("Idempotency-Key", key)
            .body(failed.to_string())
            .send()
    };
    let first = put("fail-1").await.expect("PUT");
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.expect("Task");
    assert_eq!(first["status"], "failed");
    let again = put("fail-1").await.expect("PUT");
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.headers().get("idempotent-replayed").is_some());
    assert_eq!(again.json::<Value>().await.expect("Task"), first);
    // a new key is a new request: its If-Match is stale now
    outcome(
        put("fail-2").await.expect("PUT"),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    let now: Value = json(s.get(&path).await).await;
    assert_eq!(now["meta"]["versionId"], "2");
}

fn origin(s: &TestServer) -> String {
    s.base.trim_end_matches("/fhir").to_string()
}

async fn get_plain(s: &TestServer, path: &str, if_none_match: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
        .get(format!("{}{path}", origin(s)));
    if let Some(tag) = if_none_match {
        req = req.header("If-None-Match", tag);
    }
    req.send().await.expect("GET")
}

#[tokio::test]
async fn the_app_is_served_from_the_binary_with_its_policy() {
    let s = start().await;
    let page = get_plain(&s, "/app/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // the take-home sheet's inline style, and no other, is allowed by its digest
    assert!(csp.contains("style-src 'self' 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let etag = header(&page, "etag");
    assert!(etag.starts_with('"'), "{etag}");
    let html = page.text().await.expect("text");
    assert!(html.contains("<html lang=\"en\""), "{html}");

    let same = get_plain(&s, "/app/index.html", Some(&etag)).await;
    assert_eq!(same.status(), StatusCode::NOT_MODIFIED);
    let manifest = get_plain(&s, "/app/manifest.webmanifest", None).await;
    assert_eq!(manifest.status(), StatusCode::OK);
    assert_eq!(
        header(&manifest, "content-type"),
        "application/manifest+json"
    );
    let manifest: Value = manifest.json().await.expect("a manifest");
    // the app starts at /app/, wherever the manifest's start_url is relative to it
    let manifest_url =
        url::Url::parse(&format!("{}/app/manifest.webmanifest", origin(&s))).expect("a URL");
    let start = manifest_url
        .join(manifest["start_url"].as_str().unwrap_or("?"))
        .expect("a start URL");
    assert_eq!(start.path(), "/app/", "{manifest}");
    let worker = get_plain(&s, "/app/sw.js", None).await;
    assert_eq!(
        header(&worker, "content-type"),
        "text/javascript; charset=utf-8"
    );

    let bare = get_plain(&s, "/app?clinic=default", None).await;
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&bare, "location"), "/app/?clinic=default");
    assert_eq!(
        get_plain(&s, "/app/nothing.js", None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_plain(&s, "/app/../README.md", None).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// The authorization request of the server's own app of `clinic`, returning to
/// `redirect`.
fn own_app_request(s: &TestServer, clinic: &str, redirect: &str) -> String {
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", &format!("hep-app.{clinic}")),
        ("redirect_uri", redirect),
        (
            "scope",
            "launch/patient openid fhirUser offline_access patient/*.rs patient/Task.u",
        ),
        ("state", "st-1"),
        ("aud", &s.base),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ])
    .expect("query");
    format!("/auth/authorize?{query}")
}

#[tokio::test]
async fn the_app_is_registered_in_every_clinic_for_this_origin_only() {
    let s = start().await;
    let own = format!("{}/app/", origin(&s));
    let signin = get_plain(&s, &own_app_request(&s, "default", &own), None).await;
    assert_eq!(signin.status(), StatusCode::OK);
    let page = signin.text().await.expect("page");
    assert!(page.contains("autocomplete=\"current-password\""), "{page}");
    // another origin's copy of the app is not this app
    let elsewhere = get_plain(
        &s,
        &own_app_request(&s, "default", "https://evil.example/app/"),
        None,
    )
    .await;
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
    assert!(elsewhere.headers().get("location").is_none());

    // another clinic gets its own registration when it is set up (its first request)
    assert_eq!(
        get_plain(&s, &own_app_request(&s, "north", &own), None)
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    client_of_tenant(&s, "north")
        .get(s.url("Patient"))
        .send()
        .await
        .expect("a first request of the clinic");
    assert_eq!(
        get_plain(&s, &own_app_request(&s, "north", &own), None)
            .await
            .status(),
        StatusCode::OK
    );
    let listed = api::auth::clients::list_in(&s.database_url, "north").expect("clients");
    let app = listed
        .iter()
        .find(|c| c.client_id == "hep-app.north")
        .expect("registered");
    assert_eq!(app.kind, "public");
    assert_eq!(app.redirect_uris.as_deref(), Some("/app/"));
}

#[tokio::test]
async fn a_server_without_the_app_neither_serves_nor_registers_it() {
    let s = start_with(
        |c| c.patient_app = false,
        std::sync::Arc::new(api::clock::SystemClock),
    )
    .await;
    assert_eq!(
        get_plain(&s, "/app/", None).await.status(),
        StatusCode::NOT_FOUND
    );
    let own = format!("{}/app/", origin(&s));
    assert_eq!(
        get_plain(&s, &own_app_request(&s, "default", &own), None)
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
}
