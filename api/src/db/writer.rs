//! Group commit for SQLite: one thread owns the writing connection and commits the
//! write jobs that queued up while the previous commit was being made in one
//! transaction, each job in its own savepoint. A job's caller gets its result only after
//! the commit that contains it is durable; a job that fails rolls back to its savepoint
//! without touching the others.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use diesel::Connection;

use super::{AnyConnection, DbError};

/// Most jobs committed together.
const MAX_BATCH: usize = 256;
/// Jobs waiting for the writer before callers block.
const QUEUE: usize = 4096;

type Outcome = Box<dyn Any + Send>;

/// A write job: runs inside the batch transaction, then is told whether it committed.
trait Job: Send {
    /// Runs the job in a savepoint; `false` when it failed (and was rolled back).
    fn run(&mut self, conn: &mut AnyConnection) -> bool;
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
    fn run(&mut self, conn: &mut AnyConnection) -> bool {
        // A nested diesel transaction is a savepoint.
        let result = conn.transaction(|c| (self.f)(c));
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
                Err(E::from(DbError::Connection(format!("commit failed: {e}"))))
            }
        };
        // The caller may have gone away; nothing to do then.
        let _ = self.reply.send(result);
    }
}

/// The handle to the writer thread.
pub struct Writer {
    jobs: SyncSender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    /// Starts the writer thread on `conn`; `wal_path` is the file of its write-ahead log.
    pub fn start(conn: AnyConnection, wal_path: String) -> Result<Writer, DbError> {
        let (jobs, rx) = sync_channel::<Box<dyn Job>>(QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, &wal_path))
            .map_err(|e| DbError::Connection(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs })
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
        self.jobs
            .send(job)
            .map_err(|_| E::from(DbError::Connection("the writer thread has stopped".into())))?;
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

fn writer_loop(mut conn: AnyConnection, rx: Receiver<Box<dyn Job>>, wal_path: &str) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = commit_batch(&mut conn, &mut batch);
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

fn commit_batch(conn: &mut AnyConnection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    let result = conn.transaction::<_, diesel::result::Error, _>(|c| {
        for job in batch.iter_mut() {
            let ran: Result<bool, Outcome> = catch_unwind(AssertUnwindSafe(|| job.run(c)));
            if ran.is_err() {
                // A job panicked: nothing of this batch is kept.
                return Err(diesel::result::Error::RollbackTransaction);
            }
        }
        Ok(())
    });
    result.map_err(|e| e.to_string())
}
