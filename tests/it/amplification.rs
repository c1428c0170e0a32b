//! Requests that ask the server for far more work or memory than they cost to send get a
//! bounded answer: JSON Patch `copy` doubling, batches of large searches, bodies sent a
//! byte at a time. The server runs in this process, so its memory is this process's
//! resident set (`VmRSS`); the tests of this module run one at a time so that they do
//! not count each other's memory.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::clock::SystemClock;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// How much this process may grow during one attack: generous, since other tests run
/// beside these; each attack would take gigabytes unbounded.
const MAX_GROWTH_KB: u64 = 200 * 1024;

/// A hang guard only, not a measure of speed.
const HANG_GUARD: Duration = Duration::from_secs(10);

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This process's resident memory, in kB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs one attack request, with the hang guard, and asserts the memory it took.
async fn bounded<T>(what: &str, attack: impl std::future::Future<Output = T>) -> T {
    let before = rss_kb();
    let started = Instant::now();
    let out = tokio::time::timeout(HANG_GUARD, attack)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {HANG_GUARD:?}"));
    let grown = rss_kb().saturating_sub(before);
    assert!(
        grown < MAX_GROWTH_KB,
        "{what}: the process grew by {grown} kB (in {:?})",
        started.elapsed()
    );
    out
}

async fn patch(s: &TestServer, path: &str, ops: &Value) -> reqwest::Response {
    s.client
        .patch(s.url(path))
        .header("Content-Type", "application/json-patch+json")
        .body(ops.to_string())
        .send()
        .await
        .expect("PATCH")
}

/// `n` operations that each double the patient's names.
fn doubling(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|_| json!({"op": "copy", "from": "/name", "path": "/name/-"}))
            .collect(),
    )
}

fn patch_entry(url: &str, ops: &Value) -> Value {
    json!({
        "resource": {
            "resourceType": "Binary",
            "contentType": "application/json-patch+json",
            "data": base64::engine::general_purpose::STANDARD.encode(ops.to_string()),
        },
        "request": {"method": "PATCH", "url": url}
    })
}

