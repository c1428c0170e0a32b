//! `/health/live` and `/health/ready`: no token, each check's state, 503 when one fails.

use std::sync::Arc;

use api::clock::SystemClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

fn root(s: &TestServer, path: &str) -> String {
    format!("{}{path}", s.base.trim_end_matches("/fhir"))
}

async fn probe(s: &TestServer, path: &str) -> (StatusCode, Value) {
    // a plain client: no token
    let res = reqwest::get(root(s, path)).await.expect("health answers");
    let status = res.status();
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(kind, "application/health+json");
    assert_eq!(
        res.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    (status, res.json().await.expect("JSON"))
}

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    &body["checks"][name][0]
}

#[tokio::test]
async fn live_and_ready_answer_without_a_token() {
    let s = start().await;
    let (status, body) = probe(&s, "/health/live").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "pass");

    let (status, body) = probe(&s, "/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pass");
    for name in [
        "database:reachable",
        "database:writable",
        "database:migrations",
    ] {
        assert_eq!(check(&body, name)["status"], "pass", "{name}: {body}");
    }
    assert_eq!(check(&body, "database:writable")["observedUnit"], "ms");
    let sqlite = !s.database_url.starts_with("postgres");
    assert_eq!(
        body["checks"].get("disk:free").is_some(),
        sqlite,
        "free disk is checked for SQLite only: {body}"
    );
    if sqlite {
        assert_eq!(check(&body, "disk:free")["observedUnit"], "MiB");
    }
    // the checks name no data of the clinic
    let created = s.create(patient("health-mrn-7731")).await;
    let id = created["id"].as_str().unwrap_or_default().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, body) = probe(&s, "/health/ready").await;
    let text = body.to_string();
    assert!(
        !text.contains("health-mrn-7731") && !text.contains(&id),
        "{text}"
    );
}

#[tokio::test]
async fn ready_fails_when_the_disk_is_nearly_full() {
    // a threshold no file system meets: the SQLite disk check fails, the others pass
    let s = start_with(
        |c| c.health_min_free_disk_mb = u64::MAX / (1024 * 1024),
        Arc::new(SystemClock),
    )
    .await;
    if s.database_url.starts_with("postgres") {
        return; // no disk check: PostgreSQL keeps its own files
    }
    let (status, body) = probe(&s, "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "fail");
    assert_eq!(check(&body, "disk:free")["status"], "fail");
    assert!(
        check(&body, "disk:free")["output"]
            .as_str()
            .unwrap_or_default()
            .contains("--health-min-free-disk-mb"),
        "{body}"
    );
    assert_eq!(check(&body, "database:writable")["status"], "pass");
    // liveness does not depend on the checks
    let (status, _) = probe(&s, "/health/live").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_migrations_of_a_fresh_database_are_this_releases() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = dir.path().join("m.db").display().to_string();
    let db = api::db::Db::open(&url, 1).expect("open");
    let state = db
        .read(api::db::migration_state)
        .await
        .expect("migration state");
    assert_eq!(state.pending, 0);
    assert_eq!(state.unknown, 0);
}

#[tokio::test]
async fn metrics_count_requests_for_the_admin_scope_only() {
    let s = start().await;
    let url = root(&s, "/metrics");
    let plain = reqwest::Client::new();
    assert_eq!(
        plain.get(&url).send().await.expect("answer").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.client.get(&url).send().await.expect("answer").status(),
        StatusCode::FORBIDDEN,
        "a token without hep-admin"
    );
    let created = s.create(patient("metrics-mrn-5150")).await;
    // a patient's token, and another clinic's administrator: the figures are the whole
    // server's, for the operator's own clinic only
    let pid = created["id"].as_str().expect("id");
    let patient_token = client_with_token(&token(&s.database_url, "patient/*.rs", Some(pid)));
    let other_clinic = client_with_token(
        &api::auth::tokens::dev_token(
            &s.database_url,
            &api::auth::tokens::DevToken {
                scope: "system/*.rs hep-admin".into(),
                patient: None,
                tenant: "other-clinic".into(),
                minutes: 60,
                force: false,
            },
            jiff::Timestamp::now().as_second(),
        )
        .expect("token"),
    );
    for (who, client) in [
        ("a patient", &patient_token),
        ("another clinic", &other_clinic),
    ] {
        let res = client.get(&url).send().await.expect("answer");
        let issue = outcome(res, StatusCode::FORBIDDEN).await;
        assert!(
            issue["diagnostics"]
                .as_str()
                .unwrap_or_default()
                .contains("server's own clinic"),
            "{who}: {issue}"
        );
    }
    for _ in 0..3 {
        assert_eq!(
            s.get("Patient?identifier=urn:test:mrn|metrics-mrn-5150")
                .await
                .status(),
            200
        );
    }
    let admin = client_with_token(&token(&s.database_url, "system/*.rs hep-admin", None));
    let res = admin.get(&url).send().await.expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .starts_with("application/openmetrics-text")
    );
    let text = res.text().await.expect("text");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let searches: f64 = text
        .lines()
        .find(|l| {
            l.starts_with("hep_http_requests_total{")
                && l.contains("method=\"GET\"")
                && l.contains("route=\"/fhir/{type}\"")
                && l.contains("status=\"200\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no count of the searches: {text}"));
    assert!(searches >= 3.0, "{text}");
    assert!(
        text.contains("hep_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains("hep_database_outage{kind=\"disk_full\"} 0"),
        "{text}"
    );
    assert!(
        !text.contains("metrics-mrn-5150"),
        "no data of the clinic: {text}"
    );
    if !s.database_url.starts_with("postgres") {
        // the SQLite writer's commits, counted once each across scrapes
        let value = |text: &str, name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name}: {text}"))
        };
        let jobs = value(&text, "hep_sqlite_writer_jobs_total");
        assert!(jobs >= 1.0, "{text}");
        assert!(
            value(&text, "hep_sqlite_writer_batches_total") >= 1.0,
            "{text}"
        );
        s.create(patient("metrics-mrn-5151")).await;
        let again = admin
            .get(&url)
            .send()
            .await
            .expect("answer")
            .text()
            .await
            .expect("text");
        let later = value(&again, "hep_sqlite_writer_jobs_total");
        assert!(
            later > jobs && later < jobs * 2.0 + 5.0,
            "{jobs} then {later}"
        );
    }
}

