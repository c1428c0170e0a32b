//! Benchmark harness: builds and starts the release server on a fresh database, seeds
//! realistic data over HTTP, drives each scenario with wrk (keep-alive connections, a
//! separate process), measures the same load against a trivial actix-web endpoint that
//! returns the bytes of the read scenario (the machine's ceiling), and writes
//! BENCHMARKS.md and benchmarks.json.
//!
//! `cargo run --release -p bench -- all` (or scenario names; `--help` for options).

mod attacks;
mod report;
mod server;
mod signin;
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
    /// Active programs seeded for the session scenarios (840 sessions each).
    #[arg(long, default_value_t = 40)]
    programs: usize,
    /// Tasks seeded per patient for the search scenarios (5,000 patients x 200 = 1 M).
    #[arg(long, default_value_t = 200)]
    tasks_per_patient: usize,
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

/// What a scenario needs seeded besides the Patients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Patients,
    /// Active 12-week programs of 10 daily exercises (840 sessions each).
    Programs,
    /// Per patient: a CarePlan of 3 ServiceRequests and `--tasks-per-patient` Tasks
    /// (half completed, with their execution periods over the last 200 days).
    SearchData,
}

/// One scenario: what it sends and the target it is held to.
struct Scenario {
    name: &'static str,
    title: &'static str,
    target: &'static str,
    script: &'static str,
    needs: Needs,
    /// Connections for this scenario instead of `--connections` (a latency target is
    /// measured with as many clients as wrk threads, not under saturation).
    connections: Option<u32>,
}

/// Scenarios timed request by request (one at a time) rather than under load.
struct Timed {
    name: &'static str,
    title: &'static str,
    target: &'static str,
}

const TIMED: &[Timed] = &[
    Timed {
        name: "export",
        title: "$export of the whole clinic (Bulk Data, NDJSON files; the search data: over 1 M resources with --patients 5000), kick-off to manifest",
        target: ">= 50,000 resources / s, server RSS < 200 MB",
    },
    Timed {
        name: "subscriptions",
        title: "Subscription notifications: 1,000 active subscriptions (topic `program`, one patient each, id-only, rest-hook to a local receiver); 5,000 CarePlans written by 16 clients; latency from the event's time (read in the write's transaction) to its arrival",
        target: "(none set: p50 / p99 latency and events / s reported)",
    },
    Timed {
        name: "clinic-adherence",
        title: "$adherence of a clinic: 5,000 active patients, 10 daily exercises, last 28 days (1.4 M sessions)",
        target: "< 2 s",
    },
    Timed {
        name: "clinic-rtm",
        title: "$rtm of a clinic: 5,000 patients in remote therapeutic monitoring, one 30-day period (30 daily sessions, 3 logged times and 2 messages each)",
        target: "< 2 s",
    },
    Timed {
        name: "sign-in",
        title: "People's sign-in: 20 standalone launches of a patient app (authorize, sign-in page with an Argon2 check, consent, code for tokens; the first redeems an invitation), then 8 sign-ins refreshing their rotating tokens at once for 5 s",
        target: "(none set: launch time and refreshes / s reported)",
    },
    Timed {
        name: "attack-patch",
        title: "Attack: a JSON Patch of 22 `copy` operations that each double the document (1.4 kB)",
        target: "a bounded answer; server RSS stays near idle",
    },
    Timed {
        name: "attack-batch",
        title: "Attack: a 7 kB batch of 100 × `GET ActivityDefinition?_count=1000` over 1,000 ActivityDefinitions of 8 kB",
        target: "a bounded answer; server RSS stays near idle",
    },
    Timed {
        name: "attack-repeated-params",
        title: "Attack: 4 concurrent `Patient?name=Alex` with the parameter 200 times (every Patient matches); another client reads a Patient by id meanwhile (the figure: its worst read)",
        target: "the other client's reads unaffected",
    },
    Timed {
        name: "synthea-import",
        title: "Import of the Synthea transaction Bundles (shared/data/synthea-r4: 22 Bundles, 7,541 resources, urn:uuid references), 2 at a time, durable",
        target: ">= 5,000 resources / s",
    },
];

