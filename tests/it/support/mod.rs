//! A real server on port 0 against a fresh database, and helpers to talk to it. The
//! FHIR resources the tests send are built in `fixtures`.

use std::sync::Arc;

use actix_web::dev::ServerHandle;
use api::clock::{Clock, SystemClock};
use api::config::Config;
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

pub mod fixtures;
pub use fixtures::*;

pub const FHIR_JSON: &str = "application/fhir+json";
pub const FHIR_XML: &str = "application/fhir+xml";

pub struct TestServer {
    pub base: String,
    pub client: Client,
    /// The database, for a second server on the same data.
    pub database_url: String,
    /// The directory of export files.
    pub export_dir: std::path::PathBuf,
    handle: ServerHandle,
    _dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping is asynchronous; the runtime finishes it or ends with the test.
        drop(tokio::spawn(async move { handle.stop(false).await }));
    }
}

/// The database for one test: a fresh PostgreSQL schema when `HEP_TEST_DATABASE_URL`
/// names a server, else a fresh SQLite file.
fn database_url(dir: &tempfile::TempDir) -> String {
    match std::env::var("HEP_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            api::db::create_test_schema(&url, &schema).expect("create test schema")
        }
        _ => dir.path().join("test.db").display().to_string(),
    }
}

pub async fn start() -> TestServer {
    start_with(|_| {}, Arc::new(SystemClock)).await
}

pub async fn start_with(adjust: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_database(&database_url(&dir));
    config.bind = "127.0.0.1:0".into();
    config.workers = Some(2);
    config.db_pool_size = 4;
    config.shutdown_timeout = 1;
    config.export_dir = dir.path().join("exports").display().to_string();
    adjust(&mut config);
    let database_url = config.database_url.clone();
    let export_dir = std::path::PathBuf::from(&config.export_dir);
    let clock_now = clock.now().as_second();
    let (server, addr) = api::server::build(&config, clock).expect("server starts");
    let handle = server.handle();
    tokio::spawn(server);
    TestServer {
        base: format!("http://{addr}/fhir"),
        client: client_with_token(&token_at(&database_url, "system/*.cruds", None, clock_now)),
        database_url,
        export_dir,
        handle,
        _dir: dir,
    }
}

/// An access token of the test database (as `hep-server dev-token` prints it), issued
/// now by the system clock, for an hour.
pub fn token(database_url: &str, scope: &str, patient: Option<&str>) -> String {
    let request = api::auth::tokens::DevToken {
        scope: scope.into(),
        patient: patient.map(str::to_string),
        tenant: "default".into(),
        minutes: 60,
        force: false,
    };
    api::auth::tokens::dev_token(database_url, &request, jiff::Timestamp::now().as_second())
        .expect("dev token")
}

/// A token issued at `now` (the server's clock, in seconds) that lasts ten years: the
/// clock of a test may move on by months.
fn token_at(database_url: &str, scope: &str, patient: Option<&str>, now: i64) -> String {
    let request = api::auth::tokens::DevToken {
        scope: scope.into(),
        patient: patient.map(str::to_string),
        tenant: "default".into(),
        minutes: 10 * 366 * 24 * 60,
        force: false,
    };
    api::auth::tokens::dev_token(database_url, &request, now).expect("dev token")
}

/// An HTTP client that sends this bearer token with every request.
pub fn client_with_token(token: &str) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header value"),
    );
    Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

impl TestServer {
    /// Stops the server and waits until it has (its background workers stop with it).
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> Response {
        self.client
            .post(self.url(path))
            .header("Content-Type", content_type)
            .body(body.to_string())
            .send()
            .await
            .expect("POST")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post_raw(path, FHIR_JSON, &body.to_string()).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .header("Content-Type", FHIR_JSON)
            .body(body.to_string())
            .send()
            .await
            .expect("PUT")
    }

    /// Creates a resource and returns it as stored.
    pub async fn create(&self, body: Value) -> Value {
        let t = body["resourceType"]
            .as_str()
            .expect("resourceType")
            .to_string();
        let res = self.post_json(&t, &body).await;
        assert_eq!(res.status(), StatusCode::CREATED, "create {t}");
        res.json().await.expect("json")
    }
}

/// The `id` of a resource.
pub fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// An instant such as `2026-03-02T12:00:00Z`.
pub fn at(s: &str) -> jiff::Timestamp {
    s.parse().expect("instant")
}

pub async fn json(res: Response) -> Value {
    res.json().await.expect("JSON body")
}

/// Asserts an OperationOutcome with the given status, returning its first issue.
pub async fn outcome(res: Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status);
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with(FHIR_JSON), "content type {ct}");
    let body: Value = res.json().await.expect("OperationOutcome JSON");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    body["issue"][0].clone()
}

/// An HTTP client with a token of another clinic, so of another client (`tenant/client`)
/// than the server's own `client`.
pub fn client_of_tenant(s: &TestServer, tenant: &str) -> Client {
    let request = api::auth::tokens::DevToken {
        scope: "system/*.cruds".into(),
        patient: None,
        tenant: tenant.into(),
        minutes: 60,
        force: false,
    };
    let token = api::auth::tokens::dev_token(
        &s.database_url,
        &request,
        jiff::Timestamp::now().as_second(),
    )
    .expect("dev token");
    client_with_token(&token)
}

/// Creates `n` Patients (named `Testperson`, identifiers `{prefix}-{i}`) in transaction
/// Bundles of 250.
pub async fn create_patients(s: &TestServer, prefix: &str, n: usize) {
    for start in (0..n).step_by(250) {
        let entries = (start..n.min(start + 250))
            .map(|i| post_entry(patient(&format!("{prefix}-{i}"))))
            .collect();
        let bundle = bundle("transaction", entries);
        let res = s.post_json("", &bundle).await;
        assert_eq!(res.status(), StatusCode::OK, "transaction of Patients");
    }
}

/// `name=v0,v1,...` with `n` values.
pub fn values(name: &str, prefix: &str, n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    format!("{name}={}", list.join(","))
}
