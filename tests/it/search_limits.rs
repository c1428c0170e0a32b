//! Limits on the work one search may ask for (repetitions, comma-separated values, values
//! in all), the time limit of database statements, and the fair share of the database
//! readers between clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api::clock::SystemClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// `name=x&name=x...`, `times` of them.
fn repeated(name: &str, times: usize) -> String {
    vec![format!("{name}=x"); times].join("&")
}

/// Asserts a 400 `too-costly` OperationOutcome whose text names `words`.
async fn refused(res: reqwest::Response, words: &[&str]) {
    let issue = outcome(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(issue["code"], "too-costly", "{issue}");
    let text = issue["diagnostics"].as_str().unwrap_or_default();
    for w in words {
        assert!(text.contains(w), "`{w}` not in {text}");
    }
}

async fn post_search(s: &TestServer, path: &str, form: &str) -> reqwest::Response {
    s.client
        .post(s.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .expect("POST _search")
}

#[tokio::test]
async fn repeated_parameters_past_the_limit_are_refused_naming_the_limit() {
    let s = start().await;
    s.create(patient("lim-1")).await;
    // ten repetitions of one parameter are fine, eleven are not
    let ok = s.get(&format!("Patient?{}", repeated("name", 10))).await;
    assert_eq!(ok.status(), StatusCode::OK);
    refused(
        s.get(&format!("Patient?{}", repeated("name", 11))).await,
        &["`name`", "10"],
    )
    .await;
    // modifiers are the same parameter
    let mixed = format!("{}&name:exact=x", repeated("name", 10));
    refused(s.get(&format!("Patient?{mixed}")).await, &["`name`", "10"]).await;
    // POST _search, the query string and the form together
    refused(
        post_search(
            &s,
            &format!("Patient/_search?{}", repeated("name", 5)),
            &repeated("name", 6),
        )
        .await,
        &["`name`", "10"],
    )
    .await;
    // lenient handling ignores unknown parameters, not the limits
    let lenient = s
        .client
        .get(s.url(&format!("Patient?{}", repeated("nickname", 11))))
        .header("Prefer", "handling=lenient")
        .send()
        .await
        .expect("GET");
    refused(lenient, &["`nickname`", "10"]).await;
    // the criteria of a conditional create
    let criteria = repeated("identifier", 11);
    let res = s
        .client
        .post(s.url("Patient"))
        .header("Content-Type", FHIR_JSON)
        .header("If-None-Exist", &criteria)
        .body(patient("lim-2").to_string())
        .send()
        .await
        .expect("POST");
    refused(res, &["`identifier`", "10"]).await;
    let found = json(s.get("Patient?identifier=lim-2").await).await;
    assert_eq!(found["total"], 0, "nothing was created");
    // and in a transaction's entry
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": patient("lim-3"),
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria}
    }]});
    let issue = outcome(s.post_json("", &bundle).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(issue["code"], "too-costly", "{issue}");
}

#[tokio::test]
async fn hostile_lists_answer_400_never_500() {
    let s = start().await;
    s.create(patient("lim-4")).await;
    // these answered 500 on SQLite ("Expression tree is too large")
    refused(
        s.get(&format!("Patient?{}", values("name", "v", 496)))
            .await,
        &["`name`", "496", "100"],
    )
    .await;
    refused(
        s.get(&format!("Patient?{}", repeated("name", 985))).await,
        &["`name`", "10"],
    )
    .await;
    refused(
        post_search(&s, "Patient/_search", &values("name", "v", 496)).await,
        &["100"],
    )
    .await;
    // many different parameters: the total over the request
    let many: Vec<String> = ["name", "family", "given"]
        .iter()
        .map(|p| values(p, "v", 90))
        .collect();
    refused(
        s.get(&format!("Patient?{}", many.join("&"))).await,
        &["200", "`given`"],
    )
    .await;
    // the same in one parameter given as a _typeFilter of an export
    let filter = format!("Patient?{}", values("name", "v", 101));
    let res = s
        .client
        .get(s.url("$export"))
        .query(&[("_type", "Patient"), ("_typeFilter", filter.as_str())])
        .header("Accept", "application/fhir+json")
        .header("Prefer", "respond-async")
        .send()
        .await
        .expect("kick-off");
    refused(res, &["100"]).await;
}

