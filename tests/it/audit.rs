//! The audit trail: every change (in its own transaction), read, search, refusal and
//! token request is an AuditEvent that only an admin token reads, and no client writes.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// The AuditEvents matching `query`, waiting a little for the ones written after the
/// answer (reads, searches, refusals are recorded by a background writer).
pub(crate) async fn events(
    admin: &reqwest::Client,
    s: &TestServer,
    query: &str,
    at_least: usize,
) -> Vec<Value> {
    for _ in 0..50 {
        let b: Value = admin
            .get(s.url(&format!("AuditEvent?{query}")))
            .send()
            .await
            .expect("search")
            .json()
            .await
            .expect("bundle");
        let found: Vec<Value> = b["entry"]
            .as_array()
            .map(|e| e.iter().map(|e| e["resource"].clone()).collect())
            .unwrap_or_default();
        if found.len() >= at_least {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Vec::new()
}

fn subtype(e: &Value) -> &str {
    e["subtype"][0]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn interactions_are_recorded_and_readable_by_admins_only() {
    let s = start().await;
    let admin = client_with_token(&token(&s.database_url, "hep-admin", None));
    let p = s.create(patient("audit-1")).await;
    let id = p["id"].as_str().expect("id").to_string();
    assert_eq!(
        s.get(&format!("Patient/{id}")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get(&format!("Observation?patient={id}")).await.status(),
        StatusCode::OK
    );
    let narrow = client_with_token(&token(&s.database_url, "system/Patient.rs", None));
    let refused = narrow.get(s.url("Observation")).send().await.expect("get");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let about = events(&admin, &s, &format!("patient={id}"), 3).await;
    let kinds: Vec<&str> = about.iter().map(subtype).collect();
    for k in ["create", "read", "search-type"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let create = about
        .iter()
        .find(|e| subtype(e) == "create")
        .expect("create");
    assert_eq!(create["action"], "C");
    assert_eq!(create["outcome"], "0");
    assert_eq!(
        create["agent"][0]["who"]["identifier"]["value"],
        "dev-token"
    );
    assert_eq!(create["agent"][0]["network"]["address"], "127.0.0.1");
    assert_eq!(
        create["entity"][0]["what"]["reference"],
        format!("Patient/{id}/_history/1")
    );
    let search = about
        .iter()
        .find(|e| subtype(e) == "search-type")
        .expect("search");
    assert!(
        search["entity"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["query"].is_string()))
    );
    // the refusal, newest first
    let refusals = events(&admin, &s, "outcome=4", 1).await;
    assert_eq!(refusals[0]["outcomeDesc"], "HTTP 403");
    // each AuditEvent reads back, and is valid R4
    let one = admin
        .get(s.url(&format!(
            "AuditEvent/{}",
            create["id"].as_str().expect("id")
        )))
        .send()
        .await
        .expect("read");
    assert_eq!(one.status(), StatusCode::OK);
    // only an admin token reads the trail; nobody writes it
    let res = s.get("AuditEvent").await;
    outcome(res, StatusCode::FORBIDDEN).await;
    let everything = client_with_token(&token(&s.database_url, "system/*.cruds hep-admin", None));
    let res = everything
        .post(s.url("AuditEvent"))
        .header("Content-Type", FHIR_JSON)
        .body(json!({"resourceType": "AuditEvent"}).to_string())
        .send()
        .await
        .expect("post");
    outcome(res, StatusCode::FORBIDDEN).await;
    let res = everything
        .delete(s.url(&format!(
            "AuditEvent/{}",
            create["id"].as_str().expect("id")
        )))
        .send()
        .await
        .expect("delete");
    outcome(res, StatusCode::FORBIDDEN).await;
    // unknown parameters are refused, like every search
    let res = admin
        .get(s.url("AuditEvent?colour=red"))
        .send()
        .await
        .expect("get");
    outcome(res, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn a_change_that_rolls_back_leaves_no_record_of_it() {
    let s = start().await;
    let admin = client_with_token(&token(&s.database_url, "hep-admin", None));
    // a transaction whose second entry fails: neither Patient exists, nor a record of it
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        post_entry(patient("rolled-1")),
        post_entry(observation("does-not-exist", PAIN))
    ]});
    let res = s.post_json("", &bundle).await;
    assert!(res.status().is_client_error());
    // the failed request is recorded, as one refusal of the transaction
    let refusals = events(&admin, &s, "subtype=transaction", 1).await;
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["outcome"], "4");
    let creates = events(&admin, &s, "subtype=create", 0).await;
    assert!(creates.is_empty(), "{creates:?}");
    // a token refused at the token endpoint is recorded too
    let res = reqwest::Client::new()
        .post(s.base.replace("/fhir", "/auth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=system%2F*.rs&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=abc")
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let tokens = events(&admin, &s, "subtype=token", 1).await;
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["type"]["code"], "110114");
    assert_eq!(tokens[0]["outcome"], "4");
}
