//! Group commit for SQLite: one thread owns the writing connection and commits the
//! write jobs that queued up while the previous commit was being made in one
//! transaction. A job's caller gets its result only after the commit that contains it
//! is durable; a job that fails leaves the others' work as it is.
//!
//! Jobs first run one after the other straight in the transaction. Only when one fails
//! is the transaction rolled back and the batch run again, each job in a savepoint of
//! its own, so that the failed one rolls back alone: a savepoint costs a statement on
//! either side and a copy of every page its job changes, which most batches, where no
//! job fails, need not pay.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use diesel::Connection;

use super::connection::{AnyConnection, DbError};
use super::deadline::Deadline;

/// Most jobs committed together.
const MAX_BATCH: usize = 256;
/// Jobs waiting for the writer before callers block.
const QUEUE: usize = 4096;

type Outcome = Box<dyn Any + Send>;

/// A write job: runs inside the batch transaction, then is told whether it committed.
trait Job: Send {
    /// Runs the job, in a savepoint of its own when `isolated`; `false` when it failed
    /// (and, isolated, was rolled back).
    fn run(&mut self, conn: &mut AnyConnection, isolated: bool) -> bool;
    /// Delivers the result: `committed` is the outcome of the batch's commit.
    fn finish(self: Box<Self>, committed: &Result<(), String>);
}

struct TypedJob<T, E, F> {
    f: F,
    result: Option<Result<T, E>>,
    reply: SyncSender<Result<T, E>>,
}

impl<T, E, F> Job for TypedJob<T, E, F>
where
    T: Send + 'static,
    E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    F: FnMut(&mut AnyConnection) -> Result<T, E> + Send + 'static,
{
    fn run(&mut self, conn: &mut AnyConnection, isolated: bool) -> bool {
        // A nested diesel transaction is a savepoint.
        let result = if isolated {
            conn.transaction(|c| (self.f)(c))
        } else {
            (self.f)(conn)
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: &Result<(), String>) {
        let result = match (committed, self.result) {
            (_, None) => Err(E::from(DbError::Connection("write job did not run".into()))),
            (Ok(()), Some(r)) => r,
            (Err(_), Some(Err(job_error))) => Err(job_error),
            (Err(e), Some(Ok(_))) => {
                Err(E::from(DbError::connecting(format!("commit failed: {e}"))))
            }
        };
        // The caller may have gone away; nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// What the writer has done, for the metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Jobs sent and not yet taken into a batch.
    queued: AtomicU64,
    /// Batches committed (or rolled back), jobs in them, and the time they took.
    batches: AtomicU64,
    jobs: AtomicU64,
    commit_micros: AtomicU64,
}

/// A reading of [`WriterStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterReading {
    pub queued: u64,
    pub batches: u64,
    pub jobs: u64,
    pub commit_micros: u64,
}

impl WriterStats {
    pub fn read(&self) -> WriterReading {
        WriterReading {
            queued: self.queued.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
            commit_micros: self.commit_micros.load(Ordering::Relaxed),
        }
    }
}

/// The handle to the writer thread.
pub struct Writer {
    jobs: SyncSender<Box<dyn Job>>,
    pub(super) stats: Arc<WriterStats>,
}

impl Writer {
    /// Starts the writer thread on `conn`; `wal_path` is the file of its write-ahead log,
    /// `deadline` the time limit of the search SQL of each job (armed while it runs).
    pub fn start(
        conn: AnyConnection,
        deadline: Deadline,
        wal_path: String,
    ) -> Result<Writer, DbError> {
        let (jobs, rx) = sync_channel::<Box<dyn Job>>(QUEUE);
        let stats = Arc::new(WriterStats::default());
        let counted = stats.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, &deadline, rx, &wal_path, &counted))
            .map_err(|e| DbError::Connection(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs, stats })
    }

    /// Runs `f` in the next group commit and waits until that commit is durable.
    pub fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
        F: FnMut(&mut AnyConnection) -> Result<T, E> + Send + 'static,
    {
        let (reply, result) = sync_channel(1);
        let job: Box<dyn Job> = Box::new(TypedJob {
            f,
            result: None,
            reply,
        });
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.jobs.send(job).map_err(|_| {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            E::from(DbError::Connection("the writer thread has stopped".into()))
        })?;
        result
            .recv()
            .map_err(|_| E::from(DbError::Connection("the writer thread has stopped".into())))?
    }
}

/// After a commit, the writer empties a write-ahead log grown past this size: under a
/// long run of writes the checkpointer's passive checkpoints never catch up, and a log
/// of gigabytes slows every read. The writer does it itself, between two of its
/// transactions (it is the only writer, so no transaction of its own can find its
/// snapshot reset); readers only make it wait.
const WAL_LIMIT_BYTES: u64 = 256 * 1024 * 1024;

fn writer_loop(
    mut conn: AnyConnection,
    deadline: &Deadline,
    rx: Receiver<Box<dyn Job>>,
    wal_path: &str,
    stats: &WriterStats,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let taken = batch.len() as u64;
        stats.queued.fetch_sub(taken, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let committed = commit_batch(&mut conn, deadline, &mut batch);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(taken, Ordering::Relaxed);
        stats.commit_micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        for job in batch {
            job.finish(&committed);
        }
        if std::fs::metadata(wal_path).is_ok_and(|m| m.len() > WAL_LIMIT_BYTES) {
            use diesel::connection::SimpleConnection;
            // A reader holding an old snapshot (a bulk export) keeps the log from being
            // emptied: wait for it briefly only, and try again after a later commit.
            let emptied =
                conn.batch_execute("PRAGMA busy_timeout = 50; PRAGMA wal_checkpoint(TRUNCATE);");
            if let Err(e) = emptied {
                tracing::warn!(error = %e, "emptying the write-ahead log failed; retried later");
            }
            if let Err(e) = conn.batch_execute("PRAGMA busy_timeout = 10000;") {
                tracing::warn!(error = %e, "restoring the busy timeout failed");
            }
        }
    }
}

