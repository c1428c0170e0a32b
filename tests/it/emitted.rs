//! The whole therapist flow through the REST API, keeping every FHIR resource the server
//! answers with. With `HEP_EMIT_DIR` set, they are written there, one JSON file each,
//! for the independent validators that `.ci/run` runs over them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

struct Emitted {
    all: Vec<(String, Value)>,
}

impl Emitted {
    /// Keeps a FHIR JSON answer (any status) and returns it.
    async fn keep(&mut self, what: &str, res: reqwest::Response, status: StatusCode) -> Value {
        assert_eq!(res.status(), status, "{what}");
        let body: Value = res.json().await.expect("FHIR JSON");
        assert!(body["resourceType"].is_string(), "{what}: {body}");
        self.all.push((what.to_string(), body.clone()));
        body
    }
}

#[tokio::test]
async fn every_resource_of_the_therapist_flow() {
    let s = start().await;
    let mut e = Emitted { all: Vec::new() };

    // what the server says about itself
    e.keep("capability", s.get("metadata").await, StatusCode::OK)
        .await;
    for search in [
        "StructureDefinition",
        "CodeSystem",
        "OperationDefinition",
        "ActivityDefinition?_count=100",
        "PlanDefinition",
    ] {
        let bundle = e.keep(search, s.get(search).await, StatusCode::OK).await;
        assert!(
            bundle["entry"].as_array().is_some_and(|a| !a.is_empty()),
            "{search}"
        );
    }

    // a referral pushed by an EHR: as a transaction, accepted by the clinic, and again as
    // a referral message
    e.keep(
        "clinic",
        s.post_json("Organization", &clinic_organization()).await,
        StatusCode::CREATED,
    )
    .await;
    let res = s
        .client
        .post(s.url(""))
        .header("Content-Type", FHIR_JSON)
        .header("Prefer", "return=representation")
        .body(referral().to_string())
        .send()
        .await
        .expect("transaction");
    let answer = e.keep("referral transaction", res, StatusCode::OK).await;
    let mut task = answer["entry"][6]["resource"].clone();
    task["status"] = json!("accepted");
    let task_url = format!("Task/{}", task["id"].as_str().expect("id"));
    e.keep(
        "referral accepted",
        s.put_json(&task_url, &task).await,
        StatusCode::OK,
    )
    .await;
    e.keep(
        "referral message",
        s.post_json("$process-message", &referral_message("emit-1"))
            .await,
        StatusCode::OK,
    )
    .await;

    // the people
    let mut p = patient("emit1");
    p["name"] = json!([{"use": "official", "family": "Rivera", "given": ["Sam"]}]);
    let p = e
        .keep(
            "patient",
            s.post_json("Patient", &p).await,
            StatusCode::CREATED,
        )
        .await;
    let pid = p["id"].as_str().expect("id").to_string();
    let t = e
        .keep(
            "practitioner",
            s.post_json("Practitioner", &practitioner()).await,
            StatusCode::CREATED,
        )
        .await;
    let tid = t["id"].as_str().expect("id").to_string();

    // a template applied for the patient, one exercise added, doses tailored, activated
    let plan = e
        .keep(
            "apply template",
            s.get(&format!("PlanDefinition/low-back-pain/$apply?subject=Patient/{pid}&practitioner=Practitioner/{tid}")).await,
            StatusCode::CREATED,
        )
        .await;
    let id = plan["id"].as_str().expect("id").to_string();
    let extra = e
        .keep(
            "apply exercise",
            s.get(&format!("ActivityDefinition/bridge/$apply?subject=Patient/{pid}&practitioner=Practitioner/{tid}")).await,
            StatusCode::CREATED,
        )
        .await;
    let mut refs: Vec<String> = plan["activity"]
        .as_array()
        .expect("activities")
        .iter()
        .filter_map(|a| a["reference"]["reference"].as_str().map(str::to_string))
        .collect();
    refs.push(format!(
        "ServiceRequest/{}",
        extra["id"].as_str().expect("id")
    ));
    for (i, r) in refs.iter().enumerate() {
        let mut rx = json(s.get(r).await).await;
        if i == 0 {
            rx["extension"][0]["extension"][0]["valuePositiveInt"] = json!(3);
        }
        rx["status"] = json!("active");
        e.keep(r, s.put_json(r, &rx).await, StatusCode::OK).await;
    }
    let mut active = json(s.get(&format!("CarePlan/{id}")).await).await;
    active["status"] = json!("active");
    active["activity"] = refs
        .iter()
        .map(|r| json!({"reference": {"reference": r}}))
        .collect();
    e.keep(
        "activate",
        s.put_json(&format!("CarePlan/{id}"), &active).await,
        StatusCode::OK,
    )
    .await;

    // later: a new dose replaces the first prescription, and the program points to it
    let old = json(s.get(&refs[0]).await).await;
    let mut revoked = old.clone();
    revoked["status"] = json!("revoked");
    e.keep(
        "revoke",
        s.put_json(&refs[0], &revoked).await,
        StatusCode::OK,
    )
    .await;
    let mut replacement = old.clone();
    for k in ["id", "meta", "text", "patientInstruction"] {
        replacement.as_object_mut().map(|o| o.remove(k));
    }
    replacement["meta"] = json!({"profile": old["meta"]["profile"]});
    replacement["replaces"] = json!([{"reference": refs[0]}]);
    replacement["extension"][0]["extension"][0]["valuePositiveInt"] = json!(4);
    let new = e
        .keep(
            "replacement",
            s.post_json("ServiceRequest", &replacement).await,
            StatusCode::CREATED,
        )
        .await;
    let mut changed = json(s.get(&format!("CarePlan/{id}")).await).await;
    changed["activity"][0]["reference"]["reference"] = json!(format!(
        "ServiceRequest/{}",
        new["id"].as_str().expect("id")
    ));
    e.keep(
        "change program",
        s.put_json(&format!("CarePlan/{id}"), &changed).await,
        StatusCode::OK,
    )
    .await;
    let history = e
        .keep(
            "program history",
            s.get(&format!("CarePlan/{id}/_history")).await,
            StatusCode::OK,
        )
        .await;
    assert_eq!(history["entry"].as_array().map(Vec::len), Some(3));
    e.keep(
        "system history",
        s.get("_history?_count=50").await,
        StatusCode::OK,
    )
    .await;
    e.keep(
        "search",
        s.get(&format!("CarePlan?_id={id}")).await,
        StatusCode::OK,
    )
    .await;

    // media, and the errors a client meets
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde".to_vec();
    let res = s
        .client
        .post(s.url("Binary"))
        .header("Content-Type", "image/png")
        .body(png)
        .send()
        .await
        .expect("POST");
    e.keep("binary", res, StatusCode::CREATED).await;
    e.keep(
        "not found",
        s.get("CarePlan/none").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    e.keep(
        "parse error",
        s.post_raw("Patient", FHIR_JSON, "{\"resourceType\": \"Patient\",")
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let mut bad = replacement.clone();
    bad["extension"][0]["extension"][0]["valuePositiveInt"] = json!(300);
    bad["subject"] = json!({"display": "nobody"});
    e.keep(
        "profile errors",
        s.post_json("ServiceRequest", &bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // outcome measures, messages and monitoring: the starter Questionnaires, a measure
    // and a monitoring episode added to the program, its due Task, the patient's answer,
    // the score, $outcomes and $rtm, a message
    e.keep(
        "questionnaires",
        s.get("Questionnaire").await,
        StatusCode::OK,
    )
    .await;
    let mut measured = json(s.get(&format!("CarePlan/{id}")).await).await;
    if let Some(acts) = measured["activity"].as_array_mut() {
        acts.push(json!({"detail": {"kind": "Task", "status": "scheduled",
            "instantiatesCanonical": [format!("{BASE}/Questionnaire/nprs")],
            "scheduledTiming": {"repeat": {"frequency": 1, "period": 2, "periodUnit": "wk"}}}}));
    }
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    measured["extension"] = json!([{"url": format!("{BASE}/StructureDefinition/rtm-episode"),
        "valuePeriod": {"start": today}}]);
    e.keep(
        "assign a measure",
        s.put_json(&format!("CarePlan/{id}"), &measured).await,
        StatusCode::OK,
    )
    .await;
    let due = e
        .keep(
            "due measures",
            s.get(&format!(
                "Task?patient=Patient/{pid}&code={BASE}/CodeSystem/outcome-measure|answer-measure"
            ))
            .await,
            StatusCode::OK,
        )
        .await;
    assert!(
        due["entry"].as_array().is_some_and(|a| !a.is_empty()),
        "{due}"
    );
    let response = e
        .keep(
            "measure answered",
            s.post_json(
                "QuestionnaireResponse",
                &json!({"resourceType": "QuestionnaireResponse", "status": "completed",
                    "questionnaire": format!("{BASE}/Questionnaire/nprs|1.0.0"),
                    "basedOn": [{"reference": format!("CarePlan/{id}")}],
                    "subject": {"reference": format!("Patient/{pid}")},
                    "authored": jiff::Timestamp::now().to_string(),
                    "item": [{"linkId": "pain", "answer": [{"valueInteger": 5}]}]}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    e.keep(
        "score",
        s.get(&format!(
            "Observation?derived-from=QuestionnaireResponse/{}",
            response["id"].as_str().expect("id")
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    e.keep(
        "answered measure",
        s.get(&format!(
            "Task?patient=Patient/{pid}&code={BASE}/CodeSystem/outcome-measure|answer-measure&status=completed"
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    e.keep(
        "outcomes",
        s.get(&format!("CarePlan/{id}/$outcomes")).await,
        StatusCode::OK,
    )
    .await;
    e.keep(
        "message",
        s.post_json(
            "Communication",
            &json!({"resourceType": "Communication", "status": "completed",
                "subject": {"reference": format!("Patient/{pid}")},
                "sender": {"reference": format!("Practitioner/{tid}")},
                "recipient": [{"reference": format!("Patient/{pid}")}],
                "sent": jiff::Timestamp::now().to_string(),
                "payload": [{"contentString": "Well done this week"}]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    e.keep(
        "monitoring periods",
        s.get(&format!("Patient/{pid}/$rtm")).await,
        StatusCode::OK,
    )
    .await;

    if let Ok(dir) = std::env::var("HEP_EMIT_DIR") {
        std::fs::create_dir_all(&dir).expect("emit dir");
        for (i, (what, body)) in e.all.iter().enumerate() {
            let name: String = what
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let path = std::path::Path::new(&dir).join(format!("{i:03}-{name}.json"));
            std::fs::write(path, serde_json::to_vec_pretty(body).expect("json")).expect("write");
        }
    }
}
