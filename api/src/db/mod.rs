//! The database: the handle every module reads and writes through, migrations, and
//! (in the submodules) all the SQL of the server.
//!
//! One code path for SQLite (the embedded default) and PostgreSQL: queries are written
//! once against [`AnyConnection`]. Reads run on dedicated reader threads, each owning a
//! connection, in turns per client (`readers.rs`). SQLite writes go through one writer
//! thread that commits the jobs queued meanwhile together (`writer.rs`; SQLite has one
//! writer at a time, and serialising in-process avoids busy waits); PostgreSQL writes
//! use a connection pool.

/// Runs one diesel query on the concrete connection of either backend, so that each
/// backend keeps its prepared statement in its cache (through the connection enum the
/// statement is prepared again on every call).
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            AnyConnection::Sqlite($c) => $body,
            AnyConnection::Postgresql($c) => $body,
        }
    };
}

pub(crate) mod accounts;
pub(crate) mod audit;
pub(crate) mod backlog;
pub(crate) mod clients;
pub(crate) mod connection;
pub(crate) mod deadline;
pub(crate) mod exports;
pub(crate) mod grants;
pub(crate) mod intake;
pub mod outage;
pub mod outcomes;
pub(crate) mod query;
mod readers;
pub(crate) mod schema;
pub mod sessions;
pub(crate) mod statistics;
pub mod store;
pub(crate) mod subscriptions;
pub(crate) mod writer;

pub use connection::{AnyConnection, Backend, DbError, StatementLimits};
pub use readers::as_client;

use connection::Manager;

/// Runs `f` in a savepoint of the open transaction: what it wrote is rolled back alone
/// when it fails.
pub fn savepoint<T, E: From<diesel::result::Error>>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E> {
    conn.transaction(f)
}

/// Runs `f` in a savepoint that is always rolled back: what it would write, and whether
/// it would fail, without a trace in the database.
pub fn trial<T, E: From<diesel::result::Error>>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E> {
    enum End<T, E> {
        Ran(Result<T, E>),
        Db(diesel::result::Error),
    }
    impl<T, E> From<diesel::result::Error> for End<T, E> {
        fn from(e: diesel::result::Error) -> Self {
            End::Db(e)
        }
    }
    match conn.transaction::<std::convert::Infallible, End<T, E>, _>(|c| Err(End::Ran(f(c)))) {
        Err(End::Ran(result)) => result,
        Err(End::Db(e)) => Err(E::from(e)),
        Ok(never) => match never {},
    }
}

/// A new row or resource id: a UUID whose first bits are the time (version 7), so that new
/// rows go to the end of the tables' indexes instead of anywhere in them (far fewer
/// pages written per commit than random ids).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::r2d2;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// How the database is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbOptions {
    /// Reader connections (one thread each), and writer connections on PostgreSQL.
    pub pool_size: u32,
    pub limits: StatementLimits,
    /// Readers one client may hold at once; `None`: all but one (at least one).
    pub client_share: Option<u32>,
    /// SQLite only: the largest the database file may grow, in MiB (`None`: as large
    /// as the disk allows). Past it writes answer 503 `disk full`, as with a full disk.
    pub sqlite_max_mib: Option<u64>,
}

type Pool = r2d2::Pool<Manager>;

/// The database handle shared by all workers.
#[derive(Clone)]
pub struct Db {
    inner: Arc<DbInner>,
}

struct DbInner {
    backend: Backend,
    /// Opens connections of the backend (a long export has one of its own).
    manager: Manager,
    /// PostgreSQL only: connections for write transactions.
    pool: Option<Pool>,
    readers: readers::Readers,
    /// SQLite only: the thread that owns the one writing connection (group commit).
    writer: Option<writer::Writer>,
    /// Whether the database is in an outage, for one log line when it begins and one
    /// when it ends.
    outages: Arc<outage::OutageLog>,
    /// SQLite only: the thread that checkpoints the WAL.
    _checkpointer: Option<Checkpointer>,
    /// PostgreSQL only: how long writes waited for a pooled connection, in all.
    pool_waits: PoolWaits,
}

