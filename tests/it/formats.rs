use reqwest::StatusCode;

use crate::support::*;

const XML_PATIENT: &str = r#"<Patient xmlns="http://hl7.org/fhir">
  <identifier><system value="urn:test:mrn"/><value value="x1"/></identifier>
  <active value="true"/>
  <name><family value="Müller"/><given value="Zoë"/></name>
</Patient>"#;

#[tokio::test]
async fn xml_in_json_out_and_back() {
    let s = start().await;
    let res = s
        .client
        .post(s.url("Patient"))
        .header("Content-Type", "application/fhir+xml; charset=utf-8")
        .header("Accept", FHIR_XML)
        .body(XML_PATIENT)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with(FHIR_XML)
    );
    let xml = res.text().await.expect("text");
    assert!(xml.contains("<family value=\"Müller\"/>"), "{xml}");
    let id = xml
        .split("<id value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("id in XML")
        .to_string();
    let as_json = json(s.get(&format!("Patient/{id}")).await).await;
    assert_eq!(as_json["name"][0]["given"][0], "Zoë");
    assert_eq!(as_json["active"], true);
    for path in [
        format!("Patient/{id}?_format=xml"),
        format!("Patient/{id}?_format=application/fhir%2Bxml"),
    ] {
        let res = s.get(&path).await;
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .starts_with(FHIR_XML)
        );
        assert!(
            res.text()
                .await
                .expect("text")
                .contains("<Patient xmlns=\"http://hl7.org/fhir\">")
        );
    }
    // _format wins over Accept
    let res = s
        .client
        .get(s.url(&format!("Patient/{id}?_format=json")))
        .header("Accept", FHIR_XML)
        .send()
        .await
        .expect("get");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with(FHIR_JSON)
    );
}

#[tokio::test]
async fn pretty_and_accept_variants() {
    let s = start().await;
    let created = s.create(patient("p")).await;
    let id = created["id"].as_str().expect("id");
    let compact = s
        .get(&format!("Patient/{id}"))
        .await
        .text()
        .await
        .expect("text");
    assert!(!compact.contains('\n'));
    let pretty = s
        .get(&format!("Patient/{id}?_pretty=true"))
        .await
        .text()
        .await
        .expect("text");
    assert!(pretty.contains("\n  \"id\""));
    for accept in [
        "application/json",
        "*/*",
        "text/html;q=0.9, application/fhir+json",
        "application/fhir+json; fhirVersion=4.0",
    ] {
        let res = s
            .client
            .get(s.url(&format!("Patient/{id}")))
            .header("Accept", accept)
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), StatusCode::OK, "{accept}");
    }
    let res = s
        .client
        .get(s.url(&format!("Patient/{id}")))
        .header("Accept", "text/plain")
        .send()
        .await
        .expect("get");
    outcome(res, StatusCode::NOT_ACCEPTABLE).await;
    outcome(
        s.get(&format!("Patient/{id}?_format=csv")).await,
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
}

#[tokio::test]
async fn unsupported_content_types() {
    let s = start().await;
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let res = s
            .client
            .post(s.url("Patient"))
            .header("Content-Type", ct)
            .body(patient("1").to_string())
            .send()
            .await
            .expect("post");
        outcome(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    let res = s
        .client
        .post(s.url("Patient"))
        .body(patient("1").to_string())
        .send()
        .await
        .expect("post");
    outcome(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn errors_follow_the_requested_format() {
    let s = start().await;
    let res = s
        .client
        .get(s.url("Patient/none"))
        .header("Accept", FHIR_XML)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let text = res.text().await.expect("text");
    assert!(
        text.contains("<OperationOutcome xmlns=\"http://hl7.org/fhir\">"),
        "{text}"
    );
}
