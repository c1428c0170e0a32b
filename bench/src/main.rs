//! Benchmark harness: builds and starts the release server on a fresh database, seeds
//! realistic data over HTTP, drives each scenario with wrk (keep-alive connections, a
//! separate process), measures the same load against a trivial actix-web endpoint that
//! returns the bytes of the read scenario (the machine's ceiling), and writes
//! BENCHMARKS.md and benchmarks.json.
//!
//! `cargo run --release -p bench -- all` (or scenario names; `--help` for options).

mod report;
mod server;
mod wrk;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use serde_json::{Value, json};

use report::{Report, ScenarioResult};
use wrk::{Load, Script};

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "bench", about = "HEP FHIR server benchmarks")]
struct Args {
    /// Scenarios to run (`all`, or names from `--list`).
    scenarios: Vec<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Database for the server: a PostgreSQL URL (an empty schema is created in it), or
    /// nothing for a fresh SQLite file.
    #[arg(long, env = "HEP_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Seconds of load per scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Open keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Patients seeded before the scenarios run.
    #[arg(long, default_value_t = 2000)]
    patients: usize,
    /// The server binary (default: build it with `cargo build --release`).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Where to write BENCHMARKS.md and benchmarks.json (default: the workspace root).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Internal: serve the ceiling endpoint (used by the harness itself).
    #[arg(long, hide = true, num_args = 2, value_names = ["PORT", "BODY_FILE"])]
    serve_ceiling: Option<Vec<String>>,
}

