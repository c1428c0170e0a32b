//! Bulk Data export (`$export` of the clinic, of all patients, of a Group) through its
//! whole asynchronous flow, and `Patient/$everything`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api::clock::{Clock, ManualClock};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

fn female(mrn: &str) -> Value {
    let mut p = patient(mrn);
    p["gender"] = json!("female");
    p
}

/// Sends a kick-off (GET, `Prefer: respond-async`) and returns the answer as it is.
pub(crate) async fn send_kick_off(
    client: &Client,
    s: &TestServer,
    path: &str,
) -> reqwest::Response {
    client
        .get(s.url(path))
        .header("Prefer", "respond-async")
        .header("Accept", "application/fhir+json")
        .send()
        .await
        .expect("kick-off")
}

/// Sends a kick-off and returns the status URL.
pub(crate) async fn kick_off(client: &Client, s: &TestServer, path: &str) -> String {
    let res = send_kick_off(client, s, path).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "{path}");
    status_url(&res)
}

/// Sends a kick-off as POST with a `Parameters` body and returns the status URL.
async fn post_kick_off(s: &TestServer, path: &str, parameters: &Value) -> String {
    let res = s
        .client
        .post(s.url(path))
        .header("Prefer", "respond-async")
        .header("Content-Type", FHIR_JSON)
        .body(parameters.to_string())
        .send()
        .await
        .expect("kick-off");
    assert_eq!(res.status(), StatusCode::ACCEPTED, "{path}");
    status_url(&res)
}

/// The status URL of an accepted kick-off.
fn status_url(res: &reqwest::Response) -> String {
    res.headers()
        .get("content-location")
        .and_then(|v| v.to_str().ok())
        .expect("Content-Location")
        .to_string()
}

/// Polls the status URL until the manifest comes.
pub(crate) async fn manifest(client: &Client, status_url: &str) -> Value {
    for _ in 0..1200 {
        let res = client.get(status_url).send().await.expect("status");
        match res.status() {
            StatusCode::ACCEPTED => {
                assert!(res.headers().contains_key("x-progress"));
                assert!(res.headers().contains_key("retry-after"));
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            StatusCode::OK => return res.json().await.expect("manifest"),
            other => panic!("status {other}: {}", res.text().await.unwrap_or_default()),
        }
    }
    panic!("the export did not finish");
}

/// The resources of every output file, by type (and written for the validators when
/// `HEP_EMIT_DIR` is set).
pub(crate) async fn files(client: &Client, manifest: &Value) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for f in manifest["output"].as_array().expect("output") {
        let res = client
            .get(f["url"].as_str().expect("url"))
            .send()
            .await
            .expect("file");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["content-type"].to_str().expect("type"),
            "application/fhir+ndjson"
        );
        let text = res.text().await.expect("body");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one resource per line"))
            .collect();
        assert_eq!(lines.len() as u64, f["count"].as_u64().expect("count"));
        let t = f["type"].as_str().expect("type");
        for r in &lines {
            assert_eq!(r["resourceType"], t);
        }
        if let Ok(dir) = std::env::var("HEP_EMIT_DIR") {
            std::fs::create_dir_all(&dir).expect("emit dir");
            for r in &lines {
                let name = format!("export-{t}-{}.json", id_of(r));
                std::fs::write(std::path::Path::new(&dir).join(name), r.to_string()).expect("emit");
            }
        }
        out.entry(t.to_string()).or_default().extend(lines);
    }
    out
}