/// Waits for a pooled connection so far (PostgreSQL writes).
#[derive(Debug, Default)]
struct PoolWaits {
    count: std::sync::atomic::AtomicU64,
    micros: std::sync::atomic::AtomicU64,
}

/// The pool of PostgreSQL write connections as a scrape reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolReading {
    /// Connections open, and of them idle.
    pub connections: u32,
    pub idle: u32,
    /// Connections handed out so far, and the time writes waited for them in all.
    pub waits: u64,
    pub wait_micros: u64,
}

/// Checkpoints the SQLite WAL from its own connection every 200 ms (PASSIVE: it never
/// waits for, nor blocks, the writer or the readers), so that commits in the writer
/// thread do not pay for copying pages into the database (the writer empties the log
/// when it grows too large, see `writer.rs`). Stops when dropped.
struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Checkpointer {
    fn start(mut conn: AnyConnection) -> Checkpointer {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let run = move || {
            // a failure is logged when checkpoints start failing and when they work
            // again, not every 200 ms while the disk is full
            let mut failing = false;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(200))
            {
                match conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "WAL checkpoints fail; retried every 200 ms");
                    }
                    Err(_) => {}
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("WAL checkpoints work again");
                    }
                    Ok(()) => {}
                }
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(run)
        {
            tracing::error!(error = %e, "the WAL checkpointer could not start");
        }
        Checkpointer { _stop: stop }
    }
}

impl Db {
    /// Connects, applies pending migrations and returns the handle (statements without
    /// time limits: tools and tests).
    pub fn open(url: &str, pool_size: u32) -> Result<Db, DbError> {
        Db::open_with(
            url,
            DbOptions {
                pool_size,
                ..DbOptions::default()
            },
        )
    }

