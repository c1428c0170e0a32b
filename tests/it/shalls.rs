//! SHALLs of the standards that bulk-data clients rely on: SMART Backend Services'
//! `jku` rule at the token endpoint.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

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
    };
    api::auth::clients::register_in(&s.database_url, &registration)
        .expect("register")
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