pub(crate) fn ids(resources: Option<&Vec<Value>>) -> Vec<String> {
    let mut v: Vec<String> = resources.into_iter().flatten().map(id_of).collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_clinic_exports_its_records_asynchronously() {
    let s = start().await;
    let a = id_of(&s.create(female("a")).await);
    let b = id_of(&s.create(patient("b")).await);
    let obs_a = id_of(&s.create(observation(&a, PAIN)).await);
    let obs_b = id_of(&s.create(observation(&b, "8867-4")).await);
    let deleted = id_of(&s.create(patient("gone")).await);
    assert!(
        s.client
            .delete(s.url(&format!("Patient/{deleted}")))
            .send()
            .await
            .expect("delete")
            .status()
            .is_success()
    );

    // the kick-off needs `Prefer: respond-async`, and known parameters
    let res = s.get("$export").await;
    outcome(res, StatusCode::BAD_REQUEST).await;
    let res = send_kick_off(&s.client, &s, "$export?_outputFormat=text/csv").await;
    outcome(res, StatusCode::BAD_REQUEST).await;
    let res = send_kick_off(&s.client, &s, "$export?_elements=id").await;
    let issue = outcome(res, StatusCode::BAD_REQUEST).await;
    assert!(
        issue["diagnostics"]
            .as_str()
            .unwrap_or("")
            .contains("_elements")
    );

    let status = kick_off(
        &s.client,
        &s,
        "$export?_type=Patient,Observation&_outputFormat=application/fhir%2Bndjson",
    )
    .await;
    assert!(status.starts_with(&s.base), "{status}");
    let m = manifest(&s.client, &status).await;
    assert_eq!(m["requiresAccessToken"], true);
    assert_eq!(
        m["request"],
        s.url("$export?_type=Patient,Observation&_outputFormat=application/fhir%2Bndjson")
    );
    assert!(
        m["transactionTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(m["error"], json!([]));
    let got = files(&s.client, &m).await;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        vec!["Observation", "Patient"]
    );
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(
        ids(got.get("Patient")),
        want,
        "the deleted patient is not exported"
    );
    let mut want = vec![obs_a.clone(), obs_b.clone()];
    want.sort();
    assert_eq!(ids(got.get("Observation")), want);
    // each resource as stored, with its meta
    assert!(got["Patient"].iter().all(|p| p["meta"]["versionId"] == "1"));

    // the files need the token, and belong to the client that kicked the export off
    let url = m["output"][0]["url"].as_str().expect("url").to_string();
    assert_eq!(
        Client::new().get(&url).send().await.expect("file").status(),
        StatusCode::UNAUTHORIZED
    );
    let other = other_client(&s, "system/*.rs");
    for u in [&url, &status] {
        let res = other.get(u).send().await.expect("other client");
        outcome(res, StatusCode::NOT_FOUND).await;
    }
    let res = other.delete(&status).send().await.expect("other client");
    outcome(res, StatusCode::NOT_FOUND).await;
    // no file outside the manifest is served
    let res = s
        .client
        .get(format!("{status}/..%2F..%2Ftest.db"))
        .send()
        .await
        .expect("file");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // without `_type`: every type the token reads, here the library and definitions too
    let narrow = client_with_token(&token(&s.database_url, "system/Observation.rs", None));
    let m = manifest(&narrow, &kick_off(&narrow, &s, "$export").await).await;
    let types: Vec<&str> = m["output"]
        .as_array()
        .expect("output")
        .iter()
        .filter_map(|f| f["type"].as_str())
        .collect();
    assert_eq!(types, vec!["Observation"]);
    // a type the token does not read is refused
    let res = send_kick_off(&narrow, &s, "$export?_type=Patient").await;
    outcome(res, StatusCode::FORBIDDEN).await;
    // a patient's app exports nothing
    let app = client_with_token(&token(&s.database_url, "patient/*.rs", Some(&a)));
    let res = send_kick_off(&app, &s, "$export").await;
    outcome(res, StatusCode::FORBIDDEN).await;

    // the client removes a finished export: its status and files are gone
    let res = s.client.delete(&status).send().await.expect("delete");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let job = status.rsplit('/').next().expect("job id").to_string();
    assert!(!s.export_dir.join(&job).exists());
    outcome(
        s.client.get(&status).send().await.expect("status"),
        StatusCode::NOT_FOUND,
    )
    .await;
    outcome(
        s.client.get(&url).send().await.expect("file"),
        StatusCode::NOT_FOUND,
    )
    .await;
}

/// A client registered under another name in the same clinic.
fn other_client(s: &TestServer, scope: &str) -> Client {
    let db = api::db::Db::open(&s.database_url, 1).expect("db");
    let keys = db
        .write(api::auth::tokens::TokenKeys::of_database)
        .expect("keys");
    let now = jiff::Timestamp::now().as_second();
    let token = keys
        .issue(&api::auth::tokens::Claims {
            iss: api::auth::tokens::ISSUER.into(),
            aud: api::auth::tokens::ISSUER.into(),
            sub: "another-client".into(),
            iat: now,
            exp: now + 3600,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: scope.into(),
            tenant: "default".into(),
            patient: None,
            fhir_user: None,
            sid: None,
        })
        .expect("token");
    client_with_token(&token)
}

#[tokio::test]
async fn since_type_filters_and_lenient_handling() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z")));
    let s = start_with(|_| {}, clock.clone()).await;
    let old = id_of(&s.create(female("old")).await);
    clock.set(at("2026-03-05T12:00:00Z"));
    let new_f = id_of(&s.create(female("new-f")).await);
    let new_m = id_of(&s.create(patient("new-m")).await);
    // an update moves a resource after `_since` too
    let mut again = json(s.get(&format!("Patient/{old}")).await).await;
    clock.set(at("2026-03-06T12:00:00Z"));
    again["active"] = json!(true);
    assert_eq!(
        s.put_json(&format!("Patient/{old}"), &again).await.status(),
        StatusCode::OK
    );

    let m = manifest(
        &s.client,
        &kick_off(
            &s.client,
            &s,
            "$export?_type=Patient&_since=2026-03-05T12:00:00.5Z",
        )
        .await,
    )
    .await;
    let got = files(&s.client, &m).await;
    let mut want = vec![old.clone()];
    want.sort();
    assert_eq!(ids(got.get("Patient")), want);
    let m = manifest(
        &s.client,
        &kick_off(
            &s.client,
            &s,
            "$export?_type=Patient&_since=2026-03-04T00:00:00Z",
        )
        .await,
    )
    .await;
    let got = files(&s.client, &m).await;
    let mut want = vec![old.clone(), new_f.clone(), new_m.clone()];
    want.sort();
    assert_eq!(ids(got.get("Patient")), want);
    // transactionTime: the clock, less the commit lag of the README's polling rule
    assert_eq!(m["transactionTime"], "2026-03-06T11:59:55.000000Z");

    // `_typeFilter`: a resource matches one of the type's queries (OR of values inside)
    let path = "$export?_type=Patient,Observation&_typeFilter=Patient%3Fgender%3Dfemale%26identifier%3Durn:test:mrn%7Cnew-f,Patient%3Fidentifier%3Durn:test:mrn%7Cold%2Curn:test:mrn%7Cnew-m";
    let m = manifest(&s.client, &kick_off(&s.client, &s, path).await).await;
    let got = files(&s.client, &m).await;
    let mut want = vec![old.clone(), new_f.clone(), new_m.clone()];
    want.sort();
    assert_eq!(ids(got.get("Patient")), want);
    let path = "$export?_type=Patient&_typeFilter=Patient%3Fgender%3Dfemale";
    let m = manifest(&s.client, &kick_off(&s.client, &s, path).await).await;
    let got = files(&s.client, &m).await;
    let mut want = vec![old.clone(), new_f.clone()];
    want.sort();
    assert_eq!(ids(got.get("Patient")), want);

    // an unsupported filter: 400, or, lenient, ignored and said so in the error files
    let path = "$export?_type=Patient&_typeFilter=Patient%3Fbirthplace%3Dx";
    let res = send_kick_off(&s.client, &s, path).await;
    outcome(res, StatusCode::BAD_REQUEST).await;
    let res = s
        .client
        .get(s.url(path))
        .header("Prefer", "respond-async, handling=lenient")
        .send()
        .await
        .expect("kick-off");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let status = status_url(&res);
    let m = manifest(&s.client, &status).await;
    assert_eq!(m["output"][0]["count"], 3);
    let err = &m["error"][0];
    assert_eq!(err["type"], "OperationOutcome");
    let text = s
        .client
        .get(err["url"].as_str().expect("url"))
        .send()
        .await
        .expect("errors")
        .text()
        .await
        .expect("text");
    let o: Value = serde_json::from_str(text.lines().next().expect("line")).expect("outcome");
    assert!(
        o["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or("")
            .contains("birthplace")
    );

    // POST with a Parameters body
    let status = post_kick_off(
        &s,
        "$export",
        &json!({"resourceType": "Parameters", "parameter": [
            {"name": "_type", "valueString": "Patient"},
            {"name": "_since", "valueInstant": "2026-03-05T13:00:00Z"}
        ]}),
    )
    .await;
    let got = files(&s.client, &manifest(&s.client, &status).await).await;
    assert_eq!(ids(got.get("Patient")), vec![old.clone()]);
}

#[tokio::test]
async fn patient_and_group_exports_hold_their_patients_compartments() {
    let s = start().await;
    let a = id_of(&s.create(patient("a")).await);
    let b = id_of(&s.create(patient("b")).await);
    let c = id_of(&s.create(patient("c")).await);
    let obs: Vec<String> = {
        let mut v = Vec::new();
        for p in [&a, &b, &c] {
            v.push(id_of(&s.create(observation(p, PAIN)).await));
        }
        v
    };
    let therapist = id_of(&s.create(practitioner()).await);
    let group = id_of(
        &s.create(json!({
            "resourceType": "Group",
            "type": "person",
            "actual": true,
            "name": "Patients of therapist Lee",
            "managingEntity": {"reference": format!("Practitioner/{therapist}")},
            "member": [
                {"entity": {"reference": format!("Patient/{a}")}},
                {"entity": {"reference": format!("Patient/{c}")}}
            ]
        }))
        .await,
    );

    let m = manifest(
        &s.client,
        &kick_off(&s.client, &s, &format!("Group/{group}/$export")).await,
    )
    .await;
    let got = files(&s.client, &m).await;
    let mut want = vec![a.clone(), c.clone()];
    want.sort();
    assert_eq!(ids(got.get("Patient")), want);
    let mut want = vec![obs[0].clone(), obs[2].clone()];
    want.sort();
    assert_eq!(ids(got.get("Observation")), want);
    assert!(!got.contains_key("Practitioner"), "not in a compartment");
    // with `patient` (POST): only those of the group's members
    let status = post_kick_off(
        &s,
        &format!("Group/{group}/$export"),
        &json!({"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": {"reference": format!("Patient/{c}")}},
            {"name": "patient", "valueReference": {"reference": format!("Patient/{b}")}}
        ]}),
    )
    .await;
    let got = files(&s.client, &manifest(&s.client, &status).await).await;
    assert_eq!(ids(got.get("Patient")), vec![c.clone()]);
    assert_eq!(ids(got.get("Observation")), vec![obs[2].clone()]);

    // the group changes: the next export follows it
    let mut g = json(s.get(&format!("Group/{group}")).await).await;
    g["member"] = json!([{"entity": {"reference": format!("Patient/{b}")}}]);
    assert_eq!(
        s.put_json(&format!("Group/{group}"), &g).await.status(),
        StatusCode::OK
    );
    let m = manifest(
        &s.client,
        &kick_off(
            &s.client,
            &s,
            &format!("Group/{group}/$export?_type=Observation"),
        )
        .await,
    )
    .await;
    let got = files(&s.client, &m).await;
    assert_eq!(ids(got.get("Observation")), vec![obs[1].clone()]);

    // all patients
    let m = manifest(&s.client, &kick_off(&s.client, &s, "Patient/$export").await).await;
    let got = files(&s.client, &m).await;
    assert_eq!(ids(got.get("Observation")), {
        let mut o = obs.clone();
        o.sort();
        o
    });
    assert_eq!(got.get("Patient").map(Vec::len), Some(3));
    assert!(!got.contains_key("Practitioner") && !got.contains_key("ActivityDefinition"));
    // a type outside the compartment is refused at Patient level
    let res = send_kick_off(&s.client, &s, "Patient/$export?_type=Practitioner").await;
    outcome(res, StatusCode::BAD_REQUEST).await;
    // an unknown Group is a 404
    let res = send_kick_off(&s.client, &s, "Group/nope/$export").await;
    outcome(res, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn an_export_survives_a_restart_and_can_be_cancelled() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z")));
    // one export page a second: the export is still running when the server stops
    let first = start_with(|c| c.export_pause_ms = 1000, clock.clone()).await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(id_of(&first.create(patient(&format!("r{i}"))).await));
    }
    made.sort();
    let status = kick_off(
        &first.client,
        &first,
        "$export?_type=Patient,Observation,Group",
    )
    .await;
    // the job is claimed, and its first page read
    let job = status.rsplit('/').next().expect("job").to_string();
    for _ in 0..200 {
        if first.export_dir.join(&job).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let res = first.client.get(&status).send().await.expect("status");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    first.stop().await;
    // the stopped worker sees the stop after its pause
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // another process on the same database and files takes the job over once the
    // first one's claim has run out
    clock.set(at("2026-03-02T12:05:00Z"));
    let (url, dir) = (first.database_url.clone(), first.export_dir.clone());
    let second = start_with(
        move |c| {
            c.database_url = url;
            c.export_dir = dir.display().to_string();
        },
        clock.clone(),
    )
    .await;
    let status = status.replace(&first.base, &second.base);
    let m = manifest(&second.client, &status).await;
    let got = files(&second.client, &m).await;
    assert_eq!(ids(got.get("Patient")), made);
    // one set of files, of the second claim: the interrupted claim's are gone
    let attempts: Vec<String> = std::fs::read_dir(second.export_dir.join(&job))
        .expect("job dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(attempts, vec!["2".to_string()]);

    // a running export is cancelled: no manifest ever, the files are removed
    let slow = start_with(
        |c| c.export_pause_ms = 300,
        Arc::new(api::clock::SystemClock),
    )
    .await;
    slow.create(patient("s")).await;
    let status = kick_off(&slow.client, &slow, "$export").await;
    let job = status.rsplit('/').next().expect("job").to_string();
    for _ in 0..200 {
        if slow.export_dir.join(&job).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let res = slow.client.delete(&status).send().await.expect("cancel");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    outcome(
        slow.client.get(&status).send().await.expect("status"),
        StatusCode::NOT_FOUND,
    )
    .await;
    // the worker notices at its next page and leaves nothing behind
    for _ in 0..300 {
        if !slow.export_dir.join(&job).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!slow.export_dir.join(&job).exists());
    let _ = clock.now();
}

#[tokio::test]
async fn finished_exports_expire() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T12:00:00Z")));
    let s = start_with(|c| c.export_expiry_minutes = 60, clock.clone()).await;
    s.create(patient("e")).await;
    let status = kick_off(&s.client, &s, "$export?_type=Patient").await;
    let m = manifest(&s.client, &status).await;
    let url = m["output"][0]["url"].as_str().expect("url").to_string();
    assert_eq!(
        s.client.get(&url).send().await.expect("file").status(),
        StatusCode::OK
    );
    clock.set(at("2026-03-02T13:01:00Z"));
    outcome(
        s.client.get(&status).send().await.expect("status"),
        StatusCode::NOT_FOUND,
    )
    .await;
    outcome(
        s.client.get(&url).send().await.expect("file"),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_client_runs_a_bounded_number_of_exports_at_once() {
    let s = start_with(|c| c.export_workers = 0, Arc::new(api::clock::SystemClock)).await;
    for _ in 0..5 {
        kick_off(&s.client, &s, "$export?_type=Patient").await;
    }
    let res = send_kick_off(&s.client, &s, "$export?_type=Patient").await;
    assert!(res.headers().contains_key("retry-after"));
    outcome(res, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn everything_of_a_patient_in_pages() {
    let s = start().await;
    let a = id_of(&s.create(patient("a")).await);
    let b = id_of(&s.create(patient("b")).await);
    let lee = id_of(&s.create(practitioner()).await);
    let mut mine = Vec::new();
    for i in 0..7 {
        let mut o = observation(&a, PAIN);
        o["performer"] = json!([{"reference": format!("Practitioner/{lee}")}]);
        o["valueInteger"] = json!(i);
        mine.push(id_of(&s.create(o).await));
    }
    s.create(observation(&b, PAIN)).await;

    let mut seen: Vec<(String, String)> = Vec::new();
    let mut included = Vec::new();
    let mut next = Some(s.url(&format!("Patient/{a}/$everything?_count=3")));
    let mut pages = 0;
    while let Some(url) = next {
        let bundle = json(s.client.get(&url).send().await.expect("page")).await;
        assert_eq!(bundle["type"], "searchset");
        pages += 1;
        for e in bundle["entry"].as_array().into_iter().flatten() {
            let r = &e["resource"];
            let key = (
                r["resourceType"].as_str().unwrap_or("").to_string(),
                id_of(r),
            );
            match e["search"]["mode"].as_str() {
                Some("match") => seen.push(key),
                Some("include") => included.push(key),
                other => panic!("mode {other:?}"),
            }
        }
        next = bundle["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen[0], ("Patient".to_string(), a.clone()));
    let mut obs: Vec<String> = seen
        .iter()
        .filter(|(t, _)| t == "Observation")
        .map(|(_, i)| i.clone())
        .collect();
    obs.sort();
    mine.sort();
    assert_eq!(obs, mine, "every one of the patient's, none of another's");
    assert_eq!(seen.len(), 8, "no repeats");
    assert!(included.contains(&("Practitioner".to_string(), lee.clone())));

    // `_type` and `_since`
    let bundle = json(
        s.get(&format!(
            "Patient/{a}/$everything?_type=Patient&_since=2000-01-01T00:00:00Z"
        ))
        .await,
    )
    .await;
    assert_eq!(bundle["entry"].as_array().map(Vec::len), Some(1));
    // a patient's app reads its own, and nobody else's
    let app = client_with_token(&token(&s.database_url, "patient/*.rs", Some(&a)));
    let res = app
        .get(s.url(&format!("Patient/{a}/$everything")))
        .send()
        .await
        .expect("own");
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .get(s.url(&format!("Patient/{b}/$everything")))
        .send()
        .await
        .expect("other");
    outcome(res, StatusCode::NOT_FOUND).await;
}