/// A value of `/metrics`: the first sample whose line starts with `series` (a name with
/// its labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{series}` in {text}"))
}

#[tokio::test]
async fn metrics_show_how_far_the_jobs_are_behind() {
    // the jobs run once an hour here, so that the missed sessions wait for them
    let clock = std::sync::Arc::new(api::clock::ManualClock::new(at("2026-03-02T12:00:00Z")));
    let s = start_with(|c| c.job_interval_ms = 3_600_000, clock.clone()).await;
    let admin = client_with_token(&token_at(
        &s.database_url,
        "system/*.rs hep-admin",
        None,
        at("2026-03-02T12:00:00Z").as_second(),
    ));
    let scrape = || async {
        let res = admin
            .get(root(&s, "/metrics"))
            .send()
            .await
            .expect("answer");
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.expect("text")
    };
    let text = scrape().await;
    assert_eq!(
        sample(&text, "hep_job_backlog{job=\"missed_sessions\"}"),
        0.0
    );
    assert_eq!(
        sample(&text, "hep_job_lag_seconds{job=\"missed_sessions\"}"),
        0.0
    );
    assert_eq!(sample(&text, "hep_export_jobs{state=\"accepted\"}"), 0.0);

    let pid = id_of(&s.create(patient("lag-1")).await);
    let rx = id_of(
        &s.create(prescription(
            &pid,
            "Bridge",
            3,
            ("2026-03-02", "2026-03-08"),
        ))
        .await,
    );
    let mut plan = program(&pid, &[&rx], ("2026-03-02", "2026-03-08"));
    if let Some(acts) = plan["activity"].as_array_mut() {
        // an outcome measure at the start: open for a week
        acts.push(json!({"detail": {"kind": "Task", "status": "scheduled",
            "instantiatesCanonical": ["https://hep-fhir.org/fhir/Questionnaire/nprs"]}}));
    }
    s.create(plan).await;
    // two and a half days later, the sessions of 2 and 3 March are overdue
    clock.set(at("2026-03-04T12:00:00Z"));
    let text = scrape().await;
    assert_eq!(
        sample(&text, "hep_job_backlog{job=\"missed_sessions\"}"),
        2.0
    );
    // the oldest window closed at midnight UTC on 3 March: 36 hours before
    assert_eq!(
        sample(&text, "hep_job_lag_seconds{job=\"missed_sessions\"}"),
        36.0 * 3600.0
    );
    assert_eq!(
        sample(&text, "hep_job_backlog{job=\"missed_measures\"}"),
        0.0
    );
    // a day after its week, the unanswered measure is overdue
    clock.set(at("2026-03-10T12:00:00Z"));
    let text = scrape().await;
    assert_eq!(
        sample(&text, "hep_job_backlog{job=\"missed_measures\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "hep_job_lag_seconds{job=\"missed_measures\"}"),
        24.0 * 3600.0
    );
    assert_eq!(
        sample(&text, "hep_job_backlog{job=\"measure_follow_ups\"}"),
        0.0
    );
    assert!(!text.contains(&pid), "no id of the clinic's data");
}
