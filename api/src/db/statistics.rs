//! PostgreSQL's planner statistics kept current after bulk loads. Autovacuum analyses a
//! table once it changed by a tenth, but only at its next round (a minute by default):
//! a freshly loaded database is searched in the meantime with the statistics of empty
//! tables, and the planner then checks index rows one by one (an identifier search
//! took seconds over 1,451 Patients). This job looks every few seconds at how much each
//! table of the store changed since it was last analysed, and analyses it at once when
//! that is a fifth of it or more.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;

use super::connection::AnyConnection;

/// The tables whose statistics the search and the jobs' queries are planned with.
const TABLES: &[&str] = &[
    "resources",
    "resource_versions",
    "search_tokens",
    "search_dates",
    "unique_identifiers",
    "conditional_keys",
    "sessions",
    "schedules",
    "measure_assignments",
    "measure_tasks",
    "outcome_scores",
    "rtm_episodes",
    "monitoring_events",
    "subscription_filters",
    "audit_events",
    "audit_patients",
];

/// Changes since the last analysis that make a table's statistics stale: at least this
/// many rows, and at least a fifth of its rows.
const MIN_CHANGED: i64 = 500;
const SHARE_CHANGED: f64 = 0.2;

#[derive(diesel::QueryableByName)]
struct TableChanges {
    #[diesel(sql_type = diesel::sql_types::Text)]
    relname: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    changed: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    live: i64,
}

/// Analyses the tables of the store (in the connection's schema) whose statistics are
/// stale; returns their names. Nothing on SQLite, whose queries are planned without.
pub fn refresh_stale(conn: &mut AnyConnection) -> diesel::QueryResult<Vec<&'static str>> {
    let AnyConnection::Postgresql(pg) = conn else {
        return Ok(Vec::new());
    };
    let rows: Vec<TableChanges> = diesel::sql_query(
        "SELECT relname::text AS relname, n_mod_since_analyze AS changed, n_live_tup AS live \
         FROM pg_stat_user_tables WHERE schemaname = current_schema()",
    )
    .load(pg)?;
    let mut analysed = Vec::new();
    for table in TABLES {
        let stale = rows.iter().any(|r| {
            r.relname == *table
                && r.changed >= MIN_CHANGED
                && r.changed as f64 >= SHARE_CHANGED * r.live as f64
        });
        if stale {
            // the name is one of the constants above, never from the database
            pg.batch_execute(&format!("ANALYZE {table}"))?;
            analysed.push(*table);
        }
    }
    Ok(analysed)
}

/// The statistics job of this process; it stops when this is dropped.
pub struct StatisticsJob {
    _stop: std::sync::mpsc::Sender<()>,
}

/// Starts the job on PostgreSQL (`None` on SQLite): every `every`, on a connection of
/// its own, the stale tables are analysed. With several processes on one database each
/// looks, and a table analysed by one is no longer stale for the others.
pub fn spawn(db: &super::Db, every: std::time::Duration) -> Option<StatisticsJob> {
    if db.backend() != super::Backend::Postgres {
        return None;
    }
    let db = db.clone();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let run = move || {
        let mut conn: Option<AnyConnection> = None;
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
            if conn.is_none() {
                // an outage is logged by the requests that meet it; this job waits
                conn = db.connect().ok();
            }
            let Some(c) = conn.as_mut() else {
                continue;
            };
            match refresh_stale(c) {
                Ok(tables) if !tables.is_empty() => {
                    tracing::info!(tables = ?tables, "planner statistics refreshed after bulk changes");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "planner statistics not refreshed; retried next round");
                    conn = None;
                }
            }
        }
    };
    match std::thread::Builder::new()
        .name("statistics".into())
        .spawn(run)
    {
        Ok(_) => Some(StatisticsJob { _stop: stop }),
        Err(e) => {
            tracing::error!(error = %e, "the statistics job could not start");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_load_is_analysed_once() {
        // PostgreSQL only (SQLite plans without statistics): run when the tests have one
        let Ok(pg) = std::env::var("HEP_TEST_DATABASE_URL") else {
            return;
        };
        if pg.is_empty() {
            return;
        }
        let schema = format!("stats_{}", uuid::Uuid::now_v7().simple());
        let url = crate::db::create_test_schema(&pg, &schema).expect("schema");
        let db = crate::db::Db::open(&url, 1).expect("open");
        let mut conn = db.connect().expect("connect");
        let AnyConnection::Postgresql(pg_conn) = &mut conn else {
            panic!("a PostgreSQL connection");
        };
        pg_conn
            .batch_execute(
                "INSERT INTO search_tokens (tenant, res_type, res_id, param, system, code) \
                 SELECT 'default', 'Patient', g::text, 'identifier', 'urn:test', g::text \
                 FROM generate_series(1, 2000) g",
            )
            .expect("a bulk load");
        // the server's statistics counters reach pg_stat within a second or so
        let mut analysed = Vec::new();
        for _ in 0..50 {
            analysed = refresh_stale(&mut conn).expect("refresh");
            if !analysed.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(analysed, ["search_tokens"]);
        // analysed, it is no longer stale
        assert_eq!(
            refresh_stale(&mut conn).expect("refresh"),
            Vec::<&str>::new()
        );
        drop(conn);
        drop(db);
        crate::db::drop_test_schema(&pg, &schema).expect("drop the schema");
    }
}
