//! Bad input never makes the server fail: every truncation and corruption of a valid
//! body is answered with a 4xx OperationOutcome, never a 5xx.

use reqwest::StatusCode;

use crate::support::*;

const JSON_BODY: &str = r#"{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"1"}],"active":true,"name":[{"family":"Ünïcode","given":["A","B"]}],"birthDate":"1970-01-01","multipleBirthInteger":2,"contact":[{"name":{"text":"c"}}],"_gender":{"extension":[{"url":"urn:e","valueString":"x"}]}}"#;
const XML_BODY: &str = r#"<Patient xmlns="http://hl7.org/fhir"><identifier><system value="urn:x"/><value value="2"/></identifier><active value="true"/><name><family value="Ünïcode"/><given value="A"/></name><birthDate value="1970-01-01"/></Patient>"#;

async fn assert_client_error(s: &TestServer, content_type: &str, body: Vec<u8>) {
    let res = s
        .client
        .post(s.url("Patient"))
        .header("Content-Type", content_type)
        .body(body.clone())
        .send()
        .await
        .expect("post");
    let status = res.status();
    assert!(
        status.is_client_error() || status == StatusCode::CREATED,
        "{status} for {:?}",
        String::from_utf8_lossy(&body)
    );
    if status.is_client_error() {
        let v: serde_json::Value = res.json().await.expect("OperationOutcome");
        assert_eq!(v["resourceType"], "OperationOutcome");
    }
}

#[tokio::test]
async fn truncated_and_corrupted_bodies_are_client_errors() {
    let s = start().await;
    // the intact bodies are accepted (a corrupted body that still reads is then a
    // duplicate identifier: a client error too)
    for (ct, body) in [(FHIR_JSON, JSON_BODY), (FHIR_XML, XML_BODY)] {
        let res = s
            .client
            .post(s.url("Patient"))
            .header("Content-Type", ct)
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    for (ct, body) in [(FHIR_JSON, JSON_BODY), (FHIR_XML, XML_BODY)] {
        let bytes = body.as_bytes();
        // every truncation (on any byte, including inside a multi-byte character)
        for cut in 0..bytes.len() {
            assert_client_error(&s, ct, bytes[..cut].to_vec()).await;
        }
        // every byte replaced by a character that breaks structure or types
        for (i, _) in bytes.iter().enumerate().step_by(3) {
            for replacement in [b'"', b'{', b'<', 0xff] {
                let mut b = bytes.to_vec();
                b[i] = replacement;
                assert_client_error(&s, ct, b).await;
            }
        }
    }
}
