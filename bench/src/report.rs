//! BENCHMARKS.md and benchmarks.json.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::wrk::{Figures, Load};

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_mb: u64,
}

#[derive(Debug, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub title: String,
    pub target: String,
    pub figures: Figures,
    pub rss_after_kb: u64,
    pub rss_peak_kb: u64,
}

/// Programs seeded over HTTP for the session scenarios.
#[derive(Debug, Serialize)]
pub struct ProgramSeed {
    pub programs: usize,
    pub sessions: usize,
    /// Per program: the write that activated it and made its sessions.
    pub activation_ms: Vec<f64>,
}

/// Data seeded over HTTP for the search scenarios.
#[derive(Debug, Serialize)]
pub struct SearchSeed {
    pub patients: usize,
    pub tasks: usize,
    pub seconds: f64,
}

/// A scenario timed request by request.
#[derive(Debug, Serialize)]
pub struct TimedResult {
    pub name: String,
    pub title: String,
    pub target: String,
    pub runs_ms: Vec<f64>,
    pub detail: String,
    pub rss_after_kb: u64,
    pub rss_peak_kb: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub backend: String,
    pub machine: Machine,
    pub commit: String,
    pub date: String,
    pub load: Load,
    pub seeded_patients: usize,
    pub seed_seconds: f64,
    pub idle_rss_kb: u64,
    pub final_rss_kb: u64,
    pub peak_rss_kb: u64,
    pub ceiling: Figures,
    pub scenarios: Vec<ScenarioResult>,
    pub programs: Option<ProgramSeed>,
    pub search_seed: Option<SearchSeed>,
    pub timed: Vec<TimedResult>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Machine {
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        cpu,
        memory_mb: memory_kb / 1024,
    }
}

pub fn commit(root: &Path) -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

pub fn now_utc() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

impl Report {
    pub fn write(&self, dir: &Path) -> Result<PathBuf, String> {
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("benchmarks.json"), json + "\n").map_err(|e| e.to_string())?;
        let path = dir.join("BENCHMARKS.md");
        std::fs::write(&path, self.markdown()).map_err(|e| e.to_string())?;
        Ok(path)
    }

    fn markdown(&self) -> String {
        let mut s = String::new();
        let ceiling = self.ceiling.per_second();
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Written by `cargo run --release -p bench -- all` (see bench/README.md). Figures from one run; \
             on a shared machine absolute figures drift, the ratio to the ceiling less so.\n"
        );
        let _ = writeln!(s, "- Commit `{}`, {}", self.commit, self.date);
        let _ = writeln!(
            s,
            "- Machine: {} cores, {}, {} MB memory",
            self.machine.cores, self.machine.cpu, self.machine.memory_mb
        );
        let _ = writeln!(
            s,
            "- Database: {} (durable commits); server and load generator share the machine",
            self.backend
        );
        let _ = writeln!(
            s,
            "- Load: wrk, {} threads, {} keep-alive connections, {} s per scenario",
            self.load.threads,
            self.load.connections,
            self.load.duration.as_secs()
        );
        let _ = writeln!(
            s,
            "- Seed: {} Patients in {:.1} s over HTTP",
            self.seeded_patients, self.seed_seconds
        );
        let _ = writeln!(
            s,
            "- Server RSS: idle {} MB, after the run {} MB, peak {} MB\n",
            self.idle_rss_kb / 1024,
            self.final_rss_kb / 1024,
            self.peak_rss_kb / 1024
        );
        let _ = writeln!(
            s,
            "| scenario | requests/s | of ceiling | p50 ms | p95 ms | p99 ms | errors | RSS after / peak MB | target |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
        let _ = writeln!(
            s,
            "| ceiling: trivial actix-web endpoint, same bytes as a read | {:.0} | 100 % | {} | {} | {} | {} | | |",
            ceiling,
            ms(self.ceiling.p50_us),
            ms(self.ceiling.p95_us),
            ms(self.ceiling.p99_us),
            self.ceiling.errors()
        );
        for r in &self.scenarios {
            let f = &r.figures;
            let ratio = if ceiling > 0.0 {
                f.per_second() / ceiling * 100.0
            } else {
                0.0
            };
            let _ = writeln!(
                s,
                "| {} (`{}`) | {:.0} | {:.0} % | {} | {} | {} | {} | {} / {} | {} |",
                r.title,
                r.name,
                f.per_second(),
                ratio,
                ms(f.p50_us),
                ms(f.p95_us),
                ms(f.p99_us),
                f.errors(),
                r.rss_after_kb / 1024,
                r.rss_peak_kb / 1024,
                r.target
            );
        }
        if let Some(p) = &self.programs {
            let max = p.activation_ms.iter().copied().fold(0.0, f64::max);
            let _ = writeln!(
                s,
                "\nSeeded for the session scenarios: {} active programs (each of a patient of its own, not one of the seeded patients above) of 10 daily exercises over 12 weeks \
                 ({} sessions, Tasks). Activating one (the write that makes its 840 sessions): median {:.0} ms, max {:.0} ms.",
                p.programs,
                p.sessions,
                median(&p.activation_ms),
                max
            );
        }
        if let Some(d) = &self.search_seed {
            let _ = writeln!(
                s,
                "\nSeeded for the search scenarios: {} Tasks for {} patients (one transaction per patient with a \
                 CarePlan of 3 ServiceRequests), in {:.0} s ({:.0} Tasks / s).",
                d.tasks,
                d.patients,
                d.seconds,
                d.tasks as f64 / d.seconds.max(0.001)
            );
        }
        if !self.timed.is_empty() {
            let _ = writeln!(
                s,
                "\n| timed one at a time | runs (ms) | median ms | RSS after / peak MB | detail | target |"
            );
            let _ = writeln!(s, "|---|---|---:|---:|---|---|");
            for t in &self.timed {
                let runs: Vec<String> = t.runs_ms.iter().map(|r| format!("{r:.0}")).collect();
                let _ = writeln!(
                    s,
                    "| {} (`{}`) | {} | {:.0} | {} / {} | {} | {} |",
                    t.title,
                    t.name,
                    runs.join(", "),
                    median(&t.runs_ms),
                    t.rss_after_kb / 1024,
                    t.rss_peak_kb / 1024,
                    t.detail,
                    t.target
                );
            }
        }
        s
    }
}
