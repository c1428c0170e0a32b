//! The processes under test: the release hep-server, and the ceiling endpoint.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Builds the release server binary and returns its path.
pub fn build_release(root: &Path) -> Result<PathBuf, String> {
    println!("building the release server (cargo build --release -p api)");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "api", "--bin", "hep-server"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build --release failed".into());
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    Ok(target.join("release").join("hep-server"))
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

async fn wait_ready(url: &str, child: &mut Child) -> Result<(), String> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the server exited during start-up: {status}"));
        }
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{url} did not answer within 60 s"))
}

/// Resident memory of a process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    pub current_kb: u64,
    pub peak_kb: u64,
}

pub fn rss_of(pid: u32) -> Rss {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Rss {
        current_kb: field("VmRSS:"),
        peak_kb: field("VmHWM:"),
    }
}

/// A running hep-server.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub async fn start(
        bin: &Path,
        database_url: &str,
        export_dir: &Path,
    ) -> Result<Server, String> {
        let port = free_port()?;
        let mut child = Command::new(bin)
            .env("HEP_BIND", format!("127.0.0.1:{port}"))
            .env("HEP_DATABASE_URL", database_url)
            .env("HEP_EXPORT_DIR", export_dir)
            // the subscription scenario's receiver listens on this machine
            .env("HEP_SUBSCRIPTION_ALLOW_LOOPBACK", "true")
            .env("RUST_LOG", "warn")
            // the load comes from one client at a rate far above a clinic's
            .env("HEP_RATE_LIMIT_PER_SECOND", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let base = format!("http://127.0.0.1:{port}/fhir");
        wait_ready(&format!("{base}/metadata"), &mut child).await?;
        Ok(Server { child, base })
    }

    pub fn rss(&self) -> Rss {
        rss_of(self.child.id())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops with SIGTERM (graceful), then waits.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The trivial endpoint, run as a child process of this harness.
pub struct Ceiling {
    child: Child,
    port: u16,
}

impl Ceiling {
    pub async fn start(body_file: &Path) -> Result<Ceiling, String> {
        let port = free_port()?;
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(me)
            .arg("--serve-ceiling")
            .arg(port.to_string())
            .arg(body_file)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        wait_ready(
            &format!("http://127.0.0.1:{port}/fhir/metadata"),
            &mut child,
        )
        .await?;
        Ok(Ceiling { child, port })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `body_file` for every request, with the same worker count as hep-server.
pub fn serve_ceiling(port: &str, body_file: &Path) -> Result<(), String> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let body = web::Bytes::from(std::fs::read(body_file).map_err(|e| e.to_string())?);
    let addr = format!("127.0.0.1:{port}");
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let body = body.clone();
            App::new().default_service(web::to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/fhir+json; charset=utf-8")
                        .body(body)
                }
            }))
        })
        .bind(&addr)
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())
    })
}