fn entry_status(answer: &Value, i: usize) -> String {
    answer["entry"][i]["response"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn entry_diagnostics(answer: &Value, i: usize) -> String {
    answer["entry"][i]["response"]["outcome"]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn json_patch_copies_stop_at_the_body_limit() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start_with(
        |c| {
            c.max_body_bytes = 64 * 1024;
            c.max_patch_operations = 100;
        },
        Arc::new(SystemClock),
    )
    .await;
    let p = s.create(patient("amp-patch")).await;
    let path = format!("Patient/{}", p["id"].as_str().expect("id"));
    // 22 doublings of a ~100-byte array are ~400 MB of JSON (gigabytes in memory);
    // the 64 KB limit is passed at the 10th
    let res = bounded("copy doubling", patch(&s, &path, &doubling(22))).await;
    let issue = outcome(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(issue["code"], "too-costly");
    let text = issue["diagnostics"].as_str().unwrap_or_default();
    assert!(text.contains("65536 bytes"), "{text}");
    // nothing was written
    let now = json(s.get(&path).await).await;
    assert_eq!(now["meta"]["versionId"], "1");
    // copies within the limit are applied
    let copies = json!([
        {"op": "copy", "from": "/name/0", "path": "/name/-"},
        {"op": "copy", "from": "/name/0", "path": "/name/-"}
    ]);
    let res = patch(&s, &path, &copies).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await["name"].as_array().map(Vec::len), Some(3));
    // more operations than allowed: refused before any is applied
    let tests = Value::Array(
        (0..101)
            .map(|_| json!({"op": "test", "path": "/resourceType", "value": "Patient"}))
            .collect(),
    );
    let issue = outcome(
        patch(&s, &path, &tests).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["code"], "too-costly");
    assert!(
        issue["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .contains("--max-patch-operations"),
        "{issue}"
    );
}

#[tokio::test]
async fn patch_entries_of_bundles_stop_at_the_body_limit() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start_with(|c| c.max_body_bytes = 64 * 1024, Arc::new(SystemClock)).await;
    let p = s.create(patient("amp-bundle-patch")).await;
    let url = format!("Patient/{}", p["id"].as_str().expect("id"));
    // a batch: the entry answers 413, the next entry still runs
    let batch = bundle(
        "batch",
        vec![
            patch_entry(&url, &doubling(22)),
            json!({"request": {"method": "GET", "url": url}}),
        ],
    );
    let res = bounded("batch of copy doubling", s.post_json("", &batch)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer = json(res).await;
    assert!(entry_status(&answer, 0).starts_with("413"), "{answer}");
    assert!(
        entry_diagnostics(&answer, 0).contains("65536 bytes"),
        "{answer}"
    );
    assert!(entry_status(&answer, 1).starts_with("200"), "{answer}");
    assert_eq!(answer["entry"][1]["resource"]["meta"]["versionId"], "1");
    // a transaction: 413 for the whole
    let transaction = bundle("transaction", vec![patch_entry(&url, &doubling(22))]);
    let res = bounded(
        "transaction of copy doubling",
        s.post_json("", &transaction),
    )
    .await;
    let issue = outcome(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(issue["expression"][0], "Bundle.entry[0]", "{issue}");
}

#[tokio::test]
async fn batch_searches_past_the_limit_answer_413() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start_with(|c| c.max_bundle_searches = 3, Arc::new(SystemClock)).await;
    let search = json!({"request": {"method": "GET", "url": "ActivityDefinition?_count=1"}});
    let batch = bundle("batch", vec![search.clone(); 5]);
    let answer = json(s.post_json("", &batch).await).await;
    for i in 0..3 {
        assert!(entry_status(&answer, i).starts_with("200"), "{answer}");
        assert_eq!(answer["entry"][i]["resource"]["type"], "searchset");
    }
    for i in 3..5 {
        assert!(entry_status(&answer, i).starts_with("413"), "{answer}");
        assert!(
            entry_diagnostics(&answer, i).contains("--max-bundle-searches"),
            "{answer}"
        );
    }
    // a read is not a search
    let id = answer["entry"][0]["resource"]["entry"][0]["resource"]["id"]
        .as_str()
        .expect("an ActivityDefinition")
        .to_string();
    let read = json!({"request": {"method": "GET", "url": format!("ActivityDefinition/{id}")}});
    let mut entries = vec![search.clone(); 3];
    entries.push(read);
    entries.push(search.clone());
    let answer = json(s.post_json("", &bundle("batch", entries)).await).await;
    assert!(entry_status(&answer, 3).starts_with("200"), "{answer}");
    assert!(entry_status(&answer, 4).starts_with("413"), "{answer}");
    // a transaction with too many searches fails as a whole, before it runs
    let res = s
        .post_json("", &bundle("transaction", vec![search; 4]))
        .await;
    let issue = outcome(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(
        issue["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .contains("--max-bundle-searches"),
        "{issue}"
    );
}

/// Conditional criteria that name no identifier, reference or `_id` may walk a whole
/// type inside the write transaction: they count as searches. Selective criteria (an
/// identifier) are index lookups and do not.
#[tokio::test]
async fn conditional_criteria_that_walk_a_type_count_as_searches() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start_with(|c| c.max_bundle_searches = 3, Arc::new(SystemClock)).await;
    let walking = |i: usize| {
        let mut e = post_entry(patient(&format!("amp-cond-{i}")));
        e["request"]["ifNoneExist"] = json!(format!("family=nobody-{i}"));
        e
    };
    let selective = |i: usize| {
        let mut e = post_entry(patient(&format!("amp-sel-{i}")));
        e["request"]["ifNoneExist"] = json!(format!("identifier=urn:test:mrn|amp-sel-{i}"));
        e
    };
    // a transaction of four creates whose criteria walk Patients: refused before it runs
    let res = s
        .post_json("", &bundle("transaction", (0..4).map(walking).collect()))
        .await;
    let issue = outcome(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(
        issue["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .contains("--max-bundle-searches"),
        "{issue}"
    );
    assert_eq!(
        json(s.get("Patient?identifier=urn:test:mrn|amp-cond-0").await).await["total"],
        json!(0),
        "nothing of the refused transaction is written"
    );
    // the same with selective criteria: every create runs
    let answer = json(
        s.post_json("", &bundle("transaction", (0..8).map(selective).collect()))
            .await,
    )
    .await;
    for i in 0..8 {
        assert!(entry_status(&answer, i).starts_with("201"), "{answer}");
    }
    // a conditional reference that walks a type counts too; in a batch, the entry past
    // the limit answers 413 alone and the others run
    let mut referencing = post_entry(json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
        "subject": {"reference": "Patient?family=Testperson&birthdate=1970-01-01"},
        "valueInteger": 3
    }));
    referencing["request"]["url"] = json!("Observation");
    let mut entries: Vec<Value> = (10..13).map(walking).collect();
    entries.push(referencing);
    entries.push(selective(20));
    let answer = json(s.post_json("", &bundle("batch", entries)).await).await;
    for i in 0..3 {
        assert!(entry_status(&answer, i).starts_with("201"), "{answer}");
    }
    assert!(entry_status(&answer, 3).starts_with("413"), "{answer}");
    assert!(
        entry_diagnostics(&answer, 3).contains("--max-bundle-searches"),
        "{answer}"
    );
    assert!(entry_status(&answer, 4).starts_with("201"), "{answer}");
}

#[tokio::test]
async fn batch_answers_stop_at_their_resource_limit() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start_with(
        |c| c.max_bundle_response_resources = 100,
        Arc::new(SystemClock),
    )
    .await;
    let all = json(s.get("ActivityDefinition?_count=1000").await).await;
    let per_search = all["entry"].as_array().map_or(0, Vec::len);
    assert!(
        (34..=100).contains(&per_search),
        "the starter library: {per_search}"
    );
    let search = json!({"request": {"method": "GET", "url": "ActivityDefinition?_count=1000"}});
    let mut entries = vec![search.clone(); 4];
    entries.push(post_entry(patient("amp-after-limit")));
    let answer = json(s.post_json("", &bundle("batch", entries)).await).await;
    let fit = 100 / per_search;
    for i in 0..4 {
        let status = entry_status(&answer, i);
        if i < fit {
            assert!(status.starts_with("200"), "entry {i}: {status}");
        } else {
            assert!(status.starts_with("413"), "entry {i}: {status}");
            assert!(
                entry_diagnostics(&answer, i).contains("--max-bundle-response-resources"),
                "{answer}"
            );
        }
    }
    // a write that returns nothing still runs
    assert!(entry_status(&answer, 4).starts_with("201"), "{answer}");
    // a transaction past it fails as a whole, naming the entry
    let res = s
        .post_json("", &bundle("transaction", vec![search; 4]))
        .await;
    let issue = outcome(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(
        issue["expression"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("Bundle.entry["),
        "{issue}"
    );
}

#[tokio::test]
async fn batches_of_large_searches_stay_within_the_answer_bytes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start_with(
        |c| c.max_bundle_response_bytes = 4 * 1024 * 1024,
        Arc::new(SystemClock),
    )
    .await;
    // ten patients of ~500 KB: one search of them all is ~5 MB
    for i in 0..10 {
        let mut p = patient(&format!("amp-big-{i}"));
        p["name"][0]["text"] = json!("x".repeat(500 * 1024));
        s.create(p).await;
    }
    let search = json!({"request": {"method": "GET", "url": "Patient?_count=1000"}});
    let small =
        json!({"request": {"method": "GET", "url": "Patient?identifier=urn:test:mrn|none"}});
    let mut entries = vec![small.clone()];
    entries.extend(vec![search; 50]);
    entries.push(small);
    // unbounded: 50 answers of 5 MB, 250 MB held at once, and copies of it
    let res = bounded(
        "batch of large searches",
        s.post_json("", &bundle("batch", entries)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = res.bytes().await.expect("body");
    assert!(bytes.len() < 5 * 1024 * 1024, "{} bytes", bytes.len());
    let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert!(entry_status(&answer, 0).starts_with("200"), "{answer}");
    for i in 1..51 {
        assert!(entry_status(&answer, i).starts_with("413"), "entry {i}");
        assert!(
            entry_diagnostics(&answer, i).contains("--max-bundle-response-bytes"),
            "entry {i}"
        );
    }
    // once the room is used up, later reads are not carried out
    assert!(entry_status(&answer, 51).starts_with("413"), "{answer}");
}

/// Sends `head`, then the body a byte every 100 ms, until the server answers; the
/// answer's status line and body, and how long it took.
fn trickle(addr: &str, head: String, body: &[u8]) -> (String, String, Duration) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let started = Instant::now();
    stream.write_all(head.as_bytes()).expect("head");
    let mut answer = Vec::new();
    let mut sent = 0;
    let mut closed = false;
    while started.elapsed() < HANG_GUARD {
        // nothing more is sent once the answer comes (a write to a closed connection
        // could reset it before the answer is read)
        if answer.is_empty() && sent < body.len() && stream.write_all(&body[sent..sent + 1]).is_ok()
        {
            sent += 1;
        }
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let took = started.elapsed();
    assert!(closed, "the connection is still open after {took:?}");
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body, took)
}

#[tokio::test]
async fn slow_bodies_are_cut_with_408() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start_with(|c| c.body_timeout_secs = 1, Arc::new(SystemClock)).await;
    let token = token(&s.database_url, "system/*.cruds", None);
    let addr = s
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/fhir")
        .to_string();
    let body = patient("amp-slow").to_string();
    let sized = format!(
        "POST /fhir/Patient HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {FHIR_JSON}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let chunked = format!(
        "POST /fhir/Patient HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {FHIR_JSON}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let chunks: String = body.chars().map(|c| format!("1\r\n{c}\r\n")).collect();
    for (what, head, body) in [("sized", sized, body.clone()), ("chunked", chunked, chunks)] {
        let a = addr.clone();
        let (status, answer, took) =
            tokio::task::spawn_blocking(move || trickle(&a, head, body.as_bytes()))
                .await
                .expect("trickle");
        assert!(status.contains(" 408 "), "{what}: {status}");
        let outcome: Value = serde_json::from_str(&answer).expect("OperationOutcome");
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{what}");
        assert_eq!(outcome["issue"][0]["code"], "timeout", "{what}");
        // the configured second, and a margin for a busy machine
        assert!(took >= Duration::from_millis(900), "{what}: {took:?}");
        assert!(took < Duration::from_secs(6), "{what}: {took:?}");
    }
    // a body sent at once is not affected
    let res = s.post_json("Patient", &patient("amp-fast")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// Sends raw bytes and reads the answer until the server closes or 3 s pass (off the
/// test's runtime, which the server needs).
async fn raw(addr: &str, request: Vec<u8>) -> String {
    let addr = addr.to_string();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        stream.write_all(&request).expect("send");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).to_string()
    })
    .await
    .expect("raw request")
}

#[tokio::test]
async fn malformed_requests_that_reach_the_server_get_operation_outcomes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start().await;
    let token = token(&s.database_url, "system/*.cruds", None);
    let addr = s
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/fhir")
        .to_string();
    let auth = format!("Authorization: Bearer {token}\r\nConnection: close\r\n");
    for (what, line, status) in [
        ("unknown method", "FOO /fhir/metadata", "405"),
        ("invalid percent-encoding", "GET /fhir/Patient/%FF", "404"),
        ("invalid type", "GET /fhir/%FF%FE", "404"),
        ("no route", "GET /nowhere", "404"),
        ("invalid query", "GET /fhir/Patient?%FF=%FE", "400"),
    ] {
        let answer = raw(
            &addr,
            format!("{line} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\n").into_bytes(),
        )
        .await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {answer}"
        );
        assert!(answer.contains("application/fhir+json"), "{what}: {answer}");
        assert!(answer.contains("\"OperationOutcome\""), "{what}: {answer}");
        assert!(answer.contains("x-content-type-options: nosniff"), "{what}");
    }
    // what actix-http refuses before any of the server's code runs is answered by it,
    // with an empty body (README, "Errors")
    for (what, request, status) in [
        (
            "a header without a colon",
            b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nBroken\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "a NUL in a header",
            b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "a raw non-ASCII byte in the path",
            b"GET /fhir/Pati\xc3\xa9nt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "too many headers",
            [
                b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n".to_vec(),
                (0..120)
                    .flat_map(|i| format!("X-{i}: a\r\n").into_bytes())
                    .collect(),
                b"\r\n".to_vec(),
            ]
            .concat(),
            "431",
        ),
    ] {
        let answer = raw(&addr, request).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {answer}"
        );
        assert!(answer.contains("content-length: 0"), "{what}: {answer}");
    }
}
