//! The Patient compartment as R4 defines it (`fhir_mapping::compartment_table`), by every
//! parameter it names: a Patient export, `$everything` and a patient's token reach the
//! same resources, another patient's stay out.

use std::collections::BTreeMap;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::export::{files, ids, kick_off, manifest};
use crate::support::*;

/// One patient's records of the types the compartment used to leave out, each placed
/// in it by a different parameter.
struct Records {
    patient: String,
    /// `(type, id)` of each resource of the patient's compartment but the Patient.
    of_patient: Vec<(&'static str, String)>,
}

async fn records(s: &TestServer, mrn: &str, therapist: &str) -> Records {
    let patient = id_of(&s.create(patient(mrn)).await);
    let me = json!({"reference": format!("Patient/{patient}")});
    let them = json!({"reference": format!("Practitioner/{therapist}")});
    let code = json!({"coding": [{"system": "http://loinc.org", "code": "72514-3"}]});
    let mut of_patient = Vec::new();
    let mut add = |t: &'static str, v: &Value| of_patient.push((t, id_of(v)));
    add(
        "Flag",
        &s.create(json!({"resourceType": "Flag", "status": "active",
            "code": {"text": "Falls risk"}, "subject": me}))
            .await,
    );
    add(
        "QuestionnaireResponse",
        &s.create(
            json!({"resourceType": "QuestionnaireResponse", "status": "completed",
            "subject": me, "author": them}),
        )
        .await,
    );
    add(
        "Consent",
        &s.create(json!({"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "patient": me}))
            .await,
    );
    // from the therapist to the patient: in the compartment by `recipient`
    add(
        "Communication",
        &s.create(
            json!({"resourceType": "Communication", "status": "completed",
            "sender": them, "recipient": [me], "payload": [{"contentString": "Keep going"}]}),
        )
        .await,
    );
    // measured by the patient, about no one: in the compartment by `performer` only
    let performed = s
        .create(
            json!({"resourceType": "Observation", "status": "final", "code": code,
            "performer": [me], "valueInteger": 4}),
        )
        .await;
    add("Observation", &performed);
    // a Provenance whose target is the patient (and one of its records)
    add(
        "Provenance",
        &s.create(json!({"resourceType": "Provenance",
            "target": [{"reference": format!("Observation/{}", id_of(&performed))}, me],
            "recorded": "2026-03-02T10:00:00Z", "agent": [{"who": them}]}))
            .await,
    );
    // another Patient record that links to this one
    let mut linked = crate::support::patient(&format!("{mrn}-old"));
    linked["link"] = json!([{"other": me, "type": "seealso"}]);
    add("Patient", &s.create(linked).await);
    Records {
        patient,
        of_patient,
    }
}

fn by_type(of: &[(&'static str, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (t, id) in of {
        out.entry(t.to_string()).or_default().push(id.clone());
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

async fn exported(s: &TestServer, path: &str) -> BTreeMap<String, Vec<String>> {
    let got = files(
        &s.client,
        &manifest(&s.client, &kick_off(&s.client, s, path).await).await,
    )
    .await;
    got.iter()
        .map(|(t, resources)| (t.clone(), ids(Some(resources))))
        .collect()
}

/// Every match of `$everything`, through all its pages, as `(type, id)`.
async fn everything(client: &Client, s: &TestServer, patient: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut next = Some(s.url(&format!("Patient/{patient}/$everything?_count=4")));
    while let Some(url) = next {
        let res = client.get(&url).send().await.expect("page");
        assert_eq!(res.status(), StatusCode::OK);
        let bundle = json(res).await;
        for e in bundle["entry"].as_array().into_iter().flatten() {
            if e["search"]["mode"] == "match" {
                let r = &e["resource"];
                seen.push((
                    r["resourceType"].as_str().unwrap_or_default().to_string(),
                    id_of(r),
                ));
            }
        }
        next = bundle["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
    }
    seen
}

#[tokio::test]
async fn a_patient_export_and_everything_hold_the_whole_compartment() {
    let s = start().await;
    let therapist = id_of(&s.create(practitioner()).await);
    let a = records(&s, "a", &therapist).await;
    let b = records(&s, "b", &therapist).await;
    let mut want = by_type(&a.of_patient);
    want.entry("Patient".into())
        .or_default()
        .push(a.patient.clone());
    want.values_mut().for_each(|v| v.sort());

    // a Patient-level export of patient a: each type of a's compartment, none of b's
    let got = exported(
        &s,
        &format!("Patient/$export?patient=Patient/{}", a.patient),
    )
    .await;
    assert_eq!(got, want);

    // a Group of patient a: the same
    let group = id_of(
        &s.create(
            json!({"resourceType": "Group", "type": "person", "actual": true,
            "member": [{"entity": {"reference": format!("Patient/{}", a.patient)}}]}),
        )
        .await,
    );
    // the Group itself is in the compartment of its members (R4: Group by `member`)
    want.insert("Group".into(), vec![group.clone()]);
    let got = exported(&s, &format!("Group/{group}/$export")).await;
    assert_eq!(got, want);

    // every patient's: both, and nothing outside a compartment
    let got = exported(&s, "Patient/$export").await;
    for (t, id) in a.of_patient.iter().chain(&b.of_patient) {
        assert!(
            got.get(*t).is_some_and(|ids| ids.contains(id)),
            "{t}/{id} in {got:?}"
        );
    }
    assert!(!got.contains_key("Practitioner"));

    // $everything: the same resources, the Patient first
    let seen = everything(&s.client, &s, &a.patient).await;
    assert_eq!(seen[0], ("Patient".to_string(), a.patient.clone()));
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (t, id) in &seen {
        got.entry(t.clone()).or_default().push(id.clone());
    }
    got.values_mut().for_each(|v| v.sort());
    assert_eq!(got, want);

    // the patient's own app gets the same record but the Group, whose member list names
    // other patients: patient scopes do not open Groups
    let app = client_with_token(&token(&s.database_url, "patient/*.rs", Some(&a.patient)));
    let without_group: Vec<(String, String)> =
        seen.iter().filter(|(t, _)| t != "Group").cloned().collect();
    assert_eq!(everything(&app, &s, &a.patient).await, without_group);
    let res = app
        .get(s.url(&format!("Group/{group}")))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_patient_token_reaches_its_compartment_by_every_parameter() {
    let s = start().await;
    let therapist = id_of(&s.create(practitioner()).await);
    let a = records(&s, "a", &therapist).await;
    let b = records(&s, "b", &therapist).await;
    let app = client_with_token(&token(&s.database_url, "patient/*.cruds", Some(&a.patient)));
    let get = |path: String| {
        let app = app.clone();
        let url = s.url(&path);
        async move { app.get(url).send().await.expect("GET") }
    };
    for (t, id) in &a.of_patient {
        assert_eq!(
            get(format!("{t}/{id}")).await.status(),
            StatusCode::OK,
            "{t}"
        );
    }
    for (t, id) in &b.of_patient {
        outcome(get(format!("{t}/{id}")).await, StatusCode::NOT_FOUND).await;
    }
    // searches hold its own only
    for t in [
        "Communication",
        "QuestionnaireResponse",
        "Flag",
        "Consent",
        "Provenance",
        "Observation",
        "Patient",
    ] {
        let bundle = json(get(t.to_string()).await).await;
        let mut got: Vec<String> = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| id_of(&e["resource"]))
            .collect();
        got.sort();
        let mut want: Vec<String> = a
            .of_patient
            .iter()
            .filter(|(x, _)| *x == t)
            .map(|(_, id)| id.clone())
            .collect();
        if t == "Patient" {
            want.push(a.patient.clone());
        }
        want.sort();
        assert_eq!(got, want, "{t}");
    }
    // the new parameters search as well
    let bundle = json(get(format!("Communication?recipient=Patient/{}", a.patient)).await).await;
    assert_eq!(bundle["total"], 1, "{bundle}");

    // writes stay in the compartment, by any of its parameters
    let to = |p: &str| {
        json!({"resourceType": "Communication", "status": "completed",
            "sender": {"reference": format!("Patient/{p}")}})
    };
    let send = |body: Value| {
        let app = app.clone();
        let url = s.url(body["resourceType"].as_str().unwrap_or_default());
        async move {
            app.post(url)
                .header("Content-Type", FHIR_JSON)
                .body(body.to_string())
                .send()
                .await
                .expect("POST")
        }
    };
    assert_eq!(send(to(&a.patient)).await.status(), StatusCode::CREATED);
    outcome(send(to(&b.patient)).await, StatusCode::FORBIDDEN).await;
    // a type outside the compartment (R4 has Device in no patient's) stays closed
    let device = json!({"resourceType": "Device",
        "patient": {"reference": format!("Patient/{}", a.patient)}});
    outcome(send(device).await, StatusCode::FORBIDDEN).await;
    outcome(get("Device".into()).await, StatusCode::FORBIDDEN).await;
    // a shared type is read, not written
    assert_eq!(
        get(format!("Practitioner/{therapist}")).await.status(),
        StatusCode::OK
    );
}