/// Exercises per seeded program, and its weeks.
const PROGRAM_EXERCISES: usize = 10;
const PROGRAM_WEEKS: u32 = 12;

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "read",
        title: "Read Patient by id",
        target: ">= 50 % of the ceiling, p99 < 5 ms",
        script: include_str!("../lua/read.lua"),
        needs: Needs::Patients,
        connections: None,
    },
    Scenario {
        name: "create-patient",
        title: "Create Patient (durable)",
        target: ">= 3,000 / s",
        script: include_str!("../lua/create_patient.lua"),
        needs: Needs::Patients,
        connections: None,
    },
    Scenario {
        name: "create-task",
        title: "Create Task referencing a Patient (durable)",
        target: ">= 3,000 / s",
        script: include_str!("../lua/create_task.lua"),
        needs: Needs::Patients,
        connections: None,
    },
    Scenario {
        name: "update-if-match",
        title: "Update Patient with If-Match (durable)",
        target: "(none set)",
        script: include_str!("../lua/update_if_match.lua"),
        needs: Needs::Patients,
        connections: None,
    },
    Scenario {
        name: "adherence-program",
        title: "$adherence of a 12-week program of 10 daily exercises (840 sessions)",
        target: "p99 < 5 ms",
        script: include_str!("../lua/adherence_program.lua"),
        needs: Needs::Programs,
        connections: Some(2),
    },
    Scenario {
        name: "referral-transaction",
        title: "Referral transaction of 6 conditional creates with urn:uuid references (durable)",
        target: ">= 1,000 / s",
        script: include_str!("../lua/referral_transaction.lua"),
        needs: Needs::Patients,
        connections: None,
    },
    Scenario {
        name: "search-tasks",
        title: "Task?patient=..&status=completed&period=ge(30 days ago), first page with total, over 200 Tasks per patient (1 M with --patients 5000)",
        target: "p99 < 5 ms",
        script: include_str!("../lua/search_tasks.lua"),
        needs: Needs::SearchData,
        connections: Some(2),
    },
    Scenario {
        name: "search-careplan-include",
        title: "CarePlan?patient=..&_include=CarePlan:activity-reference (1 CarePlan + 3 ServiceRequests per patient)",
        target: ">= 3,000 / s",
        script: include_str!("../lua/search_careplan_include.lua"),
        needs: Needs::SearchData,
        connections: None,
    },
    Scenario {
        name: "score-response",
        title: "Answer an outcome measure: a QuestionnaireResponse of the 20-item LEFS checked against its Questionnaire and scored into an Observation in the same transaction (durable)",
        target: ">= 1,000 / s",
        script: include_str!("../lua/score_response.lua"),
        needs: Needs::Patients,
        connections: None,
    },
    Scenario {
        name: "complete-session",
        title: "Complete a session with JSON Patch (durable; the pain score becomes an Observation)",
        target: ">= 2,000 / s",
        script: include_str!("../lua/complete_session.lua"),
        needs: Needs::Programs,
        connections: None,
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
            println!("{:<18} {}  (target {})", s.name, s.title, s.target);
        }
        for t in TIMED {
            println!("{:<18} {}  (target {})", t.name, t.title, t.target);
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
    let all = args.scenarios.is_empty() || args.scenarios.iter().any(|s| s == "all");
    let mut selected: Vec<&Scenario> = Vec::new();
    let mut timed: Vec<&Timed> = Vec::new();
    if all {
        selected = SCENARIOS.iter().collect();
        timed = TIMED.iter().collect();
    } else {
        for name in &args.scenarios {
            match (
                SCENARIOS.iter().find(|s| s.name == name),
                TIMED.iter().find(|t| t.name == name),
            ) {
                (Some(s), _) => selected.push(s),
                (None, Some(t)) => timed.push(t),
                (None, None) => return Err(format!("unknown scenario `{name}` (see --list)")),
            }
        }
    }
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
    let export_dir = work.path().join("exports");
    let hep = server::Server::start(&server_bin, &database_url, &export_dir).await?;
    let idle_rss = hep.rss();
    println!(
        "server up on {} ({backend}), idle RSS {} kB",
        hep.base, idle_rss.current_kb
    );

    // a token for the whole run, as `hep-server dev-token` makes it
    let token = api::auth::tokens::dev_token(
        &database_url,
        &api::auth::tokens::DevToken {
            scope: "system/*.cruds".into(),
            patient: None,
            tenant: "default".into(),
            minutes: 24 * 60,
            force: true,
        },
        jiff::Timestamp::now().as_second(),
    )
    .map_err(|e| e.to_string())?;
    let client = client_of(&token)?;
    let started = std::time::Instant::now();
    let ids = seed_patients(&client, &hep.base, "seed", args.patients).await?;
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
    let mut prelude = format!(
        "IDS = {{{ids_lua}}}\nTHREADS = {}\nRUN = \"{run_tag}\"\nPATH_PREFIX = \"/fhir/Patient/\"\nTOKEN = \"{token}\"\n",
        args.threads
    );
    let mut programs = None;
    if selected.iter().any(|s| s.needs == Needs::Programs) {
        let started = std::time::Instant::now();
        // patients of their own: the search scenarios' patients keep the shape they
        // are described with (200 Tasks each), without 840 sessions more for some
        let program_patients =
            seed_patients(&client, &hep.base, "program", args.programs.max(1)).await?;
        let seeded = seed_programs(&client, &hep.base, &program_patients, args.programs).await?;
        println!(
            "seeded {} programs ({} sessions) in {:.1}s",
            seeded.plans.len(),
            seeded.tasks.len(),
            started.elapsed().as_secs_f64()
        );
        let tasks_file = work.path().join("tasks.txt");
        std::fs::write(&tasks_file, seeded.tasks.join("\n") + "\n").map_err(|e| e.to_string())?;
        prelude.push_str(&format!(
            "PLAN = \"{}\"\nTASKS = {{}}\nfor line in io.lines(\"{}\") do TASKS[#TASKS + 1] = line end\n",
            seeded.plans[0],
            tasks_file.display()
        ));
        programs = Some(report::ProgramSeed {
            programs: seeded.plans.len(),
            sessions: seeded.tasks.len(),
            activation_ms: seeded.activation_ms,
        });
    }

    // the search scenarios run last, on their own million Tasks: seeded only then, so
    // that the other scenarios run on the database they always had
    selected.sort_by_key(|s| s.needs == Needs::SearchData);
    let since = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(30 * 24))
        .map_err(|e| e.to_string())?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    prelude.push_str(&format!("SINCE = \"{since}\"\n"));
    let mut search_seed = None;

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
        if s.needs == Needs::SearchData && search_seed.is_none() {
            let started = std::time::Instant::now();
            let tasks = seed_search_data(&client, &hep.base, &ids, args.tasks_per_patient).await?;
            let secs = started.elapsed().as_secs_f64();
            println!("seeded {tasks} Tasks for the search scenarios in {secs:.1}s");
            search_seed = Some(report::SearchSeed {
                patients: ids.len(),
                tasks,
                seconds: secs,
            });
        }
        let script = Script::new(work.path(), s.name, &prelude, s.script)?;
        println!("running {}", s.name);
        let scenario_load = Load {
            connections: s.connections.unwrap_or(load.connections),
            ..load
        };
        let figures = wrk::run(&format!("{}/", hep.base), &script, &scenario_load)?;
        let rss = hep.rss();
        results.push(ScenarioResult {
            name: s.name.to_string(),
            title: s.title.to_string(),
            target: match s.connections {
                Some(c) => format!("{} ({c} connections)", s.target),
                None => s.target.to_string(),
            },
            figures,
            rss_after_kb: rss.current_kb,
            rss_peak_kb: rss.peak_kb,
        });
    }
    let mut timed_results = Vec::new();
    for t in timed {
        if t.name == "export" && search_seed.is_none() {
            let started = std::time::Instant::now();
            let tasks = seed_search_data(&client, &hep.base, &ids, args.tasks_per_patient).await?;
            let secs = started.elapsed().as_secs_f64();
            println!("seeded {tasks} Tasks for the export in {secs:.1}s");
            search_seed = Some(report::SearchSeed {
                patients: ids.len(),
                tasks,
                seconds: secs,
            });
        }
        println!("running {}", t.name);
        let runs = match t.name {
            "export" => export(&client, &hep).await?,
            "subscriptions" => subscriptions(&client, &hep.base, &ids).await?,
            "clinic-adherence" => clinic_adherence(&client, &hep.base, &database_url, &ids).await?,
            "clinic-rtm" => clinic_rtm(&client, &hep.base, &database_url, &ids).await?,
            "synthea-import" => synthea_import(&client, &hep.base).await?,
            "sign-in" => {
                let (runs_ms, detail) = signin::launches(&client, &hep.base, &database_url).await?;
                TimedRuns { runs_ms, detail }
            }
            "attack-patch" => attacks::patch_doubling(&client, &hep.base, &hep).await?,
            "attack-batch" => attacks::batch_searches(&client, &hep.base, &hep).await?,
            "attack-repeated-params" => {
                let victim = client_of(&token_of(&database_url, "bench-other-client")?)?;
                attacks::repeated_parameters(&client, &victim, &hep.base, &ids[0]).await?
            }
            other => return Err(format!("no runner for `{other}`")),
        };
        let rss = hep.rss();
        timed_results.push(report::TimedResult {
            name: t.name.to_string(),
            title: t.title.to_string(),
            target: t.target.to_string(),
            runs_ms: runs.runs_ms,
            detail: runs.detail,
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
        programs,
        search_seed,
        timed: timed_results,
    };
    let out = args.output_dir.unwrap_or_else(workspace_root);
    report.write(&out)
}

/// A token of the run's database for the client `sub` (as `hep-server dev-token`
/// signs one, for another client than the run's own).
fn token_of(database_url: &str, sub: &str) -> Result<String, String> {
    let db = api::db::Db::open(database_url, 1).map_err(|e| e.to_string())?;
    let keys = db
        .write(api::auth::tokens::TokenKeys::of_database)
        .map_err(|e| e.to_string())?;
    let now = jiff::Timestamp::now().as_second();
    keys.issue(&api::auth::tokens::Claims {
        iss: api::auth::tokens::ISSUER.into(),
        aud: api::auth::tokens::ISSUER.into(),
        sub: sub.into(),
        iat: now,
        exp: now + 3600,
        jti: format!("{sub}-{now}"),
        scope: "system/*.cruds".into(),
        tenant: "default".into(),
        patient: None,
        fhir_user: None,
        sid: None,
    })
    .map_err(|e| e.to_string())
}

/// An HTTP client that sends `token` with every request.
fn client_of(token: &str) -> Result<reqwest::Client, String> {
    let mut auth = reqwest::header::HeaderMap::new();
    auth.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}")
            .parse()
            .map_err(|_| "token header".to_string())?,
    );
    reqwest::Client::builder()
        .default_headers(auth)
        .build()
        .map_err(|e| e.to_string())
}

