use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn capability_statement_describes_the_server() {
    let s = start().await;
    let cs = json(s.get("metadata").await).await;
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["kind"], "instance");
    assert_eq!(cs["implementation"]["url"], s.base.as_str());
    let formats: Vec<&str> = cs["format"]
        .as_array()
        .expect("format")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        formats.contains(&"application/fhir+json") && formats.contains(&"application/fhir+xml")
    );
    let resources = cs["rest"][0]["resource"].as_array().expect("resources");
    // every R4 type but Parameters, which R4 gives no RESTful endpoint
    assert_eq!(resources.len(), 145, "every storable R4 type");
    assert!(resources.iter().any(|r| r["type"] == "OperationOutcome"));
    assert!(!resources.iter().any(|r| r["type"] == "Parameters"));
    assert_eq!(cs["patchFormat"], json!(["application/json-patch+json"]));
    for r in resources {
        assert!(
            r["operation"]
                .as_array()
                .is_some_and(|ops| ops.iter().any(|o| o["name"] == "validate"
                    && o["definition"]
                        == "http://hl7.org/fhir/OperationDefinition/Resource-validate")),
            "$validate on {}",
            r["type"]
        );
    }
    let patient = resources
        .iter()
        .find(|r| r["type"] == "Patient")
        .expect("Patient");
    let params: Vec<&str> = patient["searchParam"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        params,
        [
            "_id",
            "_lastUpdated",
            "identifier",
            "birthdate",
            "gender",
            "name",
            "family",
            "given",
            "link"
        ]
    );
    // the parameters of the patient compartment, with their R4 definitions
    let communication = resources
        .iter()
        .find(|r| r["type"] == "Communication")
        .expect("Communication");
    let recipient = communication["searchParam"]
        .as_array()
        .expect("params")
        .iter()
        .find(|p| p["name"] == "recipient")
        .expect("recipient");
    assert_eq!(
        recipient["definition"],
        "http://hl7.org/fhir/SearchParameter/Communication-recipient"
    );
    assert_eq!(recipient["type"], "reference");
    let xml = s
        .get("metadata?_format=xml")
        .await
        .text()
        .await
        .expect("xml");
    assert!(xml.contains("<CapabilityStatement xmlns=\"http://hl7.org/fhir\">"));
}

/// Every interaction the statement claims is served (no 404/405 for its route).
#[tokio::test]
async fn every_claimed_interaction_is_served() {
    let s = start().await;
    let cs = json(s.get("metadata").await).await;
    let patient = cs["rest"][0]["resource"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "Patient"))
        .cloned()
        .expect("Patient");
    let created = s.create(super::support::patient("cap")).await;
    let id = created["id"].as_str().expect("id").to_string();
    let mut claimed: Vec<String> = patient["interaction"]
        .as_array()
        .expect("interactions")
        .iter()
        .filter_map(|i| i["code"].as_str().map(str::to_string))
        .collect();
    claimed.extend(
        cs["rest"][0]["interaction"]
            .as_array()
            .expect("system interactions")
            .iter()
            .filter_map(|i| i["code"].as_str().map(str::to_string)),
    );
    assert!(claimed.len() >= 9);
    for code in claimed {
        let status = match code.as_str() {
            "read" => s.get(&format!("Patient/{id}")).await.status(),
            "vread" => s.get(&format!("Patient/{id}/_history/1")).await.status(),
            "update" => s
                .put_json(&format!("Patient/{id}"), &created)
                .await
                .status(),
            "history-instance" => s.get(&format!("Patient/{id}/_history")).await.status(),
            "history-type" => s.get("Patient/_history").await.status(),
            "history-system" => s.get("_history").await.status(),
            "transaction" | "batch" => {
                let entry = post_entry(json!({"resourceType": "Basic", "code": {"text": "x"}}));
                s.post_json("", &bundle(&code, vec![entry])).await.status()
            }
            "create" => s
                .post_json("Patient", &json!({"resourceType": "Patient"}))
                .await
                .status(),
            "search-type" => s.get("Patient?_id=x").await.status(),
            "patch" => s
                .client
                .patch(s.url(&format!("Patient/{id}")))
                .header("Content-Type", "application/json-patch+json")
                .body(r#"[{"op": "add", "path": "/gender", "value": "unknown"}]"#)
                .send()
                .await
                .expect("patch")
                .status(),
            "delete" => s
                .client
                .delete(s.url("Patient/to-delete"))
                .send()
                .await
                .expect("delete")
                .status(),
            other => panic!("the statement claims `{other}`, which this test does not know"),
        };
        assert!(
            status.is_success() || (code == "delete" && status == StatusCode::NOT_FOUND),
            "{code} answered {status}"
        );
    }
}

/// The server reads "now" from its clock, never from the system directly.
#[tokio::test]
async fn the_clock_is_injected() {
    let at: jiff::Timestamp = "2031-05-06T07:08:09Z".parse().expect("instant");
    let clock = std::sync::Arc::new(api::clock::ManualClock::new(at));
    let s = start_with(|_| {}, clock.clone()).await;
    let cs = json(s.get("metadata").await).await;
    assert_eq!(cs["date"], "2031-05-06T07:08:09.000000Z");
    let p = s.create(super::support::patient("clock")).await;
    assert_eq!(p["meta"]["lastUpdated"], "2031-05-06T07:08:09.000000Z");
    clock.set("2031-05-07T00:00:00Z".parse().expect("instant"));
    let id = p["id"].as_str().expect("id");
    let updated = json(s.put_json(&format!("Patient/{id}"), &p).await).await;
    assert_eq!(
        updated["meta"]["lastUpdated"],
        "2031-05-07T00:00:00.000000Z"
    );
}
