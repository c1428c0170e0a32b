//! Two SHALLs of the standards that bulk-data clients rely on: SMART Backend Services'
//! `jku` rule at the token endpoint, and Bulk Data's rule that a job's status and files
//! need a token whose scopes cover what the job exported.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

use crate::export::{kick_off, manifest};
use crate::security::{
    assertion, assertion_with_jku, ec_key, rsa_key, serve_counted_jwks, token_request,
};
use crate::support::*;

fn token_url(s: &TestServer) -> String {
    s.base.replace("/fhir", "/auth/token")
}

/// Registers a client of the default clinic (as `hep-server client add` does).
fn register(s: &TestServer, scope: &str, jwks: Option<Value>, jwks_url: Option<&str>) -> String {
    let registration = api::auth::clients::Registration {
        tenant: "default".into(),
        name: "Bulk client".into(),
        scope: scope.into(),
        jwks: jwks.map(|j| j.to_string()),
        jwks_url: jwks_url.map(str::to_string),
        kind: "backend".into(),
        redirect_uris: Vec::new(),
    };
    api::auth::clients::register_in(&s.database_url, &registration)
        .expect("register")
        .0
        .client_id
}

/// Asserts an RFC 6749 error answer.
async fn refused(res: reqwest::Response, label: &str) -> Value {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{label}");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client", "{label}: {body}");
    body
}

#[tokio::test]
async fn a_jku_must_be_the_registered_jwks_url() {
    let s = start().await;
    let aud = token_url(&s);
    let key = rsa_key("ehr-1");
    let (registered, registered_hits) =
        serve_counted_jwks(json!({"keys": [key.jwk.clone()]})).await;
    // another address, serving the client's own key and one of an attacker's
    let attacker = rsa_key("ehr-1");
    let (elsewhere, elsewhere_hits) =
        serve_counted_jwks(json!({"keys": [key.jwk.clone(), attacker.jwk.clone()]})).await;
    let client = register(&s, "system/*.rs", None, Some(&registered));

    // the registered URL in `jku`, or no `jku`: accepted
    let res = token_request(
        &s,
        "system/Patient.rs",
        &assertion_with_jku(&key, &client, &aud, "a1", 240, Some(&registered)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "jku of the registered URL");
    assert!(registered_hits.load(Ordering::SeqCst) >= 1);
    let res = token_request(
        &s,
        "system/Patient.rs",
        &assertion(&key, &client, &aud, "a2", 240),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "no jku");

    // another URL: refused, even signed by the client's key, and never contacted
    refused(
        token_request(
            &s,
            "system/Patient.rs",
            &assertion_with_jku(&key, &client, &aud, "a3", 240, Some(&elsewhere)),
        )
        .await,
        "jku of another URL, the client's key",
    )
    .await;
    refused(
        token_request(
            &s,
            "system/Patient.rs",
            &assertion_with_jku(&attacker, &client, &aud, "a4", 240, Some(&elsewhere)),
        )
        .await,
        "jku of another URL, a key found there",
    )
    .await;
    assert_eq!(
        elsewhere_hits.load(Ordering::SeqCst),
        0,
        "the server fetched keys from an address the client did not register"
    );
    // a refused assertion's jti is not spent: the same one without the jku passes
    let res = token_request(
        &s,
        "system/Patient.rs",
        &assertion(&key, &client, &aud, "a3", 240),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "a3 without jku");

    // keys registered as a document: any jku is refused, none is fetched
    let ec = ec_key("tool-1");
    let (served, served_hits) = serve_counted_jwks(json!({"keys": [ec.jwk.clone()]})).await;
    let tool = register(
        &s,
        "system/*.rs",
        Some(json!({"keys": [ec.jwk.clone()]})),
        None,
    );
    refused(
        token_request(
            &s,
            "system/Patient.rs",
            &assertion_with_jku(&ec, &tool, &aud, "t1", 240, Some(&served)),
        )
        .await,
        "jku with document-registered keys",
    )
    .await;
    refused(
        token_request(
            &s,
            "system/Patient.rs",
            &assertion_with_jku(&ec, &tool, &aud, "t2", 240, Some(&registered)),
        )
        .await,
        "another client's registered URL as jku",
    )
    .await;
    assert_eq!(served_hits.load(Ordering::SeqCst), 0);
    let res = token_request(
        &s,
        "system/Patient.rs",
        &assertion(&ec, &tool, &aud, "t3", 240),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "document keys without jku");
}

/// A token of `client` (the server's own key, as the token endpoint signs them), for
/// scopes the token endpoint does not hand out (patient context, restrictions).
fn token_of(s: &TestServer, client: &str, scope: &str, patient: Option<&str>) -> Client {
    let db = api::db::Db::open(&s.database_url, 1).expect("db");
    let keys = db
        .write(api::auth::tokens::TokenKeys::of_database)
        .expect("keys");
    let now = jiff::Timestamp::now().as_second();
    let token = keys
        .issue(&api::auth::tokens::Claims {
            iss: api::auth::tokens::ISSUER.into(),
            aud: api::auth::tokens::ISSUER.into(),
            sub: client.into(),
            iat: now,
            exp: now + 3600,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: scope.into(),
            tenant: "default".into(),
            patient: patient.map(str::to_string),
            fhir_user: None,
            sid: None,
        })
        .expect("token");
    client_with_token(&token)
}

/// A token of the token endpoint for `scope`.
async fn granted(
    s: &TestServer,
    key: &crate::security::ClientKey,
    client: &str,
    scope: &str,
) -> Client {
    let jti = uuid::Uuid::new_v4().to_string();
    let res = token_request(s, scope, &assertion(key, client, &token_url(s), &jti, 240)).await;
    assert_eq!(res.status(), StatusCode::OK, "{scope}");
    let answer: Value = res.json().await.expect("json");
    assert_eq!(answer["scope"], scope);
    client_with_token(answer["access_token"].as_str().expect("access_token"))
}

fn file_url(m: &Value, resource_type: &str) -> String {
    m["output"]
        .as_array()
        .expect("output")
        .iter()
        .find(|f| f["type"] == resource_type)
        .and_then(|f| f["url"].as_str())
        .unwrap_or_else(|| panic!("no {resource_type} file in {m}"))
        .to_string()
}

async fn forbidden_naming(res: reqwest::Response, resource_type: &str, label: &str) {
    let issue = outcome(res, StatusCode::FORBIDDEN).await;
    assert_eq!(issue["code"], "forbidden", "{label}");
    let text = issue["diagnostics"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("system/{resource_type}.")),
        "{label}: {text}"
    );
}