/// Creates `n` patients with 16 concurrent requests (identifiers `<kind>-<i>`); returns
/// their ids.
async fn seed_patients(
    client: &reqwest::Client,
    base: &str,
    kind: &str,
    n: usize,
) -> Result<Vec<String>, String> {
    let bodies = (0..n).map(|i| {
        json!({
            "resourceType": "Patient",
            "identifier": [{"system": "urn:bench:seed", "value": format!("{kind}-{i}")}],
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
                    let status = res.status();
                    let text = res.text().await.unwrap_or_default();
                    return Err(format!("seeding answered {status}: {text}"));
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

/// Seeded programs: their ids, the ids of their sessions, and how long each
/// activation (the write that makes its 840 sessions) took.
struct Programs {
    plans: Vec<String>,
    tasks: Vec<String>,
    activation_ms: Vec<f64>,
}

async fn post(client: &reqwest::Client, url: String, body: &Value) -> Result<Value, String> {
    let res = client
        .post(url)
        .header("Content-Type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status().as_u16() != 201 {
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        return Err(format!("seeding answered {status}: {text}"));
    }
    res.json().await.map_err(|e| e.to_string())
}

/// A seeded program: its id, its sessions, and how long its activation took (ms).
type SeededProgram = (String, Vec<String>, f64);

/// Creates `n` active 12-week programs of 10 daily exercises over HTTP, 4 at a time.
async fn seed_programs(
    client: &reqwest::Client,
    base: &str,
    patients: &[String],
    n: usize,
) -> Result<Programs, String> {
    const BASE: &str = "https://hep-fhir.org/fhir";
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let last = today
        .checked_add(jiff::Span::new().days(i64::from(PROGRAM_WEEKS) * 7 - 1))
        .map_err(|e| e.to_string())?;
    let (today, last) = (today.to_string(), last.to_string());
    let results: Vec<Result<SeededProgram, String>> =
        futures_util::stream::iter(0..n)
            .map(|i| {
                let client = client.clone();
                let patient = patients[i % patients.len()].clone();
                let (today, last) = (today.clone(), last.clone());
                async move {
                    let mut exercises = Vec::new();
                    for e in 0..PROGRAM_EXERCISES {
                        let sr = json!({
                            "resourceType": "ServiceRequest",
                            "meta": {"profile": [format!("{BASE}/StructureDefinition/hep-exercise-prescription")]},
                            "extension": [{"url": format!("{BASE}/StructureDefinition/exercise-dosage"), "extension": [
                                {"url": "sets", "valuePositiveInt": 3},
                                {"url": "repetitions", "valuePositiveInt": 10}]}],
                            "instantiatesCanonical": [format!("{BASE}/ActivityDefinition/bridge|1.0.0")],
                            "status": "active", "intent": "order",
                            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "229065009"}]}],
                            "code": {"text": format!("Exercise {e}")},
                            "subject": {"reference": format!("Patient/{patient}")},
                            "occurrenceTiming": {"repeat": {"boundsPeriod": {"start": today, "end": last},
                                "frequency": 1, "period": 1, "periodUnit": "d"}},
                            "performer": [{"reference": format!("Patient/{patient}")}]
                        });
                        let created = post(&client, format!("{base}/ServiceRequest"), &sr).await?;
                        exercises.push(created["id"].as_str().unwrap_or_default().to_string());
                    }
                    let plan = json!({
                        "resourceType": "CarePlan",
                        "meta": {"profile": [format!("{BASE}/StructureDefinition/hep-program")]},
                        "status": "active", "intent": "plan",
                        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "229065009"}]}],
                        "title": "Benchmark program",
                        "subject": {"reference": format!("Patient/{patient}")},
                        "activity": exercises.iter().map(|id| json!({"reference": {"reference": format!("ServiceRequest/{id}")}})).collect::<Vec<_>>()
                    });
                    let started = std::time::Instant::now();
                    let created = post(&client, format!("{base}/CarePlan"), &plan).await?;
                    let activation_ms = started.elapsed().as_secs_f64() * 1000.0;
                    let plan_id = created["id"].as_str().unwrap_or_default().to_string();
                    let bundle: Value = client
                        .get(format!("{base}/Task?based-on=CarePlan/{plan_id}&_count=1000"))
                        .header("Accept", "application/fhir+json")
                        .send()
                        .await
                        .map_err(|e| e.to_string())?
                        .json()
                        .await
                        .map_err(|e| e.to_string())?;
                    let tasks: Vec<String> = bundle["entry"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
                        .collect();
                    Ok((plan_id, tasks, activation_ms))
                }
            })
            .buffer_unordered(4)
            .collect()
            .await;
    let mut out = Programs {
        plans: Vec::new(),
        tasks: Vec::new(),
        activation_ms: Vec::new(),
    };
    for r in results {
        let (plan, tasks, ms) = r?;
        if tasks.len() != PROGRAM_EXERCISES * PROGRAM_WEEKS as usize * 7 {
            return Err(format!("program {plan} has {} sessions", tasks.len()));
        }
        out.plans.push(plan);
        out.tasks.extend(tasks);
        out.activation_ms.push(ms);
    }
    Ok(out)
}

