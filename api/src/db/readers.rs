//! Reads run on a small set of dedicated threads, each owning its connection. Under load
//! a reader takes the next queued job without sleeping, so a read costs two cross-thread
//! hand-offs at most, and the async workers never block on the database.

use crossbeam_channel::{Receiver, Sender, bounded};

use super::{AnyConnection, DbError, Manager};

type Job = Box<dyn FnOnce(&mut AnyConnection) + Send>;

/// Jobs waiting for a reader before callers wait to enqueue.
const QUEUE: usize = 4096;

pub struct Readers {
    jobs: Sender<Job>,
}

impl Readers {
    /// Opens `count` connections and starts one thread for each.
    pub(super) fn start(manager: &Manager, count: u32) -> Result<Readers, DbError> {
        let (jobs, rx) = bounded::<Job>(QUEUE);
        for i in 0..count.max(1) {
            let conn = manager.open()?;
            let rx = rx.clone();
            let manager = manager.clone();
            std::thread::Builder::new()
                .name(format!("db-reader-{i}"))
                .spawn(move || reader_loop(conn, rx, manager))
                .map_err(|e| DbError::Connection(format!("cannot start a reader: {e}")))?;
        }
        Ok(Readers { jobs })
    }

    /// Runs `f` on a reader and waits (asynchronously) for its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone away (client disconnected); nothing to do then.
            let _ = reply.send(f(conn));
        });
        let stopped = || DbError::Connection("the database readers have stopped".into());
        // A full queue means sustained overload: wait for room off the async worker.
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(crossbeam_channel::TrySendError::Full(job)) => {
                let jobs = self.jobs.clone();
                tokio::task::spawn_blocking(move || jobs.send(job))
                    .await
                    .map_err(|_| stopped())?
                    .map_err(|_| stopped())?;
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        result.await.map_err(|_| stopped())?
    }
}

fn reader_loop(mut conn: AnyConnection, rx: Receiver<Job>, manager: Manager) {
    while let Ok(job) = rx.recv() {
        job(&mut conn);
        if diesel::r2d2::R2D2Connection::is_broken(&mut conn) {
            // The server went away (PostgreSQL restart): reconnect before the next job.
            if let Ok(fresh) = manager.open() {
                conn = fresh;
            }
        }
    }
}
