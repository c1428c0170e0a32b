//! Attacks by one authenticated client, each sent once: what it costs the server (its
//! resident memory while the attack runs, sampled every 10 ms) and what it does to
//! another client meanwhile. The figures of the hardening of the server against them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::TimedRuns;
use crate::server::Server;

/// Samples the server's resident memory every 10 ms until stopped; the highest reading.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak_kb: Arc<AtomicU64>,
    handle: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(hep: &Server) -> RssSampler {
        let pid = hep.pid();
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kb = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak_kb.clone());
        let handle = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(crate::server::rss_of(pid).current_kb, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        RssSampler {
            stop,
            peak_kb,
            handle,
        }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.await;
        self.peak_kb.load(Ordering::Relaxed)
    }
}

/// Sends a request and reads its whole answer (counting bytes, keeping none).
async fn send_counted(req: reqwest::RequestBuilder) -> Result<(u16, u64, String), String> {
    let mut res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let mut bytes = 0u64;
    let mut head = String::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
        if head.len() < 300 {
            head.push_str(&String::from_utf8_lossy(&chunk[..chunk.len().min(300)]));
        }
        bytes += chunk.len() as u64;
    }
    Ok((status, bytes, head))
}

/// Sends one attack: its answer (status, bytes, first bytes), how long it took (ms), and
/// the server's resident memory before and at most during it (kB).
async fn measured(
    hep: &Server,
    req: reqwest::RequestBuilder,
) -> Result<((u16, u64, String), f64, u64, u64), String> {
    let before = hep.rss().current_kb;
    let sampler = RssSampler::start(hep);
    let started = Instant::now();
    let answer = send_counted(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let peak = sampler.finish().await;
    Ok((answer?, ms, before, peak))
}

/// The diagnostics of an OperationOutcome's first issue, if the answer began with one.
fn diagnostics(head: &str) -> String {
    head.split("\"diagnostics\":\"")
        .nth(1)
        .and_then(|d| d.split('"').next())
        .map(|d| format!(" (\"{}\")", d.chars().take(90).collect::<String>()))
        .unwrap_or_default()
}

/// A JSON Patch of 22 `copy` operations, each copying an array into itself: the
/// document doubles with every operation (1.4 kB of patch, gigabytes applied in full).
pub async fn patch_doubling(
    client: &reqwest::Client,
    base: &str,
    hep: &Server,
) -> Result<TimedRuns, String> {
    let created = crate::post(
        client,
        format!("{base}/Patient"),
        &json!({"resourceType": "Patient", "name": [{"family": "Doubling", "given": ["A"]}]}),
    )
    .await?;
    let id = created["id"].as_str().ok_or("no id")?.to_string();
    let ops: Vec<Value> = (0..22)
        .map(|_| json!({"op": "copy", "from": "/name", "path": "/name/-"}))
        .collect();
    let patch = Value::Array(ops).to_string();
    let ((status, _, head), ms, before, peak) = measured(
        hep,
        client
            .patch(format!("{base}/Patient/{id}"))
            .header("Content-Type", "application/json-patch+json")
            .body(patch.clone()),
    )
    .await?;
    Ok(TimedRuns {
        runs_ms: vec![ms],
        detail: format!(
            "{} ops in {} bytes: answered {status}{}; server RSS {} MB before, at most {} MB during",
            22,
            patch.len(),
            diagnostics(&head),
            before / 1024,
            peak / 1024
        ),
    })
}

/// A 7 kB batch of 100 searches of 1,000 resources each, over 1,000 ActivityDefinitions
/// of about 8 kB (seeded first).
pub async fn batch_searches(
    client: &reqwest::Client,
    base: &str,
    hep: &Server,
) -> Result<TimedRuns, String> {
    let long = "Keep the back straight and breathe out as you lift. ".repeat(150);
    let bodies = (0..1000).map(|i| {
        json!({"resourceType": "ActivityDefinition", "status": "active",
            "url": format!("http://example.org/bench/exercise-{i}"),
            "name": format!("BenchExercise{i}"), "description": long})
    });
    let seeded: Vec<Result<Value, String>> = futures_util::stream::iter(bodies)
        .map(|b| {
            let client = client.clone();
            let url = format!("{base}/ActivityDefinition");
            async move { crate::post(&client, url, &b).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    seeded.into_iter().collect::<Result<Vec<_>, _>>()?;
    let entries: Vec<Value> = (0..100)
        .map(|_| json!({"request": {"method": "GET", "url": "ActivityDefinition?_count=1000"}}))
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries}).to_string();
    let ((status, bytes, head), ms, before, peak) = measured(
        hep,
        client
            .post(format!("{base}/"))
            .header("Content-Type", "application/fhir+json")
            .body(bundle.clone()),
    )
    .await?;
    Ok(TimedRuns {
        runs_ms: vec![ms],
        detail: format!(
            "{} bytes of batch: answered {status}{}, {} MB; server RSS {} MB before, at most {} MB during",
            bundle.len(),
            diagnostics(&head),
            bytes / 1_000_000,
            before / 1024,
            peak / 1024
        ),
    })
}

/// Four requests at once of `Patient?name=Alex` with the parameter 200 times (every
/// seeded Patient matches), by one client, while another client reads a Patient by id
/// one request after another: the reads' worst and median latency during the attack.
pub async fn repeated_parameters(
    attacker: &reqwest::Client,
    victim: &reqwest::Client,
    base: &str,
    patient: &str,
) -> Result<TimedRuns, String> {
    let query = vec!["name=Alex"; 200].join("&");
    let url = format!("{base}/Patient?{query}");
    let started = Instant::now();
    let attacks: Vec<_> = (0..4)
        .map(|_| {
            let req = attacker.get(&url).header("Accept", "application/fhir+json");
            tokio::spawn(async move {
                let t = Instant::now();
                send_counted(req)
                    .await
                    .map(|(status, _, head)| (status, t.elapsed().as_secs_f64() * 1000.0, head))
            })
        })
        .collect();
    let mut reads_ms = Vec::new();
    let read_url = format!("{base}/Patient/{patient}");
    // reads go on while any attack is in flight, and for at least a second
    loop {
        let all_done = attacks.iter().all(|a| a.is_finished());
        if all_done && started.elapsed() > Duration::from_secs(1) {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            break;
        }
        let t = Instant::now();
        let (status, _, _) = send_counted(
            victim
                .get(&read_url)
                .header("Accept", "application/fhir+json"),
        )
        .await?;
        if status != 200 {
            return Err(format!("the other client's read answered {status}"));
        }
        reads_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut answers = Vec::new();
    let mut attack_ms = Vec::new();
    for a in attacks {
        let (status, ms, head) = a.await.map_err(|e| e.to_string())??;
        answers.push(format!("{status}{}", diagnostics(&head)));
        attack_ms.push(ms);
    }
    answers.dedup();
    reads_ms.sort_by(f64::total_cmp);
    let worst = reads_ms.last().copied().unwrap_or(0.0);
    let median = reads_ms.get(reads_ms.len() / 2).copied().unwrap_or(0.0);
    Ok(TimedRuns {
        runs_ms: vec![worst],
        detail: format!(
            "attacks answered {} in {:.0} ms at most; the other client's {} reads meanwhile: median {median:.2} ms, worst {worst:.1} ms",
            answers.join(", "),
            attack_ms.iter().copied().fold(0.0, f64::max),
            reads_ms.len()
        ),
    })
}