/// Seeds, for each patient, one transaction: a CarePlan whose activities are 3
/// ServiceRequests, and `per_patient` Tasks based on it (status completed for half of
/// them, with an execution period on one of the last 200 days; requested or failed for
/// the others). Four transactions at a time; returns the number of Tasks.
async fn seed_search_data(
    client: &reqwest::Client,
    base: &str,
    patients: &[String],
    per_patient: usize,
) -> Result<usize, String> {
    let now = jiff::Timestamp::now();
    let results: Vec<Result<usize, String>> = futures_util::stream::iter(patients.iter().enumerate())
        .map(|(n, patient)| {
            let client = client.clone();
            let subject = json!({"reference": format!("Patient/{patient}")});
            let mut entries = Vec::with_capacity(per_patient + 4);
            for e in 0..3 {
                entries.push(json!({
                    "fullUrl": format!("urn:uuid:00000000-0000-4000-8000-00000000000{e}"),
                    "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                        "code": {"text": format!("Exercise {e}")}, "subject": subject},
                    "request": {"method": "POST", "url": "ServiceRequest"}
                }));
            }
            let plan_urn = "urn:uuid:00000000-0000-4000-8000-000000000010";
            entries.push(json!({
                "fullUrl": plan_urn,
                "resource": {"resourceType": "CarePlan", "status": "active", "intent": "plan",
                    "subject": subject,
                    "activity": (0..3).map(|e| json!({"reference": {"reference":
                        format!("urn:uuid:00000000-0000-4000-8000-00000000000{e}")}})).collect::<Vec<_>>()},
                "request": {"method": "POST", "url": "CarePlan"}
            }));
            for t in 0..per_patient {
                let mut task = json!({"resourceType": "Task", "intent": "order",
                    "basedOn": [{"reference": plan_urn}], "for": subject, "owner": subject,
                    "status": match (t + n) % 4 { 0 | 1 => "completed", 2 => "requested", _ => "failed" }});
                if task["status"] == "completed" {
                    let day = now
                        .checked_sub(jiff::SignedDuration::from_hours(24 * ((t * 7 + n) % 200) as i64))
                        .unwrap_or(now);
                    let end = day.checked_add(jiff::SignedDuration::from_mins(20)).unwrap_or(day);
                    task["executionPeriod"] = json!({"start": day.to_string(), "end": end.to_string()});
                }
                entries.push(json!({"resource": task, "request": {"method": "POST", "url": "Task"}}));
            }
            let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
            let url = base.to_string();
            async move {
                let res = client
                    .post(url)
                    .header("Content-Type", "application/fhir+json")
                    .header("Prefer", "return=minimal")
                    .body(bundle.to_string())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if res.status().as_u16() != 200 {
                    let status = res.status();
                    return Err(format!("seeding answered {status}: {}", res.text().await.unwrap_or_default()));
                }
                Ok(per_patient)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    results.into_iter().sum()
}

/// What a timed scenario measured.
/// The Synthea sample: `HEP_BENCH_SYNTHEA_DIR`, else `shared/data/synthea-r4` beside
/// the workspace.
fn synthea_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os("HEP_BENCH_SYNTHEA_DIR") {
        Some(d) => PathBuf::from(d),
        None => workspace_root().join("../shared/data/synthea-r4"),
    };
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "no Synthea Bundles at {} (set HEP_BENCH_SYNTHEA_DIR)",
            dir.display()
        ))
    }
}