    /// Connects with `options.pool_size` readers (and writers on PostgreSQL) whose
    /// statements have the given time limits, applies pending migrations (without a
    /// limit) and returns the handle.
    pub fn open_with(url: &str, options: DbOptions) -> Result<Db, DbError> {
        let DbOptions {
            pool_size,
            limits,
            client_share,
            sqlite_max_mib,
        } = options;
        let backend = Backend::of_url(url);
        let manager = Manager {
            url: url.to_string(),
            backend,
            limits,
            sqlite_max_mib,
        };
        let writer = match backend {
            Backend::Sqlite => {
                let (mut conn, deadline) = manager.open_limited(limits.statement)?;
                run_migrations(&mut conn)?;
                // the checkpointer thread copies the WAL into the database, not the writer;
                // the writer keeps more pages cached (the index pages every batch of the
                // audit trail touches, the resources a write reads first)
                conn.batch_execute("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -32768;")?;
                let path = url.strip_prefix("sqlite://").unwrap_or(url);
                Some(writer::Writer::start(
                    conn,
                    deadline,
                    format!("{path}-wal"),
                )?)
            }
            Backend::Postgres => None,
        };
        let checkpointer = match backend {
            Backend::Sqlite => Some(Checkpointer::start(manager.open()?)),
            Backend::Postgres => None,
        };
        let readers = readers::Readers::start(&manager, pool_size, client_share)?;
        let own_manager = manager.clone();
        let outages = Arc::new(outage::OutageLog::default());
        let pool = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let pool = r2d2::Pool::builder()
                    .max_size(pool_size.max(1))
                    // Checking each connection on checkout costs a round trip per
                    // request; broken connections are detected after use instead.
                    .test_on_check_out(false)
                    .connection_timeout(Duration::from_secs(10))
                    // a failed connection attempt that shows an outage is noted at once
                    // (logged once when it begins, not once per attempt), so that the
                    // requests waiting for a connection answer 503 without waiting out
                    // the pool's timeout
                    .error_handler(Box::new(outage::NoteOutages(outages.clone())))
                    .build(manager)
                    .map_err(|e| DbError::Connection(e.to_string()))?;
                // a migration may rewrite a large table: no statement time limit for it
                let (mut conn, _) = own_manager.open_limited(None)?;
                run_migrations(&mut conn)?;
                Some(pool)
            }
        };
        Ok(Db {
            inner: Arc::new(DbInner {
                backend,
                manager: own_manager,
                pool,
                readers,
                writer,
                _checkpointer: checkpointer,
                pool_waits: PoolWaits::default(),
                outages,
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// A connection of its own, outside the readers and the pool, for work that holds
    /// one for long.
    pub fn connect(&self) -> Result<AnyConnection, DbError> {
        self.inner.manager.open()
    }

    /// A connection of its own for a bulk export's snapshot, its statements limited by
    /// the export's time limit (on SQLite: arm the deadline for each page).
    pub fn connect_for_export(&self) -> Result<(AnyConnection, deadline::Deadline), DbError> {
        self.inner
            .manager
            .open_limited(self.inner.manager.limits.export)
    }

    /// The outage the database is in, as its last request found it.
    pub fn outage(&self) -> Option<outage::Outage> {
        self.inner.outages.current()
    }

    /// What the SQLite writer has done so far (`None` on PostgreSQL).
    pub fn writer_reading(&self) -> Option<writer::WriterReading> {
        self.inner.writer.as_ref().map(|w| w.stats.read())
    }

    /// The pool of write connections (`None` on SQLite, whose writer has none).
    pub fn pool_reading(&self) -> Option<PoolReading> {
        use std::sync::atomic::Ordering::Relaxed;
        let state = self.inner.pool.as_ref()?.state();
        Some(PoolReading {
            connections: state.connections,
            idle: state.idle_connections,
            waits: self.inner.pool_waits.count.load(Relaxed),
            wait_micros: self.inner.pool_waits.micros.load(Relaxed),
        })
    }

    /// Reads queued for a reader.
    pub fn reads_waiting(&self) -> usize {
        self.inner.readers.waiting()
    }

    /// The file of an SQLite database (`None` on PostgreSQL).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match self.inner.backend {
            Backend::Sqlite => {
                let url = &self.inner.manager.url;
                Some(url.strip_prefix("sqlite://").unwrap_or(url).into())
            }
            Backend::Postgres => None,
        }
    }

    /// Runs `f` (reads) on one of the dedicated reader threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let result = self.inner.readers.run(f).await;
        let outage = result.as_ref().err().and_then(DbError::outage);
        self.inner
            .outages
            .note(outage::Asked::Read, result.is_ok(), outage);
        result
    }

    /// Runs `f` in one write transaction and returns once it is durable.
    ///
    /// SQLite: `f` joins the next group commit of the writer thread; it runs straight in
    /// that transaction, and only when a job of the batch fails is the batch run again
    /// with each job in a savepoint of its own, so that the failed one rolls back alone.
    /// PostgreSQL: a transaction on a pooled connection; one that loses a race (unique
    /// violation, serialization failure) is retried from the start, and `f` re-reads
    /// what it depends on, so a retry sees the winner's commit.
    pub fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + IsRetryable + Send + 'static,
        F: FnMut(&mut AnyConnection) -> Result<T, E> + Send + 'static,
    {
        let result = self.write_once(f);
        let outage = result.as_ref().err().and_then(IsRetryable::outage);
        self.inner
            .outages
            .note(outage::Asked::Write, result.is_ok(), outage);
        result
    }

    fn write_once<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + IsRetryable + Send + 'static,
        F: FnMut(&mut AnyConnection) -> Result<T, E> + Send + 'static,
    {
        match &self.inner.writer {
            Some(writer) => writer.write(f),
            None => {
                let pool =
                    self.inner.pool.as_ref().ok_or_else(|| {
                        DbError::Connection("no connection pool for writes".into())
                    })?;
                let mut conn = self.pooled(pool)?;
                let mut attempt: u64 = 0;
                loop {
                    attempt += 1;
                    match conn.transaction(|c| f(c)) {
                        Err(e) if e.is_retryable() && attempt < WRITE_ATTEMPTS => {
                            std::thread::sleep(retry_pause(attempt));
                            continue;
                        }
                        other => return other,
                    }
                }
            }
        }
    }
}

