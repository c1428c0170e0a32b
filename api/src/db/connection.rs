//! Connections: one type for either backend, how each is opened (pragmas, statement
//! time limits) and the errors of the database layer.

use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection};

use super::deadline;

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Which database the URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("cannot connect to the database: {0}")]
    Connection(String),
    #[error("database migrations failed: {0}")]
    Migration(String),
    /// The database cannot do its work: its disk is full, or it cannot be reached.
    #[error("{}", .0.text())]
    Outage(super::outage::Outage),
}

impl From<r2d2::PoolError> for DbError {
    fn from(e: r2d2::PoolError) -> Self {
        // no connection within the pool's timeout: an outage when the last attempt to
        // connect failed, else every connection was busy
        DbError::connecting(e.to_string())
    }
}

impl DbError {
    /// A failure to connect or to commit, described by `message`: an outage when the
    /// message names one (a full disk, a database that does not answer).
    pub fn connecting(message: String) -> DbError {
        match super::outage::of_message(&message) {
            Some(o) => DbError::Outage(o),
            None => DbError::Connection(message),
        }
    }

    /// The outage this error shows, if any.
    pub fn outage(&self) -> Option<super::outage::Outage> {
        match self {
            DbError::Outage(o) => Some(*o),
            DbError::Query(e) => super::outage::of_error(e),
            DbError::Connection(m) => super::outage::of_message(m),
            DbError::Migration(_) => None,
        }
    }
}

/// The time limits of statements (`None`: no limit). See `deadline.rs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatementLimits {
    /// Statements of the readers and writers (on SQLite: the search SQL of one job).
    pub statement: Option<Duration>,
    /// Statements of a bulk export's own connection (on SQLite: one page).
    pub export: Option<Duration>,
}

/// Opens connections of the configured backend (never guessing from a failed attempt).
#[derive(Debug, Clone)]
pub(super) struct Manager {
    pub(super) url: String,
    pub(super) backend: Backend,
    pub(super) limits: StatementLimits,
    pub(super) sqlite_max_mib: Option<u64>,
}

/// The busy timeout comes first: setting the journal mode takes a lock, which another
/// process's closing connection may still hold (without the timeout, the open fails at
/// once with "database is locked").
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
     PRAGMA cache_size = -8192;";

impl Manager {
    /// A connection with the time limit of readers and writers.
    pub(super) fn open(&self) -> Result<AnyConnection, DbError> {
        self.open_limited(self.limits.statement).map(|(c, _)| c)
    }

    /// A connection whose statements have `limit`: PostgreSQL's `statement_timeout`,
    /// or on SQLite the returned deadline, which the connection's user arms for each job.
    pub(super) fn open_limited(
        &self,
        limit: Option<Duration>,
    ) -> Result<(AnyConnection, deadline::Deadline), DbError> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = diesel::PgConnection::establish(&self.url)
                    .map_err(|e| DbError::connecting(e.to_string()))?;
                if let Some(limit) = limit {
                    conn.batch_execute(&format!(
                        "SET statement_timeout = {}",
                        limit.as_millis().max(1)
                    ))?;
                }
                Ok((
                    AnyConnection::Postgresql(conn),
                    deadline::Deadline::new(None),
                ))
            }
            Backend::Sqlite => {
                let path = self.url.strip_prefix("sqlite://").unwrap_or(&self.url);
                let mut conn = diesel::SqliteConnection::establish(path)
                    .map_err(|e| DbError::connecting(e.to_string()))?;
                conn.batch_execute(SQLITE_PRAGMAS)?;
                if let Some(mib) = self.sqlite_max_mib {
                    cap_size(&mut conn, mib)?;
                }
                let deadline = deadline::Deadline::new(limit);
                deadline.install(&conn)?;
                Ok((AnyConnection::Sqlite(conn), deadline))
            }
        }
    }
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, r2d2::Error> {
        self.open().map_err(|e| match e {
            DbError::Query(q) => r2d2::Error::QueryError(q),
            other => r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                other.to_string(),
            )),
        })
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// Holds an SQLite database to `mib` MiB (`max_page_count` in pages of the file's own
/// size).
fn cap_size(conn: &mut diesel::SqliteConnection, mib: u64) -> Result<(), DbError> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct PageSize {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        page_size: i64,
    }
    let page: PageSize = diesel::sql_query("PRAGMA page_size").get_result(conn)?;
    let pages = mib.saturating_mul(1024 * 1024) / (page.page_size.max(512) as u64);
    conn.batch_execute(&format!("PRAGMA max_page_count = {}", pages.max(1)))?;
    Ok(())
}