/// Posts every Synthea Bundle (hospitals and practitioners first), two at a time; one
/// run is the whole import.
async fn synthea_import(client: &reqwest::Client, base: &str) -> Result<TimedRuns, String> {
    let dir = synthea_dir()?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort_by_key(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        (
            !(name.starts_with("hospital") || name.starts_with("practitioner")),
            name,
        )
    });
    let mut bodies = Vec::new();
    let mut resources = 0usize;
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        resources += v["entry"].as_array().map_or(0, Vec::len);
        bodies.push(text);
    }
    let (first, rest) = bodies.split_at(2.min(bodies.len()));
    let post = |body: String| {
        let client = client.clone();
        let url = base.to_string();
        async move {
            let res = client
                .post(url)
                .header("Content-Type", "application/fhir+json")
                .header("Prefer", "return=minimal")
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if res.status().as_u16() != 200 {
                return Err(format!("import answered {}", res.status()));
            }
            Ok::<(), String>(())
        }
    };
    let started = std::time::Instant::now();
    // the hospitals and practitioners first, then the patients
    for b in first {
        post(b.clone()).await?;
    }
    let results: Vec<Result<(), String>> = futures_util::stream::iter(rest.iter().cloned())
        .map(post)
        .buffer_unordered(2)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(TimedRuns {
        runs_ms: vec![ms],
        detail: format!(
            "{resources} resources in {} Bundles: {:.0} resources / s",
            files.len(),
            resources as f64 / (ms / 1000.0)
        ),
    })
}