/// The longest a PostgreSQL write waits for a pooled connection while the pool is busy.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// The slices of that wait: after each, a known outage ends it.
const POOL_WAIT_SLICE: Duration = Duration::from_millis(100);

impl Db {
    /// A pooled connection: within the pool's wait while it is only busy, but at once
    /// (after a slice) when an outage is known, so that a request answers 503 quickly.
    fn pooled(
        &self,
        pool: &r2d2::Pool<Manager>,
    ) -> Result<r2d2::PooledConnection<Manager>, DbError> {
        let began = std::time::Instant::now();
        let deadline = began + POOL_WAIT;
        loop {
            match pool.get_timeout(POOL_WAIT_SLICE) {
                Ok(c) => {
                    use std::sync::atomic::Ordering::Relaxed;
                    let waited = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.inner.pool_waits.count.fetch_add(1, Relaxed);
                    self.inner.pool_waits.micros.fetch_add(waited, Relaxed);
                    return Ok(c);
                }
                Err(e) => {
                    if let Some(o) = self.inner.outages.current() {
                        return Err(DbError::Outage(o));
                    }
                    if std::time::Instant::now() >= deadline {
                        return Err(DbError::from(e));
                    }
                }
            }
        }
    }
}

/// How often a PostgreSQL write transaction that lost a race is run (writers of one
/// resource each wait for the one ahead of them: twenty at once must all get through).
const WRITE_ATTEMPTS: u64 = 30;

/// The pause before attempt `attempt + 1`: growing to 25 ms, with a random part so that
/// the writers that lost a race to the same row do not all come back together.
fn retry_pause(attempt: u64) -> Duration {
    let base = (2 * attempt).min(25);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base + 1)) as u64;
    Duration::from_millis(base + jitter)
}

/// Whether a failed transaction may succeed when run again.
pub trait IsRetryable {
    fn is_retryable(&self) -> bool;

    /// The outage of the database the error shows, if any.
    fn outage(&self) -> Option<outage::Outage> {
        None
    }
}

/// Whether a diesel error is a lost race that a retry resolves.
pub fn is_race(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        e,
        Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure,
            _
        )
    )
}

/// The schema's state against this release's migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationState {
    /// Migrations of this release not applied to the database.
    pub pending: usize,
    /// Migrations applied to the database that this release does not know (a newer
    /// release migrated it).
    pub unknown: usize,
}

/// Compares the migrations applied to the database with those of this release.
pub fn migration_state(conn: &mut AnyConnection) -> Result<MigrationState, DbError> {
    use diesel::migration::MigrationSource;
    fn compare<C: MigrationHarness<B>, B: diesel::backend::Backend>(
        conn: &mut C,
        source: EmbeddedMigrations,
    ) -> Result<MigrationState, DbError> {
        let failed =
            |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
        let known: Vec<String> = MigrationSource::<B>::migrations(&source)
            .map_err(failed)?
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
        let applied: Vec<String> = conn
            .applied_migrations()
            .map_err(failed)?
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(MigrationState {
            pending: known.iter().filter(|k| !applied.contains(k)).count(),
            unknown: applied.iter().filter(|a| !known.contains(a)).count(),
        })
    }
    match conn {
        AnyConnection::Sqlite(c) => compare(c, SQLITE_MIGRATIONS),
        AnyConnection::Postgresql(c) => compare(c, POSTGRES_MIGRATIONS),
    }
}

