use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

fn extension(issue: &serde_json::Value, suffix: &str) -> Option<i64> {
    issue["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"].as_str().is_some_and(|u| u.ends_with(suffix)))?["valueInteger"]
        .as_i64()
}

#[tokio::test]
async fn malformed_json_reports_line_and_column() {
    let s = start().await;
    let res = s
        .post_raw(
            "Patient",
            FHIR_JSON,
            "{\"resourceType\": \"Patient\",\n  \"active\": tx,\n  \"gender\": \"male\"\n}",
        )
        .await;
    let issue = outcome(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(issue["code"], "structure");
    assert_eq!(extension(&issue, "issue-line"), Some(2));
    assert!(extension(&issue, "issue-col").is_some());
}

#[tokio::test]
async fn malformed_xml_reports_line_and_column() {
    let s = start().await;
    let body = "<Patient xmlns=\"http://hl7.org/fhir\">\n  <active value=\"true\">\n</Patient>";
    let issue = outcome(
        s.post_raw("Patient", FHIR_XML, body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(extension(&issue, "issue-line").is_some(), "{issue}");
}

#[tokio::test]
async fn xml_doctype_is_refused() {
    let s = start().await;
    let body = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]><Patient xmlns=\"http://hl7.org/fhir\"/>";
    let issue = outcome(
        s.post_raw("Patient", FHIR_XML, body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(issue["code"], "security");
}

#[tokio::test]
async fn resource_type_problems() {
    let s = start().await;
    let issue = outcome(
        s.post_raw("Patient", FHIR_JSON, r#"{"resourceType":"Foo"}"#)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(issue["expression"][0], "resourceType");
    let issue = outcome(
        s.post_raw("Patient", FHIR_JSON, r#"{"active":true}"#).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(issue["code"], "required");
    let issue = outcome(
        s.post_json("Patient", &json!({"resourceType":"Practitioner"}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        issue["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("Practitioner"))
    );
    // unknown type in the URL
    outcome(
        s.post_json("Foo", &json!({"resourceType":"Foo"})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    outcome(s.get("Foo/1").await, StatusCode::NOT_FOUND).await;
    outcome(s.get("OperationOutcome/1").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn unknown_elements_and_wrong_types_are_located() {
    let s = start().await;
    let body =
        json!({"resourceType":"Patient","name":[{"family":"A"},{"family":"B","nickname":"C"}]});
    let issue = outcome(s.post_json("Patient", &body).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(issue["expression"][0], "Patient.name[1].nickname");
    let body = json!({"resourceType":"Patient","birthDate":19700101});
    let issue = outcome(s.post_json("Patient", &body).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(issue["expression"][0], "Patient.birthDate");
    let body = json!({"resourceType":"Observation","status":"final"});
    let issue = outcome(
        s.post_json("Observation", &body).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(issue["expression"][0], "Observation.code");
}

#[tokio::test]
async fn id_rules_on_put() {
    let s = start().await;
    let mut p = patient("1");
    let issue = outcome(s.put_json("Patient/abc", &p).await, StatusCode::BAD_REQUEST).await;
    assert!(
        issue["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("id"))
    );
    p["id"] = json!("other");
    outcome(s.put_json("Patient/abc", &p).await, StatusCode::BAD_REQUEST).await;
    p["id"] = json!("bad_id");
    outcome(
        s.put_json("Patient/bad_id", &p).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn body_size_and_depth_limits() {
    let s = start_with(
        |c| {
            c.max_body_bytes = 2048;
            c.max_depth = 20;
        },
        std::sync::Arc::new(api::clock::SystemClock),
    )
    .await;
    let mut p = patient("1");
    p["name"][0]["family"] = json!("x".repeat(4000));
    let issue = outcome(
        s.post_json("Patient", &p).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(issue["code"], "too-costly");
    let deep = format!(
        r#"{{"resourceType":"Basic","code":{{"text":"x"}},"extension":[{}]}}"#,
        "{\"url\":\"urn:x\",\"extension\":[".repeat(25) + &"]}".repeat(25)
    );
    let issue = outcome(
        s.post_raw("Basic", FHIR_JSON, &deep).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(issue["code"], "too-costly");
    // an empty body
    outcome(
        s.post_raw("Patient", FHIR_JSON, "").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let s = start().await;
    let res = s
        .client
        .get(s.base.replace("/fhir", "/nothing"))
        .send()
        .await
        .expect("get");
    outcome(res, StatusCode::NOT_FOUND).await;
    outcome(
        s.get("Patient/1/_history/1/extra").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let res = s
        .client
        .delete(s.url("Patient"))
        .send()
        .await
        .expect("delete");
    outcome(res, StatusCode::METHOD_NOT_ALLOWED).await;
    let res = s.client.post(s.url("metadata")).send().await.expect("post");
    outcome(res, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn strict_parameters() {
    let s = start().await;
    let created = s.create(patient("1")).await;
    let id = created["id"].as_str().expect("id");
    outcome(
        s.get(&format!("Patient/{id}?_elements=name")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    outcome(s.get("Patient?nickname=x").await, StatusCode::BAD_REQUEST).await;
    outcome(
        s.get("Patient?identifier:text=x").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    outcome(s.get("Patient?_count=-1").await, StatusCode::BAD_REQUEST).await;
    outcome(
        s.get("_history?_since=yesterday").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}
