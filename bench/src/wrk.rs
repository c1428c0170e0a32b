//! Runs wrk (a maintained HTTP load generator, from the distribution's packages) with a
//! Lua scenario and reads the figures it prints.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How much load.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Load {
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub connections: u32,
    pub threads: u32,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// A scenario script on disk: the shared Lua, the harness's data, the scenario.
pub struct Script {
    path: PathBuf,
}

impl Script {
    pub fn new(dir: &Path, name: &str, prelude: &str, body: &str) -> Result<Script, String> {
        let path = dir.join(format!("{name}.lua"));
        let text = format!("{}\n{prelude}\n{body}", include_str!("../lua/common.lua"));
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Ok(Script { path })
    }
}

/// What wrk measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figures {
    pub requests: u64,
    pub duration_us: u64,
    pub connect_errors: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    pub status_errors: u64,
    pub timeouts: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Figures {
    pub fn per_second(&self) -> f64 {
        if self.duration_us == 0 {
            0.0
        } else {
            self.requests as f64 * 1_000_000.0 / self.duration_us as f64
        }
    }

    pub fn errors(&self) -> u64 {
        self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.status_errors
            + self.timeouts
    }
}

pub fn check_installed() -> Result<(), String> {
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(_) => Err("wrk is not installed (Debian/Ubuntu: apt-get install wrk)".into()),
    }
}

pub fn run(url: &str, script: &Script, load: &Load) -> Result<Figures, String> {
    let out = Command::new("wrk")
        .arg(format!("--threads={}", load.threads))
        .arg(format!("--connections={}", load.connections))
        .arg(format!("--duration={}s", load.duration.as_secs()))
        .arg("--timeout=10s")
        .arg(format!("--script={}", script.path.display()))
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_RESULT "))
        .ok_or_else(|| {
            format!(
                "wrk printed no result:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    serde_json::from_str(line).map_err(|e| format!("unreadable wrk result `{line}`: {e}"))
}
