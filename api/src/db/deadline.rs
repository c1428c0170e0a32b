//! Time limits of database statements, so that no request holds a connection for long.
//!
//! PostgreSQL: every connection is opened with `SET statement_timeout`; the server
//! cancels a statement that runs longer (`canceling statement due to statement
//! timeout`) and the connection stays usable.
//!
//! SQLite has no timer of its own. Its progress handler and `sqlite3_interrupt` are
//! only reachable through raw FFI, which diesel 2.3 does not wrap and the workspace
//! (`unsafe_code = "forbid"`) does not allow. Instead every SQLite connection gets an
//! SQL function, `hep_live()`, registered through diesel's safe API, and the search SQL
//! (`query.rs`) calls it for every resource row it walks and every row of a driving
//! subquery. The function fails once the deadline of the job running on the connection
//! has passed, and SQLite then stops the statement with that error: a time limit on the
//! search SQL, checked row by row. Other statements (reads by id, history pages,
//! includes by id) are bounded by their keys and limits instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use diesel::serialize::{IsNull, Output, ToSql};
use diesel::sql_types::Integer;
use diesel::sqlite::Sqlite;

diesel::define_sql_function! {
    /// 1 while the job of the connection is within its time limit; an error after.
    fn hep_live() -> Integer;
}

/// The message of a statement stopped by the SQLite time limit.
const SQLITE_MESSAGE: &str = "statement time limit reached";
/// The message of a statement cancelled by PostgreSQL's `statement_timeout`.
const POSTGRES_MESSAGE: &str = "canceling statement due to statement timeout";

/// Whether a database error is a statement stopped by its time limit.
pub fn is_timeout(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => {
            let m = info.message();
            m.contains(SQLITE_MESSAGE) || m.contains(POSTGRES_MESSAGE)
        }
        _ => false,
    }
}

/// Not armed.
const NEVER: u64 = u64::MAX;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_nanos() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(NEVER - 1)
}

/// The deadline of the work on one SQLite connection: armed when a job starts (its
/// limit from now), disarmed when it ends. Unarmed, `hep_live()` never fails.
#[derive(Debug, Clone)]
pub struct Deadline {
    at: Arc<AtomicU64>,
    limit: Option<Duration>,
}

impl Deadline {
    /// A deadline `limit` after each [`Deadline::arm`]; `None`: no limit.
    pub fn new(limit: Option<Duration>) -> Deadline {
        Deadline {
            at: Arc::new(AtomicU64::new(NEVER)),
            limit,
        }
    }

    /// Starts the time limit of a job; it ends when the returned guard is dropped.
    pub fn arm(&self) -> Armed<'_> {
        if let Some(limit) = self.limit {
            let nanos = u64::try_from(limit.as_nanos()).unwrap_or(NEVER - 1);
            self.at.store(
                now_nanos().saturating_add(nanos).min(NEVER - 1),
                Ordering::Relaxed,
            );
        }
        Armed(self)
    }

    fn passed(&self) -> bool {
        let at = self.at.load(Ordering::Relaxed);
        at != NEVER && now_nanos() >= at
    }

    /// Registers `hep_live()` on an SQLite connection, checking this deadline.
    pub(super) fn install(&self, conn: &diesel::SqliteConnection) -> diesel::QueryResult<()> {
        let deadline = self.clone();
        hep_live_utils::register_nondeterministic_impl(conn, move || Live(!deadline.passed()))
    }
}

/// An armed [`Deadline`]; disarms it when dropped.
pub struct Armed<'a>(&'a Deadline);

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        self.0.at.store(NEVER, Ordering::Relaxed);
    }
}

/// The value of `hep_live()`: 1, or, past the deadline, an error that stops the
/// statement.
#[derive(Debug)]
struct Live(bool);

impl ToSql<Integer, Sqlite> for Live {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> diesel::serialize::Result {
        if self.0 {
            out.set_value(1i32);
            Ok(IsNull::No)
        } else {
            Err(SQLITE_MESSAGE.into())
        }
    }
}
