//! Health of the process for load balancers and orchestrators: whether it serves
//! (liveness) and whether it can do its work (readiness: the database reachable and
//! writable through the writer, its migrations those of this release, free disk space
//! for SQLite). The answers carry no clinic or patient data, only each check's state,
//! in the `application/health+json` shape (draft-inadarei-api-health-check).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::clock::{Clock, instant_string, to_micros};
use crate::db::{Db, DbError};
use crate::error::ApiError;

/// How long one check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// A readiness answer is reused this long: probes from several balancers, or a flood
/// of them, cost the database one round of checks per second at most.
const FRESH: Duration = Duration::from_secs(1);
/// The `store_settings` row the write check rewrites (no clinic data).
const WRITE_CHECK_SETTING: &str = "health-write-check";

/// The readiness of the process, computed at most once per [`FRESH`] (one round at a
/// time: concurrent probes wait for it and share its answer).
pub struct Readiness {
    db: Db,
    clock: Arc<dyn Clock>,
    min_free_bytes: u64,
    last: tokio::sync::Mutex<Option<(Instant, Report)>>,
}

/// The answer to a readiness probe.
#[derive(Debug, Clone)]
pub struct Report {
    pub ready: bool,
    /// The `application/health+json` document.
    pub body: Value,
}

/// One check's outcome.
struct Check {
    name: &'static str,
    pass: bool,
    /// What was observed (a duration in ms, a count, a size in MiB), and its unit.
    observed: Option<(Value, &'static str)>,
    /// Why it failed, in words without any data.
    output: Option<String>,
}

impl Readiness {
    pub fn new(db: Db, clock: Arc<dyn Clock>, min_free_mib: u64) -> Readiness {
        Readiness {
            db,
            clock,
            min_free_bytes: min_free_mib.saturating_mul(1024 * 1024),
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The readiness report, from the last round when it is fresh.
    pub async fn report(&self) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < FRESH
        {
            return report.clone();
        }
        let report = self.check().await;
        *last = Some((Instant::now(), report.clone()));
        report
    }

    async fn check(&self) -> Report {
        let mut checks = vec![self.reachable().await];
        // a database that cannot be read is not written either: say so once
        if checks[0].pass {
            checks.push(self.writable().await);
            checks.push(self.migrations().await);
        }
        if let Some(disk) = self.disk() {
            checks.push(disk);
        }
        let ready = checks.iter().all(|c| c.pass);
        let mut details = serde_json::Map::new();
        for c in &checks {
            let mut entry = serde_json::Map::new();
            entry.insert("status".into(), json!(if c.pass { "pass" } else { "fail" }));
            if let Some((value, unit)) = &c.observed {
                entry.insert("observedValue".into(), value.clone());
                entry.insert("observedUnit".into(), json!(unit));
            }
            if let Some(output) = &c.output {
                entry.insert("output".into(), json!(output));
            }
            entry.insert(
                "time".into(),
                json!(instant_string(to_micros(self.clock.now()))),
            );
            details.insert(c.name.into(), json!([entry]));
        }
        Report {
            ready,
            body: json!({
                "status": if ready { "pass" } else { "fail" },
                "description": "hep-server readiness",
                "checks": details,
            }),
        }
    }

    /// A read through the reader threads.
    async fn reachable(&self) -> Check {
        let started = Instant::now();
        let read = self.db.read(|conn| {
            crate::db::store::setting(conn, WRITE_CHECK_SETTING)
                .map(|_| ())
                .map_err(DbError::from)
        });
        timed("database:reachable", started, timeout(read).await)
    }

    /// A write through the writer (on SQLite the group commit every write joins: a
    /// writer that is stuck fails this check).
    async fn writable(&self) -> Check {
        let started = Instant::now();
        let (db, clock) = (self.db.clone(), self.clock.clone());
        let write = async move {
            tokio::task::spawn_blocking(move || {
                db.write(move |conn| -> Result<(), ApiError> {
                    let now = instant_string(to_micros(clock.now()));
                    Ok(crate::db::store::set_setting(
                        conn,
                        WRITE_CHECK_SETTING,
                        &now,
                    )?)
                })
            })
            .await
            .map_err(|e| ApiError::internal_from("the write check's task", e))?
        };
        timed("database:writable", started, timeout(write).await)
    }

    /// The migrations applied to the database are exactly this release's.
    async fn migrations(&self) -> Check {
        let state = timeout(self.db.read(crate::db::migration_state)).await;
        match state {
            Ok(s) if s.pending == 0 && s.unknown == 0 => Check {
                name: "database:migrations",
                pass: true,
                observed: None,
                output: None,
            },
            Ok(s) => Check {
                name: "database:migrations",
                pass: false,
                observed: Some((json!(s.pending + s.unknown), "migrations")),
                output: Some(if s.unknown > 0 {
                    "the database was migrated by a newer release than this one".into()
                } else {
                    "migrations of this release are not applied to the database".into()
                }),
            },
            Err(why) => failed("database:migrations", why),
        }
    }

    /// Free space on the file system of an SQLite database (PostgreSQL: none to check).
    fn disk(&self) -> Option<Check> {
        let file = self.db.sqlite_file()?;
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(
                || std::path::PathBuf::from("."),
                std::path::Path::to_path_buf,
            );
        Some(match fs4::available_space(&dir) {
            Ok(free) => Check {
                name: "disk:free",
                pass: free >= self.min_free_bytes,
                observed: Some((json!(free / (1024 * 1024)), "MiB")),
                output: (free < self.min_free_bytes).then(|| {
                    format!(
                        "less free disk space than {} MiB (--health-min-free-disk-mb)",
                        self.min_free_bytes / (1024 * 1024)
                    )
                }),
            },
            Err(_) => failed(
                "disk:free",
                "the free space of the database's file system cannot be read".into(),
            ),
        })
    }
}

/// At most [`CHECK_TIMEOUT`] for `check`; the reason of a failure in words.
async fn timeout<T, E: std::error::Error>(
    check: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(v)) => Ok(v),
        // the cause goes to the log; the answer says only that it failed
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::error::chain(&e), "a readiness check failed");
            Err("the database answered with an error".into())
        }
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}

fn timed(name: &'static str, started: Instant, result: Result<(), String>) -> Check {
    match result {
        Ok(()) => Check {
            name,
            pass: true,
            observed: Some((
                json!((started.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0),
                "ms",
            )),
            output: None,
        },
        Err(why) => failed(name, why),
    }
}

fn failed(name: &'static str, why: String) -> Check {
    Check {
        name,
        pass: false,
        observed: None,
        output: Some(why),
    }
}