#[tokio::test]
async fn searches_just_within_the_limits_work() {
    let s = start().await;
    let p = s.create(patient("lim-5")).await;
    let pid = p["id"].as_str().expect("id").to_string();
    s.create(observation(&pid, PAIN)).await;
    let total = |b: &Value| b["total"].as_u64();
    // 200 values in two parameters, the first one matching
    let two = format!(
        "Patient?{},testperson&{}&_total=accurate",
        values("name", "v", 99),
        values("family", "w", 100)
    );
    let res = s.get(&two).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(total(&json(res).await), Some(0));
    let res = s
        .get(&format!(
            "Patient?{},testperson&{},testperson",
            values("name", "v", 99),
            values("name:contains", "w", 99)
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(total(&json(res).await), Some(1));
    // ten repetitions of every parameter of Patient, through POST _search
    let mut form: Vec<String> = Vec::new();
    for (p, v) in [
        ("name", "x"),
        ("family", "x"),
        ("given", "x"),
        ("gender", "x"),
        ("identifier", "x"),
        ("birthdate", "ge1970"),
        ("_id", "x"),
        ("_lastUpdated", "ge2000"),
    ] {
        for _ in 0..10 {
            form.push(format!("{p}={v}"));
        }
    }
    let res = post_search(&s, "Patient/_search", &form.join("&")).await;
    assert_eq!(res.status(), StatusCode::OK);
    // a chain with a hundred values, twice, sorted, with the page's includes
    let chain = format!(
        "Observation?{},testperson&{}&_sort=-date,code&_include=Observation:subject\
         &_include=Observation:patient&_revinclude=Observation:derived-from",
        values("subject:Patient.name", "v", 99),
        values("patient.family:contains", "w", 95)
    );
    let res = s.get(&chain).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = s
        .get(&format!(
            "Observation?{},testperson",
            values("subject:Patient.name", "v", 99)
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(total(&json(res).await), Some(1));
    // a conditional create whose criteria use a whole parameter's worth of values
    let criteria = format!("{},lim-6", values("identifier", "v", 99));
    let res = s
        .client
        .post(s.url("Patient"))
        .header("Content-Type", FHIR_JSON)
        .header("If-None-Exist", &criteria)
        .body(patient("lim-6").to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// A search that reads every Patient's names against 200 alternatives: slow enough to
/// keep a reader busy for a while, within the limits.
fn slow_search() -> String {
    format!(
        "Patient?{}&{}&_total=accurate",
        values("name:contains", "zq", 100),
        values("family:contains", "zx", 100)
    )
}

#[tokio::test]
async fn a_client_with_many_slow_searches_leaves_a_reader_for_the_others() {
    // two readers: the busy client holds one at most (and no time limit stops its
    // searches: PostgreSQL plans them badly on tables without statistics yet)
    let s = start_with(
        |c| {
            c.db_pool_size = 2;
            c.statement_timeout_ms = 0;
        },
        Arc::new(SystemClock),
    )
    .await;
    create_patients(&s, "fair", 200).await;
    // another clinic's client, with a Patient of its own (its clinic set up first)
    let other = client_of_tenant(&s, "fair-share-b");
    let res = other
        .post(s.url("Patient"))
        .header("Content-Type", FHIR_JSON)
        .body(patient("b-1").to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), StatusCode::CREATED);
    let b_id = json(res).await["id"].as_str().expect("id").to_string();

    // as many searches as keep one reader busy for about a second (however fast this
    // machine and backend are), so that they are still under way below
    let started = std::time::Instant::now();
    let res = s.get(&slow_search()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let one = started.elapsed().as_secs_f64().max(0.001);
    let busy = ((1.0 / one).ceil() as usize).clamp(8, 64);
    let done = Arc::new(AtomicUsize::new(0));
    let mut searches = Vec::new();
    for _ in 0..busy {
        let (client, url, done) = (s.client.clone(), s.url(&slow_search()), done.clone());
        searches.push(tokio::spawn(async move {
            let status = client.get(url).send().await.map(|r| r.status());
            done.fetch_add(1, Ordering::SeqCst);
            status
        }));
    }
    // the searches reach the server and queue for the readers
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = done.load(Ordering::SeqCst);
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        other.get(s.url(&format!("Patient/{b_id}"))).send(),
    )
    .await
    .expect("the other client's read is answered (hang guard)")
    .expect("GET");
    let after = done.load(Ordering::SeqCst);
    assert_eq!(read.status(), StatusCode::OK);
    // answered while most of the busy client's searches were still waiting their turn
    // (without the fair share it waited behind all of them but the last two or so)
    assert!(
        busy - after >= busy / 2,
        "only {} of {busy} searches were still under way when the read was answered \
         ({before} done before it was sent)",
        busy - after
    );
    for search in searches {
        let status = tokio::time::timeout(Duration::from_secs(300), search)
            .await
            .expect("the busy client's searches end (hang guard)")
            .expect("task")
            .expect("search");
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_statement_past_the_time_limit_answers_503_and_the_server_goes_on() {
    let s = start().await;
    create_patients(&s, "slow", 2500).await;
    let p = s.create(patient("slow-x")).await;
    // a second server on the same data, with a tiny statement time limit
    let url = s.database_url.clone();
    let limited = start_with(
        move |c| {
            c.database_url = url;
            c.statement_timeout_ms = 10;
        },
        Arc::new(SystemClock),
    )
    .await;
    let res = limited.get(&slow_search()).await;
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let issue = outcome(res, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(retry.is_some_and(|r| r > 0), "Retry-After: {retry:?}");
    assert_eq!(issue["code"], "too-costly", "{issue}");
    // the readers' connections are still usable (a stopped connection would answer 500
    // every time; on a loaded machine even a read by id may pass 10 ms, which answers
    // 503 again, so a read gets a few tries)
    let answered = |path: String| {
        let limited = &limited;
        async move {
            for _ in 0..10 {
                let res = limited.get(&path).await;
                if res.status() != StatusCode::SERVICE_UNAVAILABLE {
                    return res;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("{path} answered 503 ten times");
        }
    };
    for _ in 0..4 {
        let read = answered(format!("Patient/{}", p["id"].as_str().expect("id"))).await;
        assert_eq!(read.status(), StatusCode::OK);
    }
    let res = answered("Patient?identifier=slow-x".to_string()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await["total"], 1);
}

#[tokio::test]
async fn values_longer_than_the_index_holds_are_stored_and_found() {
    let s = start().await;
    // longer than PostgreSQL's B-tree takes in one index row
    let family = format!("Long{}", "é".repeat(2000));
    let mrn = format!("mrn-{}", "9".repeat(3000));
    let mut p = patient(&mrn);
    p["name"] = serde_json::json!([{"family": family}]);
    let created = s.create(p).await;
    let id = created["id"].as_str().expect("id");
    for query in [
        format!("name:exact={family}"),
        format!("family={family}"),
        format!("identifier=urn:test:mrn|{mrn}"),
    ] {
        let res = s
            .client
            .post(s.url("Patient/_search"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                serde_urlencoded::to_string([(
                    query.split_once('=').expect("=").0,
                    query.split_once('=').expect("=").1,
                )])
                .expect("form"),
            )
            .send()
            .await
            .expect("search");
        assert_eq!(res.status(), reqwest::StatusCode::OK);
        let b: serde_json::Value = res.json().await.expect("bundle");
        let head: String = query.chars().take(20).collect();
        assert_eq!(
            b["entry"][0]["resource"]["id"], id,
            "{head}: {}",
            b["total"]
        );
    }
    // a conditional create on the long identifier finds it
    let res = s
        .client
        .post(s.url("Patient"))
        .header("Content-Type", FHIR_JSON)
        .header("If-None-Exist", format!("identifier=urn:test:mrn|{mrn}"))
        .body(patient("other").to_string())
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), StatusCode::OK);
    let mut other = patient(&format!("mrn-{}", "8".repeat(3000)));
    other["name"] = json!([{"family": "Other"}]);
    let res = s
        .client
        .post(s.url("Patient"))
        .header("Content-Type", FHIR_JSON)
        .header(
            "If-None-Exist",
            format!("identifier=urn:test:mrn|mrn-{}", "8".repeat(3000)),
        )
        .body(other.to_string())
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), StatusCode::CREATED);
}