fn commit_batch(
    conn: &mut AnyConnection,
    deadline: &Deadline,
    batch: &mut [Box<dyn Job>],
) -> Result<(), String> {
    match run_batch(conn, deadline, batch, false) {
        // a job failed: run them all again, each in its own savepoint (a single job's
        // failure is its answer, nothing else was in the transaction)
        Err(Failure::Job) if batch.len() > 1 => run_batch(conn, deadline, batch, true),
        other => other,
    }
    .map_err(|f| match f {
        Failure::Job => "a write failed".to_string(),
        Failure::Panicked => "a write panicked".to_string(),
        Failure::Database(e) => e.to_string(),
    })
}

/// Why a batch was not committed.
enum Failure {
    /// A job failed (and was not isolated): nothing was kept.
    Job,
    /// A job panicked: nothing of the batch is kept.
    Panicked,
    Database(diesel::result::Error),
}

impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Self {
        Failure::Database(e)
    }
}

fn run_batch(
    conn: &mut AnyConnection,
    deadline: &Deadline,
    batch: &mut [Box<dyn Job>],
    isolated: bool,
) -> Result<(), Failure> {
    conn.transaction::<_, Failure, _>(|c| {
        // the write lock first, before any job reads: another process on the same file
        // (a second server, a `hep-server` command) then makes this wait (busy_timeout)
        // instead of failing the batch because its snapshot went stale
        take_write_lock(c)?;
        for job in batch.iter_mut() {
            let ran: Result<bool, Outcome> = catch_unwind(AssertUnwindSafe(|| {
                let _armed = deadline.arm();
                job.run(c, isolated)
            }));
            match ran {
                Err(_) => return Err(Failure::Panicked),
                Ok(false) if !isolated => return Err(Failure::Job),
                Ok(_) => {}
            }
        }
        Ok(())
    })
}

/// Makes the open SQLite transaction a write transaction at once (as `BEGIN IMMEDIATE`
/// would): a write statement that changes nothing still takes the lock.
fn take_write_lock(conn: &mut AnyConnection) -> Result<(), diesel::result::Error> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute("UPDATE store_settings SET name = name WHERE 0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn job(
        value: i64,
        fail: bool,
    ) -> (
        Box<dyn Job>,
        std::sync::mpsc::Receiver<Result<i64, DbError>>,
    ) {
        let (reply, result) = sync_channel(1);
        let f = move |c: &mut AnyConnection| -> Result<i64, DbError> {
            diesel::sql_query(format!("INSERT INTO t (n) VALUES ({value})")).execute(c)?;
            if fail {
                return Err(DbError::Connection("refused".into()));
            }
            Ok(value)
        };
        (
            Box::new(TypedJob {
                f,
                result: None,
                reply,
            }),
            result,
        )
    }

    fn stored(conn: &mut AnyConnection) -> Vec<i64> {
        diesel::sql_query("SELECT n FROM t ORDER BY n")
            .load::<N>(conn)
            .expect("select")
            .into_iter()
            .map(|r| r.n)
            .collect()
    }

    fn run(conn: &mut AnyConnection, jobs: &[(i64, bool)]) -> Vec<Result<i64, String>> {
        let (mut batch, replies): (Vec<_>, Vec<_>) =
            jobs.iter().map(|&(v, fail)| job(v, fail)).unzip();
        let committed = commit_batch(conn, &Deadline::new(None), &mut batch);
        for j in batch {
            j.finish(&committed);
        }
        replies
            .into_iter()
            .map(|r| r.recv().expect("reply").map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn a_failed_job_leaves_the_others_of_its_batch() {
        let mut conn =
            AnyConnection::Sqlite(diesel::SqliteConnection::establish(":memory:").expect("open"));
        // the writer's batches lock through `store_settings`, a table of every database
        conn.batch_execute(
            "CREATE TABLE t (n BIGINT NOT NULL); CREATE TABLE store_settings (name TEXT PRIMARY KEY)",
        )
        .expect("tables");
        // no failure: all in one go
        let all = run(&mut conn, &[(1, false), (2, false)]);
        assert_eq!(all, [Ok(1), Ok(2)]);
        assert_eq!(stored(&mut conn), [1, 2]);
        // the second of three fails: its row is not kept, the others' are
        let some = run(&mut conn, &[(3, false), (4, true), (5, false)]);
        assert_eq!(some[0], Ok(3));
        assert!(
            some[1].as_ref().is_err_and(|e| e.contains("refused")),
            "{some:?}"
        );
        assert_eq!(some[2], Ok(5));
        assert_eq!(stored(&mut conn), [1, 2, 3, 5]);
        // a batch of one that fails
        let one = run(&mut conn, &[(6, true)]);
        assert!(one[0].as_ref().is_err_and(|e| e.contains("refused")));
        assert_eq!(stored(&mut conn), [1, 2, 3, 5]);
    }
}
