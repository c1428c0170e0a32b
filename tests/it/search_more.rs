//! Search semantics beyond plain equality (R4 search.html): strings, token and reference
//! modifiers, chaining, every date prefix, sorting, cursor paging under writes,
//! `_include` / `_revinclude`, `_summary` / `_elements` and lenient handling.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn bundle(s: &TestServer, query: &str) -> Value {
    let res = s.get(query).await;
    assert_eq!(res.status(), StatusCode::OK, "{query}");
    res.json().await.expect("bundle")
}

/// The ids of the entries of a search, in the order returned.
async fn ids_in_order(s: &TestServer, query: &str) -> Vec<String> {
    entry_ids(&bundle(s, query).await, "match")
}

fn entry_ids(b: &Value, mode: &str) -> Vec<String> {
    b["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["search"]["mode"] == mode)
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn total(s: &TestServer, query: &str) -> i64 {
    bundle(s, query).await["total"].as_i64().expect("total")
}

fn person(family: &str, given: &str, mrn: &str) -> Value {
    json!({"resourceType": "Patient",
        "identifier": [{"system": "urn:test:mrn", "value": mrn}],
        "name": [{"family": family, "given": [given]}]})
}

async fn id_of(s: &TestServer, body: Value) -> String {
    s.create(body).await["id"].as_str().expect("id").to_string()
}

/// The link of a relation, as a path under the base.
fn link(b: &Value, relation: &str) -> Option<String> {
    b["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
        .and_then(|u| u.split_once("/fhir/").map(|(_, p)| p.to_string()))
}

#[tokio::test]
async fn strings_ignore_case_and_accents_unless_exact() {
    let s = start().await;
    let zoe = id_of(&s, person("Álvarez", "Zoë", "n1")).await;
    let zoe2 = id_of(&s, person("Alvarado", "Zoe", "n2")).await;
    let bob = id_of(&s, person("Smith", "Bob", "n3")).await;
    let mut both = vec![zoe.clone(), zoe2.clone()];
    both.sort();
    for (q, want) in [
        ("Patient?name=zoe", both.clone()),
        ("Patient?family=ALVAR", both.clone()),
        ("Patient?family=álvarez", vec![zoe.clone()]),
        ("Patient?family:exact=Álvarez", vec![zoe.clone()]),
        ("Patient?family:exact=Alvarez", vec![]),
        ("Patient?family:exact=Álvare", vec![]),
        ("Patient?name:contains=LVAR", both.clone()),
        ("Patient?name:contains=mit", vec![bob.clone()]),
        // a prefix, not a substring
        ("Patient?family=lvar", vec![]),
        ("Patient?given=Bo", vec![bob.clone()]),
        // `%` and `_` are characters, not patterns
        ("Patient?name=%25", vec![]),
        ("Patient?name:contains=_", vec![]),
    ] {
        let mut got = ids_in_order(&s, q).await;
        got.sort();
        assert_eq!(got, want, "{q}");
    }
    assert_eq!(total(&s, "Patient?name=zoe,bob").await, 3);
    assert_eq!(total(&s, "Patient?name=zoe&family=alvara").await, 1);
}

#[tokio::test]
async fn token_forms_and_modifiers() {
    let s = start().await;
    let mut a = person("A", "A", "t1");
    a["gender"] = json!("female");
    a["identifier"] = json!([{"value": "no-system"}, {"system": "urn:test:mrn", "value": "t1"}]);
    let a = id_of(&s, a).await;
    let mut b = person("B", "B", "t2");
    b["gender"] = json!("male");
    b["birthDate"] = json!("1961-03-14");
    let b = id_of(&s, b).await;
    let c = id_of(&s, person("C", "C", "t3")).await;
    let mut obs = observation(&a, PAIN);
    obs["code"]["text"] = json!("Pain severity");
    let o = id_of(&s, obs).await;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    for (q, want) in [
        ("Patient?identifier=|no-system", vec![a.clone()]),
        ("Patient?identifier=|t1", vec![]),
        (
            "Patient?identifier=urn:test:mrn|",
            sorted(vec![a.clone(), b.clone(), c.clone()]),
        ),
        (
            "Patient?gender:not=female",
            sorted(vec![b.clone(), c.clone()]),
        ),
        ("Patient?gender:not=female,male", vec![c.clone()]),
        ("Patient?gender:missing=true", vec![c.clone()]),
        (
            "Patient?gender:missing=false",
            sorted(vec![a.clone(), b.clone()]),
        ),
        ("Patient?birthdate:missing=false", vec![b.clone()]),
        ("Observation?code:text=pain", vec![o.clone()]),
        ("Observation?code:text=severity", vec![]),
        ("Observation?patient:missing=false", vec![o.clone()]),
    ] {
        let mut got = ids_in_order(&s, q).await;
        got.sort();
        assert_eq!(got, want, "{q}");
    }
    for q in [
        "Patient?gender:below=x",
        "Patient?gender:missing=maybe",
        "Patient?_id:missing=true",
        "Observation?code:text=",
    ] {
        outcome(s.get(q).await, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn chained_parameters_follow_one_reference() {
    let s = start().await;
    let a = id_of(&s, person("Rivera", "Sam", "c1")).await;
    let b = id_of(&s, person("Lee", "Jordan", "c2")).await;
    let oa = id_of(&s, observation(&a, PAIN)).await;
    let ob = id_of(&s, observation(&b, PAIN)).await;
    assert_eq!(
        ids_in_order(&s, "Observation?patient.identifier=urn:test:mrn|c1").await,
        std::slice::from_ref(&oa)
    );
    assert_eq!(
        ids_in_order(&s, "Observation?subject:Patient.name=jord").await,
        std::slice::from_ref(&ob)
    );
    assert_eq!(
        ids_in_order(&s, "Observation?patient.family:exact=Rivera&status=final").await,
        std::slice::from_ref(&oa)
    );
    assert_eq!(total(&s, "Observation?patient.name=nobody").await, 0);
    // a deleted patient no longer matches
    let res = s
        .client
        .delete(s.url(&format!("Patient/{a}")))
        .send()
        .await
        .expect("delete");
    assert!(res.status().is_success());
    assert_eq!(
        total(&s, "Observation?patient.identifier=urn:test:mrn|c1").await,
        0
    );
    for q in [
        // subject may be a Patient, a Group, ...: the type must be named
        "Observation?subject.name=x",
        "Observation?patient.organization.name=x",
        "Observation?patient.nickname=x",
    ] {
        outcome(s.get(q).await, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn every_date_prefix_at_the_edges_of_a_day() {
    let s = start().await;
    let mut p = person("D", "D", "d1");
    p["birthDate"] = json!("1961-03-14");
    id_of(&s, p).await;
    for q in [
        "Patient?birthdate=1961-03-14",
        "Patient?birthdate=1961-03",
        "Patient?birthdate=1961",
        "Patient?birthdate=le1961-03-14",
        "Patient?birthdate=ge1961-03-14",
        "Patient?birthdate=gt1961-03-13",
        "Patient?birthdate=lt1961-03-15",
        "Patient?birthdate=sa1961-03-13",
        "Patient?birthdate=eb1961-03-15",
        "Patient?birthdate=ne1961-03-15",
        "Patient?birthdate=ap1961-03-10",
        "Patient?birthdate=ge1961-03-14T00:00:00Z&birthdate=lt1961-03-14T00:00:01Z",
    ] {
        assert_eq!(total(&s, q).await, 1, "{q}");
    }
    for q in [
        "Patient?birthdate=1961-03-13",
        "Patient?birthdate=1961-03-15",
        "Patient?birthdate=lt1961-03-14",
        "Patient?birthdate=gt1961-03-14",
        "Patient?birthdate=sa1961-03-14",
        "Patient?birthdate=eb1961-03-14",
        "Patient?birthdate=ne1961-03-14",
        // within a day is narrower than the day
        "Patient?birthdate=1961-03-14T10:00:00Z",
        "Patient?birthdate=ap1950-01-01",
    ] {
        assert_eq!(total(&s, q).await, 0, "{q}");
    }
    // _lastUpdated takes every prefix too
    let now = bundle(&s, "Patient?_count=1").await["entry"][0]["resource"]["meta"]["lastUpdated"]
        .as_str()
        .expect("lastUpdated")
        .to_string();
    let day = &now[..10];
    assert_eq!(total(&s, &format!("Patient?_lastUpdated={day}")).await, 1);
    assert_eq!(total(&s, &format!("Patient?_lastUpdated=ne{day}")).await, 0);
    assert_eq!(total(&s, &format!("Patient?_lastUpdated=eb{day}")).await, 0);
    assert_eq!(total(&s, &format!("Patient?_lastUpdated=ap{day}")).await, 1);
}

#[tokio::test]
async fn sorted_pages_follow_cursors_both_ways_while_others_write() {
    let s = start().await;
    let families = ["Kim", "adams", "Baker", "zhou", "Évora", "Diaz"];
    let mut made = Vec::new();
    for (i, f) in families.iter().enumerate() {
        made.push((
            f.to_string(),
            id_of(&s, person(f, "X", &format!("p{i}"))).await,
        ));
    }
    let no_name = id_of(&s, json!({"resourceType": "Patient"})).await;
    // ascending by the normalized family name, the one without a name last
    let want: Vec<String> = ["adams", "Baker", "Diaz", "Évora", "Kim", "zhou"]
        .iter()
        .map(|f| {
            made.iter()
                .find(|(m, _)| m == f)
                .map(|(_, id)| id.clone())
                .unwrap_or_default()
        })
        .chain([no_name.clone()])
        .collect();
    assert_eq!(ids_in_order(&s, "Patient?_sort=family").await, want);
    let mut desc = want[..6].to_vec();
    desc.reverse();
    desc.push(no_name.clone());
    assert_eq!(ids_in_order(&s, "Patient?_sort=-family").await, desc);
    // newest first
    let mut newest: Vec<String> = made.iter().map(|(_, id)| id.clone()).collect();
    newest.push(no_name.clone());
    newest.reverse();
    assert_eq!(
        ids_in_order(&s, "Patient?_sort=-_lastUpdated,_id").await,
        newest
    );

    // pages of two, forward: a patient created and one deleted meanwhile do not make
    // the walk skip or repeat the others
    let first = bundle(&s, "Patient?_sort=family&_count=2").await;
    assert!(link(&first, "previous").is_none());
    let mut walked = entry_ids(&first, "match");
    let mut next = link(&first, "next");
    let mut pages = vec![first];
    id_of(&s, person("Aaron", "X", "late")).await;
    let gone = want[4].clone();
    let res = s
        .client
        .delete(s.url(&format!("Patient/{gone}")))
        .send()
        .await
        .expect("delete");
    assert!(res.status().is_success());
    while let Some(n) = next {
        let page = bundle(&s, &n).await;
        walked.extend(entry_ids(&page, "match"));
        next = link(&page, "next");
        pages.push(page);
    }
    let expected: Vec<String> = want.iter().filter(|id| **id != gone).cloned().collect();
    assert_eq!(walked, expected);
    // and back from the last page
    let last = pages.last().expect("page");
    let mut back = entry_ids(last, "match");
    let mut previous = link(last, "previous");
    while let Some(p) = previous {
        let page = bundle(&s, &p).await;
        let mut ids = entry_ids(&page, "match");
        ids.extend(back);
        back = ids;
        previous = link(&page, "previous");
    }
    let mut with_late = vec![
        bundle(&s, "Patient?identifier=urn:test:mrn|late").await["entry"][0]["resource"]["id"]
            .as_str()
            .expect("id")
            .to_string(),
    ];
    with_late.extend(expected);
    assert_eq!(
        back, with_late,
        "the walk back sees the patient created meanwhile"
    );
    for q in [
        "Patient?_sort=colour",
        "Patient?_sort=family&_sort=given",
        "Patient?_cursor=abc",
    ] {
        outcome(s.get(q).await, StatusCode::BAD_REQUEST).await;
    }
    // a cursor of another order is refused
    let n = link(&pages[0], "next").expect("next");
    let cursor = n
        .split("_cursor=")
        .nth(1)
        .expect("cursor")
        .split('&')
        .next()
        .unwrap_or_default();
    outcome(
        s.get(&format!("Patient?_cursor={cursor}")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn includes_follow_references_and_canonicals() {
    let s = start().await;
    let p = id_of(&s, person("Rivera", "Sam", "i1")).await;
    let ad_url = "https://clinic.example.org/fhir/ActivityDefinition/bridge";
    let ad = id_of(
        &s,
        json!({"resourceType": "ActivityDefinition", "url": ad_url, "status": "active", "name": "Bridge"}),
    )
    .await;
    let sr = |code: &str| {
        let mut sr = service_request(&p);
        sr["code"] = json!({"coding": [{"system": "http://snomed.info/sct", "code": code}]});
        sr["instantiatesCanonical"] = json!([ad_url]);
        sr
    };
    let sr1 = id_of(&s, sr("1")).await;
    let sr2 = id_of(&s, sr("2")).await;
    let mut plan = care_plan(&p);
    plan["activity"] = json!([{"reference": {"reference": format!("ServiceRequest/{sr1}")}},
                              {"reference": {"reference": format!("ServiceRequest/{sr2}")}}]);
    let cp = id_of(&s, plan).await;
    let mut task = task(&p);
    task["basedOn"] = json!([{"reference": format!("CarePlan/{cp}")}]);
    let t = id_of(&s, task).await;

    let b = bundle(
        &s,
        &format!("CarePlan?patient={p}&_include=CarePlan:activity-reference"),
    )
    .await;
    assert_eq!(entry_ids(&b, "match"), std::slice::from_ref(&cp));
    let mut inc = entry_ids(&b, "include");
    inc.sort();
    let mut want = vec![sr1.clone(), sr2.clone()];
    want.sort();
    assert_eq!(inc, want);
    assert_eq!(b["total"], 1, "included resources are not counted");
    assert!(
        b["entry"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["fullUrl"].is_string()))
    );

    // CarePlan -> ServiceRequest -> ActivityDefinition
    let b = bundle(
        &s,
        &format!(
            "CarePlan?_id={cp}&_include=CarePlan:activity-reference&_include:iterate=ServiceRequest:instantiates-canonical&_include=CarePlan:subject"
        ),
    )
    .await;
    let mut inc = entry_ids(&b, "include");
    inc.sort();
    let mut want = vec![sr1.clone(), sr2.clone(), ad.clone(), p.clone()];
    want.sort();
    assert_eq!(inc, want, "each once");
    // without :iterate, a second step is refused rather than silently not taken
    outcome(
        s.get(&format!("CarePlan?_id={cp}&_include=CarePlan:activity-reference&_include=ServiceRequest:instantiates-canonical")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    // reverse: the Tasks based on the program, and only those
    let b = bundle(&s, &format!("CarePlan?_id={cp}&_revinclude=Task:based-on")).await;
    assert_eq!(entry_ids(&b, "include"), std::slice::from_ref(&t));
    let b = bundle(
        &s,
        &format!("Patient?_id={p}&_revinclude=Observation:patient"),
    )
    .await;
    assert!(entry_ids(&b, "include").is_empty());
    let b = bundle(
        &s,
        &format!("Patient?_id={p}&_revinclude=ServiceRequest:patient"),
    )
    .await;
    assert_eq!(entry_ids(&b, "include").len(), 2);

    for q in [
        "CarePlan?_include=Task:based-on",
        "CarePlan?_include=CarePlan:status",
        "CarePlan?_include=CarePlan",
        "CarePlan?_include=CarePlan:patient:Organization",
        "CarePlan?_include=CarePlan:subject:Nothing",
        "CarePlan?_revinclude=Task:patient",
    ] {
        outcome(s.get(q).await, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn summary_elements_and_lenient_handling() {
    let s = start().await;
    let mut p = person("Rivera", "Sam", "e1");
    p["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Sam Rivera</div>"});
    p["gender"] = json!("other");
    id_of(&s, p).await;
    id_of(&s, person("Lee", "Jordan", "e2")).await;

    let b = bundle(&s, "Patient?_summary=count").await;
    assert_eq!(b["total"], 2);
    assert!(b["entry"].is_null());

    let b = bundle(
        &s,
        "Patient?identifier=urn:test:mrn|e1&_elements=gender,name",
    )
    .await;
    let r = &b["entry"][0]["resource"];
    assert_eq!(r["gender"], "other");
    assert!(r["name"].is_array() && r["identifier"].is_null() && r["text"].is_null());
    assert_eq!(r["meta"]["tag"][0]["code"], "SUBSETTED");
    assert!(link(&b, "self").is_some_and(|l| l.contains("_elements=gender%2Cname")));

    let b = bundle(&s, "Patient?identifier=urn:test:mrn|e1&_summary=text").await;
    let r = &b["entry"][0]["resource"];
    assert!(r["text"].is_object() && r["gender"].is_null());
    let b = bundle(&s, "Patient?identifier=urn:test:mrn|e1&_summary=data").await;
    let r = &b["entry"][0]["resource"];
    assert!(r["text"].is_null() && r["gender"] == "other");

    // strict by default, lenient when asked: the ignored parameter is reported and
    // left out of the self link
    outcome(
        s.get("Patient?nickname=x&gender=other").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let res = s
        .client
        .get(s.url("Patient?nickname=x&gender=other"))
        .header("Prefer", "handling=lenient")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK);
    let b: Value = res.json().await.expect("bundle");
    assert_eq!(b["total"], 1);
    let outcome_entry = b["entry"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["search"]["mode"] == "outcome"))
        .expect("outcome entry");
    assert_eq!(
        outcome_entry["resource"]["resourceType"],
        "OperationOutcome"
    );
    assert!(
        outcome_entry["resource"]["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("nickname"))
    );
    let self_link = link(&b, "self").expect("self");
    assert!(
        self_link.contains("gender=other") && !self_link.contains("nickname"),
        "{self_link}"
    );
    // a bad value of a known parameter is refused even when lenient
    let res = s
        .client
        .get(s.url("Patient?birthdate=yesterday"))
        .header("Prefer", "handling=lenient")
        .send()
        .await
        .expect("get");
    outcome(res, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn the_session_day_is_the_patients_local_day() {
    let s = start().await;
    let task = |start: &str, end: &str| {
        json!({"resourceType": "Task", "status": "requested", "intent": "order",
            "restriction": {"period": {"start": start, "end": end}}})
    };
    // 2 December in New York and in Auckland: in UTC the first starts on 2 December at
    // 05:00 and the second on 1 December at 11:00
    let new_york = id_of(
        &s,
        task("2026-12-02T00:00:00-05:00", "2026-12-03T00:00:00-05:00"),
    )
    .await;
    let auckland = id_of(
        &s,
        task("2026-12-02T00:00:00+13:00", "2026-12-03T00:00:00+13:00"),
    )
    .await;
    let next = id_of(
        &s,
        task("2026-12-03T00:00:00-05:00", "2026-12-04T00:00:00-05:00"),
    )
    .await;
    let mut today = ids_in_order(&s, "Task?session-day=2026-12-02").await;
    today.sort();
    let mut expected = vec![new_york.clone(), auckland];
    expected.sort();
    assert_eq!(today, expected);
    assert_eq!(
        ids_in_order(&s, "Task?session-day=2026-12-03").await,
        std::slice::from_ref(&next)
    );
    assert_eq!(
        total(&s, "Task?session-day=ge2026-12-01&session-day=le2026-12-03").await,
        3
    );
    assert_eq!(
        ids_in_order(&s, "Task?session-day=gt2026-12-02").await,
        [next]
    );
    assert_eq!(total(&s, "Task?session-day=2026-12-01").await, 0);
    let sp = json(s.get("SearchParameter/Task-session-day").await).await;
    assert_eq!(sp["code"], "session-day");
    let meta = json(s.get("metadata").await).await;
    let declared = meta["rest"][0]["resource"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "Task"))
        .and_then(|r| r["searchParam"].as_array().cloned())
        .unwrap_or_default();
    assert!(
        declared
            .iter()
            .any(|p| p["name"] == "session-day" && p["definition"] == sp["url"])
    );
}

#[tokio::test]
async fn the_due_window_parameter_is_defined_and_searchable() {
    let s = start().await;
    let task = |start: &str, end: &str| {
        json!({"resourceType": "Task", "status": "requested", "intent": "order",
            "restriction": {"period": {"start": start, "end": end}}})
    };
    // an end names its whole second: a window ending at midnight touches the next day
    let monday = id_of(&s, task("2026-11-23T00:00:00Z", "2026-11-23T23:59:59Z")).await;
    id_of(&s, task("2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z")).await;
    assert_eq!(
        ids_in_order(&s, "Task?restriction-period=2026-11-23").await,
        [monday]
    );
    assert_eq!(total(&s, "Task?restriction-period=ge2026-11-23").await, 2);
    assert_eq!(total(&s, "Task?restriction-period=sa2026-11-23").await, 1);
    let sp = json(s.get("SearchParameter/Task-restriction-period").await).await;
    assert_eq!(sp["code"], "restriction-period");
    assert_eq!(sp["expression"], "Task.restriction.period");
    let meta = json(s.get("metadata").await).await;
    let task_params = meta["rest"][0]["resource"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "Task"))
        .map(|r| r["searchParam"].clone())
        .unwrap_or_default();
    assert!(task_params.as_array().is_some_and(|p| {
        p.iter()
            .any(|p| p["name"] == "restriction-period" && p["definition"] == sp["url"])
    }));
}