/// Times a whole-clinic `$export` from the kick-off to the manifest, sampling the
/// server's resident memory while it runs; then removes the export.
async fn export(client: &reqwest::Client, hep: &server::Server) -> Result<TimedRuns, String> {
    let before = hep.rss().current_kb;
    let started = std::time::Instant::now();
    let res = client
        .get(format!("{}/$export", hep.base))
        .header("Prefer", "respond-async")
        .header("Accept", "application/fhir+json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status().as_u16() != 202 {
        return Err(format!("$export answered {}", res.status()));
    }
    let status_url = res
        .headers()
        .get("content-location")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Content-Location")?
        .to_string();
    let mut max_rss = before;
    let manifest: Value = loop {
        max_rss = max_rss.max(hep.rss().current_kb);
        let res = client
            .get(&status_url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match res.status().as_u16() {
            202 => tokio::time::sleep(Duration::from_millis(50)).await,
            200 => break res.json().await.map_err(|e| e.to_string())?,
            other => return Err(format!("export status answered {other}")),
        }
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let files = manifest["output"].as_array().cloned().unwrap_or_default();
    let resources: u64 = files.iter().filter_map(|f| f["count"].as_u64()).sum();
    // a sample file is served
    if let Some(url) = files.first().and_then(|f| f["url"].as_str()) {
        let res = client.get(url).send().await.map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("an export file answered {}", res.status()));
        }
    }
    client
        .delete(&status_url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(TimedRuns {
        runs_ms: vec![ms],
        detail: format!(
            "{resources} resources in {} files: {:.0} resources / s; server RSS {} MB before, at most {} MB during the export",
            files.len(),
            resources as f64 / (ms / 1000.0),
            before / 1024,
            max_rss / 1024
        ),
    })
}

/// Arrival times of notifications at the bench's receiver.
#[derive(Default)]
struct Arrivals {
    /// Handshakes received.
    handshakes: usize,
    /// (event time, arrival time) of each event, in microseconds.
    events: Vec<(i64, i64)>,
}

fn micros_now() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// A rest-hook receiver on this machine that notes when each event arrives.
fn start_receiver(
    arrivals: std::sync::Arc<std::sync::Mutex<Arrivals>>,
) -> Result<(String, actix_web::dev::ServerHandle), String> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let server = HttpServer::new(move || {
        let arrivals = arrivals.clone();
        App::new().default_service(web::to(move |body: web::Bytes| {
            let arrivals = arrivals.clone();
            async move {
                let at = micros_now();
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let params = v["entry"][0]["resource"]["parameter"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let kind = params
                    .iter()
                    .find(|p| p["name"] == "type")
                    .and_then(|p| p["valueCode"].as_str())
                    .unwrap_or("")
                    .to_string();
                let mut a = arrivals.lock().unwrap_or_else(|e| e.into_inner());
                if kind == "handshake" {
                    a.handshakes += 1;
                }
                for p in params.iter().filter(|p| p["name"] == "notification-event") {
                    let stamp = p["part"]
                        .as_array()
                        .and_then(|parts| parts.iter().find(|x| x["name"] == "timestamp"))
                        .and_then(|x| x["valueInstant"].as_str())
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
                    if let Some(t) = stamp {
                        a.events.push((t.as_microsecond(), at));
                    }
                }
                HttpResponse::Ok().finish()
            }
        }))
    })
    .workers(2)
    .bind("127.0.0.1:0")
    .map_err(|e| e.to_string())?;
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((format!("http://{addr}/hook"), handle))
}

/// 1,000 subscriptions, then 5,000 CarePlans of their patients: the latency of each
/// event from its time in the write's transaction to its arrival, and events per second.
async fn subscriptions(
    client: &reqwest::Client,
    base: &str,
    patients: &[String],
) -> Result<TimedRuns, String> {
    const SUBSCRIPTIONS: usize = 1000;
    const WRITES: usize = 5000;
    const TOPIC: &str = "https://hep-fhir.org/fhir/SubscriptionTopic/program";
    const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition";
    if patients.len() < SUBSCRIPTIONS {
        return Err(format!(
            "the scenario needs {SUBSCRIPTIONS} patients (--patients)"
        ));
    }
    let arrivals = std::sync::Arc::new(std::sync::Mutex::new(Arrivals::default()));
    let (endpoint, receiver) = start_receiver(arrivals.clone())?;
    let subscribed: Vec<Result<Value, String>> = futures_util::stream::iter(&patients[..SUBSCRIPTIONS])
        .map(|p| {
            let body = json!({
                "resourceType": "Subscription", "status": "requested",
                "reason": "benchmark", "criteria": TOPIC,
                "_criteria": {"extension": [{"url": format!("{BACKPORT}/backport-filter-criteria"),
                    "valueString": format!("CarePlan?patient=Patient/{p}")}]},
                "channel": {"type": "rest-hook", "endpoint": endpoint,
                    "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": format!("{BACKPORT}/backport-payload-content"), "valueCode": "id-only"}]}}
            });
            let url = format!("{base}/Subscription");
            async move { post(client, url, &body).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    subscribed
        .into_iter()
        .collect::<Result<Vec<Value>, String>>()?;
    let started = std::time::Instant::now();
    while arrivals.lock().map_err(|e| e.to_string())?.handshakes < SUBSCRIPTIONS {
        if started.elapsed() > Duration::from_secs(120) {
            return Err("the handshakes did not all arrive".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let handshake_s = started.elapsed().as_secs_f64();
    let writes_started = std::time::Instant::now();
    let written: Vec<Result<Value, String>> = futures_util::stream::iter(0..WRITES)
        .map(|i| {
            let p = &patients[i % SUBSCRIPTIONS];
            let body = json!({"resourceType": "CarePlan", "status": "draft", "intent": "plan",
                "title": format!("plan {i}"), "subject": {"reference": format!("Patient/{p}")}});
            let url = format!("{base}/CarePlan");
            async move { post(client, url, &body).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    written
        .into_iter()
        .collect::<Result<Vec<Value>, String>>()?;
    let write_s = writes_started.elapsed().as_secs_f64();
    while arrivals.lock().map_err(|e| e.to_string())?.events.len() < WRITES {
        if writes_started.elapsed() > Duration::from_secs(300) {
            return Err("not every event arrived".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    receiver.stop(false).await;
    let a = arrivals.lock().map_err(|e| e.to_string())?;
    let mut latencies: Vec<f64> = a
        .events
        .iter()
        .map(|(t, at)| (at - t) as f64 / 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    let first = a.events.iter().map(|(t, _)| *t).min().unwrap_or(0);
    let last = a.events.iter().map(|(_, at)| *at).max().unwrap_or(0);
    let span = (last - first) as f64 / 1e6;
    Ok(TimedRuns {
        runs_ms: vec![span * 1000.0],
        detail: format!(
            "{} events delivered: latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} events / s delivered ({} CarePlans written in {write_s:.1} s, {:.0} / s); 1,000 handshakes in {handshake_s:.1} s",
            a.events.len(),
            pct(0.5),
            pct(0.99),
            latencies.last().copied().unwrap_or(0.0),
            a.events.len() as f64 / span.max(1e-9),
            WRITES,
            WRITES as f64 / write_s
        ),
    })
}

struct TimedRuns {
    runs_ms: Vec<f64>,
    detail: String,
}

/// Seeds 5,000 patients in remote therapeutic monitoring straight into the database
/// (an episode that began 29 days ago, a daily session over its 30 days, most of them
/// done, 3 logged times and 2 messages each), then times `GET /fhir/$rtm` five times
/// over that one period.
async fn clinic_rtm(
    client: &reqwest::Client,
    base: &str,
    database_url: &str,
    patients: &[String],
) -> Result<TimedRuns, String> {
    use api::db::outcomes::{EpisodeRow, EventRow, put_episode, put_event};
    use api::db::sessions::{SessionRow, insert};
    const PATIENTS: usize = 5000;
    const DAYS: i64 = 30;
    const DAY_US: i64 = 86_400_000_000;
    let db = api::db::Db::open(database_url, 1).map_err(|e| e.to_string())?;
    let now = jiff::Timestamp::now();
    let now_us = now.as_microsecond();
    let today_us = now_us - now_us.rem_euclid(DAY_US);
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let start = today
        .checked_sub(jiff::Span::new().days(DAYS - 1))
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let mut seeded = 0usize;
    for chunk in 0..(PATIENTS / 100) {
        let patients: Vec<String> = (chunk * 100..(chunk + 1) * 100)
            .map(|i| {
                patients
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("rtm-{i}"))
            })
            .collect();
        let n = db
            .write(move |conn| {
                let mut n = 0usize;
                for (pi, patient) in patients.iter().enumerate() {
                    let plan = format!("rtm-plan-{patient}");
                    put_episode(
                        conn,
                        "default",
                        &plan,
                        Some(&EpisodeRow {
                            tenant: "default".into(),
                            care_plan_id: plan.clone(),
                            patient_id: patient.clone(),
                            start_date: start.to_string(),
                            end_date: None,
                        }),
                    )?;
                    for d in 0..DAYS {
                        let due_from = today_us - (DAYS - 1 - d) * DAY_US;
                        let done = (pi + d as usize) % 10 < 7 && d < DAYS - 1;
                        insert(
                            conn,
                            &SessionRow {
                                tenant: "default".into(),
                                task_id: format!("rtm-{patient}-{d}"),
                                care_plan_id: plan.clone(),
                                request_id: format!("rtm-rx-{patient}"),
                                patient_id: patient.clone(),
                                due_from,
                                due_until: due_from + DAY_US,
                                slot: 0,
                                status: if done { "completed" } else { "requested" }.into(),
                                completed_at: done.then_some(due_from + DAY_US / 3),
                                done_volume: done.then_some(30),
                                prescribed_volume: 30,
                                prescribed_sets: 3,
                                prescribed_reps: 10,
                                pain: None,
                                difficulty: None,
                            },
                        )?;
                        n += 1;
                    }
                    let events = [
                        ("Procedure", "time", 5, 7),
                        ("Procedure", "time", 12, 8),
                        ("Procedure", "time", 20, 9),
                        ("Communication", "message-clinician", 6, 0),
                        ("Communication", "message-patient", 7, 0),
                    ];
                    for (k, (res_type, kind, day, minutes)) in events.into_iter().enumerate() {
                        let id = format!("rtm-{patient}-{k}");
                        put_event(
                            conn,
                            "default",
                            res_type,
                            &id,
                            Some(&EventRow {
                                tenant: "default".into(),
                                res_type: res_type.into(),
                                res_id: id.clone(),
                                patient_id: patient.clone(),
                                at: today_us - (DAYS - 1 - day) * DAY_US + DAY_US / 2,
                                kind: kind.into(),
                                minutes,
                                who: (minutes > 0).then(|| "Practitioner/bench".to_string()),
                                what: (minutes > 0).then(|| "Reviewed the readings".to_string()),
                            }),
                        )?;
                        n += 1;
                    }
                }
                Ok::<_, api::error::ApiError>(n)
            })
            .map_err(|e| e.to_string())?;
        seeded += n;
    }
    println!(
        "seeded {seeded} sessions and events of {PATIENTS} patients in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let mut runs_ms = Vec::new();
    let mut detail = String::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let res = client
            .get(format!("{base}/$rtm?start={start}&end={today}"))
            .header("Accept", "application/fhir+json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        runs_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            return Err(format!("$rtm answered {status}"));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let rows = v["parameter"]
            .as_array()
            .map_or(0, |p| p.iter().filter(|p| p["name"] == "patient").count());
        detail = format!(
            "{seeded} sessions and events; answer: {rows} patient periods, {} kB",
            body.len() / 1024
        );
    }
    Ok(TimedRuns { runs_ms, detail })
}

/// Seeds the sessions of 5,000 patients with 10 daily exercises over the last 28 days
/// straight into the database (the figure is the computation, not the seeding), then
/// times `GET /fhir/$adherence` five times.
async fn clinic_adherence(
    client: &reqwest::Client,
    base: &str,
    database_url: &str,
    patients: &[String],
) -> Result<TimedRuns, String> {
    use api::db::sessions::{SessionRow, insert};
    const PATIENTS: usize = 5000;
    const DAYS: i64 = 28;
    const DAY_US: i64 = 86_400_000_000;
    let db = api::db::Db::open(database_url, 1).map_err(|e| e.to_string())?;
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_micros() as i64;
    let today = now_us - now_us.rem_euclid(DAY_US);
    let started = std::time::Instant::now();
    let mut seeded = 0usize;
    for chunk in 0..(PATIENTS / 100) {
        let patients: Vec<String> = (chunk * 100..(chunk + 1) * 100)
            .map(|i| {
                patients
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("clinic-{i}"))
            })
            .collect();
        let n = db
            .write(move |conn| {
                let mut n = 0usize;
                for (pi, patient) in patients.iter().enumerate() {
                    for e in 0..PROGRAM_EXERCISES {
                        for d in 0..DAYS {
                            let due_from = today - (DAYS - 1 - d) * DAY_US;
                            // a realistic mix: most done, some missed, today's open
                            let k = (pi * 31 + e * 7 + d as usize) % 20;
                            let (status, done) = if d == DAYS - 1 {
                                ("requested", None)
                            } else if k < 14 {
                                ("completed", Some(if k.is_multiple_of(3) { 20 } else { 30 }))
                            } else {
                                ("failed", None)
                            };
                            insert(
                                conn,
                                &SessionRow {
                                    tenant: "default".into(),
                                    task_id: format!("clinic-{patient}-{e}-{d}"),
                                    care_plan_id: format!("clinic-plan-{patient}"),
                                    request_id: format!("clinic-rx-{patient}-{e}"),
                                    patient_id: patient.clone(),
                                    due_from,
                                    due_until: due_from + DAY_US,
                                    slot: 0,
                                    status: status.into(),
                                    completed_at: done.map(|_| due_from + DAY_US / 3),
                                    done_volume: done,
                                    prescribed_volume: 30,
                                    prescribed_sets: 3,
                                    prescribed_reps: 10,
                                    pain: done.map(|_| (k % 5) as i64),
                                    difficulty: None,
                                },
                            )?;
                            n += 1;
                        }
                    }
                }
                Ok::<_, api::error::ApiError>(n)
            })
            .map_err(|e| e.to_string())?;
        seeded += n;
    }
    println!(
        "seeded {seeded} sessions of {PATIENTS} patients in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let mut runs_ms = Vec::new();
    let mut detail = String::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let res = client
            .get(format!("{base}/$adherence"))
            .header("Accept", "application/fhir+json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        runs_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() {
            return Err(format!("$adherence answered {status}"));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let count = v["parameter"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "patients"))
            .and_then(|p| p["valueInteger"].as_u64())
            .unwrap_or(0);
        detail = format!(
            "{seeded} sessions; answer: {count} patients, {} kB",
            body.len() / 1024
        );
    }
    Ok(TimedRuns { runs_ms, detail })
}
