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
    /// On PostgreSQL, the thread that runs the server (its accept loop), so that dropping
    /// the server can wait until it has stopped; on SQLite the server runs on the test's
    /// runtime and ends with it, as it always has.
    thread: Option<std::thread::JoinHandle<()>>,
    /// Dropped after the server stopped (fields drop after `drop`).
    _schema: Option<Schema>,
    _dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match self.thread.take() {
            Some(thread) => {
                // The stop is sent at once; the thread ends when the server has stopped.
                drop(self.handle.stop(false));
                // Err: the thread panicked (and printed why); it has ended all the same.
                let _ = thread.join();
            }
            None => {
                let handle = self.handle.clone();
                // Stopping is asynchronous; the runtime finishes it or ends with the test.
                drop(tokio::spawn(async move { handle.stop(false).await }));
            }
        }
    }
}

/// The PostgreSQL schema of one test, dropped with it once the connections of its
/// servers have closed (`api::db::drop_test_schema` knows them by their
/// `application_name`, the schema's name).
struct Schema {
    admin_url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let dropped = api::db::drop_test_schema(&self.admin_url, &self.name);
        // In a test that fails already, a second panic would abort the run and hide why.
        if !std::thread::panicking() {
            dropped.expect("drop the test schema");
        }
    }
}

/// The database for one test: a fresh PostgreSQL schema when `HEP_TEST_DATABASE_URL`
/// names a server, else a fresh SQLite file.
fn database(dir: &tempfile::TempDir) -> (String, Option<Schema>) {
    match std::env::var("HEP_TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let name = format!("t_{}", uuid::Uuid::new_v4().simple());
            let url = api::db::create_test_schema(&admin_url, &name).expect("create test schema");
            (url, Some(Schema { admin_url, name }))
        }
        _ => (dir.path().join("test.db").display().to_string(), None),
    }
}

pub async fn start() -> TestServer {
    start_with(|_| {}, Arc::new(SystemClock)).await
}

pub async fn start_with(adjust: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, schema) = database(&dir);
    let mut config = Config::for_database(&url);
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
    // Stopped while the test goes on, a server on SQLite could make a restart on the same
    // file fail (`database is locked` as its last connections close): only a server on
    // PostgreSQL, whose schema is dropped after it, is stopped and waited for when dropped.
    let thread = match api::db::Backend::of_url(&database_url) {
        api::db::Backend::Postgres => Some(
            std::thread::Builder::new()
                .name("test-server".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("server runtime");
                    // Err: the server could not run; the test's requests fail and say so.
                    let _ = runtime.block_on(server);
                })
                .expect("server thread"),
        ),
        api::db::Backend::Sqlite => {
            tokio::spawn(server);
            None
        }
    };
    TestServer {
        base: format!("http://{addr}/fhir"),
        client: client_with_token(&token_at(&database_url, "system/*.cruds", None, clock_now)),
        database_url,
        export_dir,
        handle,
        thread,
        _schema: schema,
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
pub fn token_at(database_url: &str, scope: &str, patient: Option<&str>, now: i64) -> String {
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
    let got = res.status();
    if got != status {
        let body = res.text().await.unwrap_or_default();
        panic!("expected {status}, got {got}: {body}");
    }
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