#[tokio::test]
async fn export_results_need_scopes_on_every_exported_type() {
    let s = start().await;
    let a = id_of(&s.create(patient("a")).await);
    s.create(observation(&a, PAIN)).await;
    let key = ec_key("bulk-1");
    let client = register(
        &s,
        "system/*.read",
        Some(json!({"keys": [key.jwk.clone()]})),
        None,
    );
    let full = granted(&s, &key, &client, "system/*.read").await;
    let patients_only = granted(&s, &key, &client, "system/Patient.read").await;

    let status = kick_off(&full, &s, "$export?_type=Patient,Observation").await;
    let m = manifest(&full, &status).await;
    let observations = file_url(&m, "Observation");
    let patients = file_url(&m, "Patient");

    // the same client, with a token that does not read Observation
    forbidden_naming(
        patients_only.get(&status).send().await.expect("status"),
        "Observation",
        "status",
    )
    .await;
    forbidden_naming(
        patients_only.get(&observations).send().await.expect("file"),
        "Observation",
        "Observation file",
    )
    .await;
    forbidden_naming(
        patients_only.delete(&status).send().await.expect("delete"),
        "Observation",
        "DELETE",
    )
    .await;
    // a file of a type it reads is its own
    let res = patients_only.get(&patients).send().await.expect("file");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.expect("body").contains(&a));

    // a token restricted by a search sees no unrestricted export of the type
    let restricted = token_of(
        &s,
        &client,
        "system/Patient.rs system/Observation.rs?code=http://loinc.org|72514-3",
        None,
    );
    forbidden_naming(
        restricted.get(&observations).send().await.expect("file"),
        "Observation",
        "restricted scope",
    )
    .await;
    // nor does a patient's context, as at the kick-off
    let app = token_of(&s, &client, "patient/*.read", Some(&a));
    forbidden_naming(
        app.get(&patients).send().await.expect("file"),
        "Patient",
        "patient scopes",
    )
    .await;

    // the token that covers every type gets everything
    let res = full.get(&status).send().await.expect("status");
    assert_eq!(res.status(), StatusCode::OK);
    let res = full.get(&observations).send().await.expect("file");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.expect("body").contains("72514-3"));
    // another client still finds nothing, whatever its scopes
    let stranger = token_of(&s, "another-client", "system/*.read", None);
    outcome(
        stranger.get(&status).send().await.expect("status"),
        StatusCode::NOT_FOUND,
    )
    .await;
    let res = full.delete(&status).send().await.expect("delete");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn patient_level_export_results_need_scopes_beyond_one_patient() {
    let s = start().await;
    let a = id_of(&s.create(patient("a")).await);
    s.create(observation(&a, "8867-4")).await;
    let key = ec_key("bulk-2");
    let client = register(
        &s,
        "system/*.read",
        Some(json!({"keys": [key.jwk.clone()]})),
        None,
    );
    let full = granted(&s, &key, &client, "system/*.read").await;
    let status = kick_off(&full, &s, "Patient/$export?_type=Patient,Observation").await;
    let m = manifest(&full, &status).await;
    let observations = file_url(&m, "Observation");

    // patient scopes on the exported types, even with that patient in context
    let app = token_of(&s, &client, "patient/*.read", Some(&a));
    // (the status names the export's first type, the file its own)
    for (url, named) in [(&status, "Patient"), (&observations, "Observation")] {
        forbidden_naming(app.get(url).send().await.expect("get"), named, url).await;
    }
    // a system scope on Patient alone opens neither the status nor the Observations
    let patients_only = token_of(&s, &client, "system/Patient.rs", None);
    for url in [&status, &observations] {
        forbidden_naming(
            patients_only.get(url).send().await.expect("get"),
            "Observation",
            url,
        )
        .await;
    }
    // user scopes are beyond one patient too, as at the kick-off
    let user = token_of(&s, &client, "user/Patient.rs user/Observation.rs", None);
    let res = user.get(&observations).send().await.expect("file");
    assert_eq!(res.status(), StatusCode::OK);
    let res = user.get(&status).send().await.expect("status");
    assert_eq!(res.status(), StatusCode::OK);
}