fn run_migrations(conn: &mut AnyConnection) -> Result<(), DbError> {
    let result = match conn {
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        AnyConnection::Postgresql(c) => {
            // Several server processes may start at once: one migrates, the others wait.
            c.batch_execute("SELECT pg_advisory_lock(7243001)")?;
            let r = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            c.batch_execute("SELECT pg_advisory_unlock(7243001)")?;
            r
        }
    };
    result.map_err(|e| DbError::Migration(e.to_string()))
}

/// What `backup` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupCopy {
    pub bytes: u64,
}

/// A consistent copy of a live SQLite database at `url` into the new file `to`
/// (`VACUUM INTO`: one read transaction, so the copy holds every write committed before
/// it began and none of those after, while the server goes on writing), checked with
/// `PRAGMA quick_check`. PostgreSQL has its own tools (`pg_dump`; README, Backups).
pub fn backup(url: &str, to: &std::path::Path) -> Result<BackupCopy, DbError> {
    if Backend::of_url(url) == Backend::Postgres {
        return Err(DbError::Connection(
            "a PostgreSQL database is backed up with pg_dump or the server's own backups (README, Backups)".into(),
        ));
    }
    if to.exists() {
        return Err(DbError::Connection(format!(
            "{} exists already: a backup goes to a new file",
            to.display()
        )));
    }
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    if !std::path::Path::new(path).exists() {
        return Err(DbError::Connection(format!("no database at {path}")));
    }
    let target = to
        .to_str()
        .ok_or_else(|| DbError::Connection("the backup's path is not UTF-8".into()))?;
    let mut conn = diesel::SqliteConnection::establish(path)
        .map_err(|e| DbError::Connection(e.to_string()))?;
    conn.batch_execute("PRAGMA busy_timeout = 10000;")?;
    // a string literal: quotes doubled
    conn.batch_execute(&format!("VACUUM INTO '{}'", target.replace('\'', "''")))?;
    drop(conn);
    let mut copy = diesel::SqliteConnection::establish(target)
        .map_err(|e| DbError::Connection(e.to_string()))?;
    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        quick_check: String,
    }
    let check: Check =
        diesel::RunQueryDsl::get_result(diesel::sql_query("PRAGMA quick_check"), &mut copy)?;
    if check.quick_check != "ok" {
        return Err(DbError::Connection(format!(
            "the copy at {target} failed its check: {}",
            check.quick_check
        )));
    }
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or_default();
    Ok(BackupCopy { bytes })
}

/// Test support: a fresh, empty PostgreSQL schema on the server at `admin_url`, and the
/// URL that makes a connection use it.
pub fn create_test_schema(admin_url: &str, name: &str) -> Result<String, DbError> {
    let mut conn = diesel::PgConnection::establish(admin_url)
        .map_err(|e| DbError::Connection(e.to_string()))?;
    conn.batch_execute(&format!("CREATE SCHEMA \"{name}\""))?;
    let sep = if admin_url.contains('?') { '&' } else { '?' };
    // the connections name the schema, so that `drop_test_schema` can wait for them
    Ok(format!(
        "{admin_url}{sep}options=-csearch_path%3D{name}&application_name={name}"
    ))
}

/// Test support: drops a schema of `create_test_schema` and all it holds, once the
/// connections whose `application_name` is the schema's name have closed (those still
/// open after 10 s are ended first).
pub fn drop_test_schema(admin_url: &str, name: &str) -> Result<(), DbError> {
    let mut conn = diesel::PgConnection::establish(admin_url)
        .map_err(|e| DbError::Connection(e.to_string()))?;
    let others = format!(
        "FROM pg_stat_activity WHERE application_name = '{name}' AND pid <> pg_backend_pid()"
    );
    conn.batch_execute(&format!(
        "DO $$ BEGIN FOR i IN 1..500 LOOP PERFORM pg_stat_clear_snapshot(); \
         EXIT WHEN NOT EXISTS (SELECT 1 {others}); PERFORM pg_sleep(0.02); END LOOP; END $$; \
         SELECT pg_terminate_backend(pid) {others}; DROP SCHEMA \"{name}\" CASCADE"
    ))?;
    Ok(())
}