/// One scenario: what it sends and the target it is held to.
struct Scenario {
    name: &'static str,
    title: &'static str,
    target: &'static str,
    script: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "read",
        title: "Read Patient by id",
        target: ">= 50 % of the ceiling, p99 < 5 ms",
        script: include_str!("../lua/read.lua"),
    },
    Scenario {
        name: "create-patient",
        title: "Create Patient (durable)",
        target: ">= 3,000 / s",
        script: include_str!("../lua/create_patient.lua"),
    },
    Scenario {
        name: "create-task",
        title: "Create Task referencing a Patient (durable)",
        target: ">= 3,000 / s",
        script: include_str!("../lua/create_task.lua"),
    },
    Scenario {
        name: "update-if-match",
        title: "Update Patient with If-Match (durable)",
        target: "(none set)",
        script: include_str!("../lua/update_if_match.lua"),
    },
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(v) = &args.serve_ceiling {
        return match server::serve_ceiling(&v[0], Path::new(&v[1])) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ceiling server: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if args.list {
        for s in SCENARIOS {
            println!("{:<16} {}  (target {})", s.name, s.title, s.target);
        }
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(path) => {
            println!("wrote {}", path.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<PathBuf, String> {
    let selected: Vec<&Scenario> =
        if args.scenarios.is_empty() || args.scenarios.iter().any(|s| s == "all") {
            SCENARIOS.iter().collect()
        } else {
            let mut v = Vec::new();
            for name in &args.scenarios {
                v.push(
                    SCENARIOS
                        .iter()
                        .find(|s| s.name == name)
                        .ok_or_else(|| format!("unknown scenario `{name}` (see --list)"))?,
                );
            }
            v
        };
    wrk::check_installed()?;
    let server_bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => server::build_release(&workspace_root())?,
    };
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (database_url, backend) = match &args.database_url {
        Some(url) => {
            let schema = format!("bench_{}", std::process::id());
            let url = api::db::create_test_schema(url, &schema).map_err(|e| e.to_string())?;
            (url, "PostgreSQL")
        }
        None => (work.path().join("bench.db").display().to_string(), "SQLite"),
    };
    let hep = server::Server::start(&server_bin, &database_url).await?;
    let idle_rss = hep.rss();
    println!(
        "server up on {} ({backend}), idle RSS {} kB",
        hep.base, idle_rss.current_kb
    );

    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let ids = seed_patients(&client, &hep.base, args.patients).await?;
    let seed_secs = started.elapsed().as_secs_f64();
    println!("seeded {} patients in {seed_secs:.1}s", ids.len());
    let sample = client
        .get(format!("{}/Patient/{}", hep.base, ids[0]))
        .header("Accept", "application/fhir+json")
        .send()
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;

    let load = Load {
        duration: Duration::from_secs(args.duration),
        connections: args.connections,
        threads: args.threads,
    };
    let ids_lua = ids
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(",");
    let run_tag = format!("r{}", std::process::id());
    let prelude = format!(
        "IDS = {{{ids_lua}}}\nTHREADS = {}\nRUN = \"{run_tag}\"\nPATH_PREFIX = \"/fhir/Patient/\"\n",
        args.threads
    );

    // The ceiling: the same bytes as a read, from a trivial actix-web endpoint.
    let body_file = work.path().join("ceiling-body.json");
    std::fs::write(&body_file, &sample).map_err(|e| e.to_string())?;
    let ceiling = server::Ceiling::start(&body_file).await?;
    let read_script = Script::new(
        work.path(),
        "ceiling",
        &prelude,
        include_str!("../lua/read.lua"),
    )?;
    println!("running ceiling");
    let ceiling_result = wrk::run(&ceiling.url(), &read_script, &load)?;
    drop(ceiling);

    let mut results = Vec::new();
    for s in selected {
        let script = Script::new(work.path(), s.name, &prelude, s.script)?;
        println!("running {}", s.name);
        let figures = wrk::run(&format!("{}/", hep.base), &script, &load)?;
        let rss = hep.rss();
        results.push(ScenarioResult {
            name: s.name.to_string(),
            title: s.title.to_string(),
            target: s.target.to_string(),
            figures,
            rss_after_kb: rss.current_kb,
            rss_peak_kb: rss.peak_kb,
        });
    }
    let final_rss = hep.rss();
    hep.stop();

    let report = Report {
        backend: backend.to_string(),
        machine: report::machine(),
        commit: report::commit(&workspace_root()),
        date: report::now_utc(),
        load,
        seeded_patients: ids.len(),
        seed_seconds: seed_secs,
        idle_rss_kb: idle_rss.current_kb,
        final_rss_kb: final_rss.current_kb,
        peak_rss_kb: final_rss.peak_kb,
        ceiling: ceiling_result,
        scenarios: results,
    };
    let out = args.output_dir.unwrap_or_else(workspace_root);
    report.write(&out)
}

/// Creates `n` patients with 16 concurrent requests; returns their ids.
async fn seed_patients(
    client: &reqwest::Client,
    base: &str,
    n: usize,
) -> Result<Vec<String>, String> {
    let bodies = (0..n).map(|i| {
        json!({
            "resourceType": "Patient",
            "identifier": [{"system": "urn:bench:seed", "value": format!("seed-{i}")}],
            "active": true,
            "name": [{"use": "official", "family": format!("Seedfamily{}", i % 97), "given": ["Alex", "J"]}],
            "telecom": [{"system": "phone", "value": "555-0100", "use": "mobile"}],
            "gender": if i % 2 == 0 { "female" } else { "male" },
            "birthDate": format!("19{:02}-0{}-1{}", 40 + i % 60, 1 + i % 9, i % 10),
            "address": [{"line": ["1 Main St"], "city": "Springfield", "postalCode": "01101", "country": "US"}]
        })
    });
    let results: Vec<Result<String, String>> = futures_util::stream::iter(bodies)
        .map(|body| {
            let client = client.clone();
            let url = format!("{base}/Patient");
            async move {
                let res = client
                    .post(url)
                    .header("Content-Type", "application/fhir+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if res.status().as_u16() != 201 {
                    return Err(format!("seeding answered {}", res.status()));
                }
                let v: Value = res.json().await.map_err(|e| e.to_string())?;
                v["id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "created resource has no id".to_string())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}
