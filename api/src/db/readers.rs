//! Reads run on a small set of dedicated threads, each owning its connection. Under load
//! a reader takes the next queued job without sleeping, so a read costs two cross-thread
//! hand-offs at most, and the async workers never block on the database.
//!
//! Fair share: the reads of one client (its clinic and client id, set for the request
//! by the authentication middleware with [`as_client`]) run on at most its share of the
//! readers at once (by default all but one, at least one; `--db-reads-per-client`).
//! Each client has a queue of its own; a free reader takes the next job of the next
//! client in turn whose share is not used up, so another client's read waits for at
//! most one job per reader, however many a client has queued, and readers never idle
//! while a job could run. A job runs to its end even when its caller has gone away.
//! Reads outside a request (background jobs, the token endpoint) queue as one more
//! client without a share limit. A job's time limit (`deadline.rs`) is armed while it
//! runs.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use diesel::connection::SimpleConnection;

use super::connection::{AnyConnection, DbError, Manager};
use super::deadline::Deadline;

type Job = Box<dyn FnOnce(&mut AnyConnection) + Send>;

tokio::task_local! {
    /// The client whose request this task is handling.
    static CLIENT: Arc<str>;
}

/// Runs `work` (the handling of a request) on behalf of `client`: its reads take turns
/// within the client's share of the readers.
pub async fn as_client<F: Future>(client: Arc<str>, work: F) -> F::Output {
    CLIENT.scope(client, work).await
}

pub struct Readers {
    shared: Arc<Shared>,
}

struct Shared {
    queues: Mutex<Queues>,
    work: Condvar,
}

impl Readers {
    /// Opens `count` connections and starts one thread for each; a client runs on
    /// `share` of them at once (default: all but one, at least one).
    pub(super) fn start(
        manager: &Manager,
        count: u32,
        share: Option<u32>,
    ) -> Result<Readers, DbError> {
        let count = count.max(1);
        let share = share.unwrap_or(count.saturating_sub(1)).clamp(1, count);
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::new(usize::try_from(share).unwrap_or(1))),
            work: Condvar::new(),
        });
        for i in 0..count {
            let (conn, deadline) = manager.open_limited(manager.limits.statement)?;
            let shared = shared.clone();
            let manager = manager.clone();
            std::thread::Builder::new()
                .name(format!("db-reader-{i}"))
                .spawn(move || reader_loop(conn, deadline, &shared, manager))
                .map_err(|e| DbError::Connection(format!("cannot start a reader: {e}")))?;
        }
        Ok(Readers { shared })
    }

    /// Jobs queued, not yet taken by a reader.
    pub fn waiting(&self) -> usize {
        self.shared
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clients
            .values()
            .map(|q| q.jobs.len())
            .sum()
    }

    /// Runs `f` on a reader and waits (asynchronously) for its result; within the
    /// client's share of the readers when the task runs [`as_client`].
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let client: Option<Arc<str>> = CLIENT.try_with(Arc::clone).ok();
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The caller may have gone away (client disconnected); nothing to do then.
            let _ = reply.send(f(conn));
        });
        self.shared
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(client, job);
        self.shared.work.notify_one();
        result
            .await
            .map_err(|_| DbError::Connection("the database readers have stopped".into()))?
    }
}

impl Drop for Readers {
    /// The reader threads end (and close their connections) once the jobs queued are
    /// done.
    fn drop(&mut self) {
        self.shared
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.shared.work.notify_all();
    }
}

fn reader_loop(mut conn: AnyConnection, mut deadline: Deadline, shared: &Shared, manager: Manager) {
    let mut last_used = std::time::Instant::now();
    loop {
        let (client, job) = {
            let mut queues = shared.queues.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(next) = queues.next() {
                    break next;
                }
                if queues.closed {
                    // the database is dropped: the connection closes with the thread
                    return;
                }
                queues = shared
                    .work
                    .wait(queues)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        // a connection known to be broken (the job before failed on it), or idle long
        // enough for the server to have restarted meanwhile, is checked and opened again
        // before the job, so that the job does not fail on it
        if diesel::r2d2::R2D2Connection::is_broken(&mut conn)
            || (last_used.elapsed() >= IDLE_CHECK && conn.batch_execute("SELECT 1").is_err())
        {
            reopen(&manager, &mut conn, &mut deadline);
        }
        {
            let _armed = deadline.arm();
            job(&mut conn);
        }
        last_used = std::time::Instant::now();
        let more = shared
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .done(&client);
        if more {
            shared.work.notify_one();
        }
        if diesel::r2d2::R2D2Connection::is_broken(&mut conn) {
            // The server went away (PostgreSQL restart): reconnect before the next job.
            reopen(&manager, &mut conn, &mut deadline);
        }
    }
}

/// A reader idle this long checks its connection before its next job (a round trip).
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the reader's connection again; on failure the old one stays (broken: the next
/// job tries again).
fn reopen(manager: &Manager, conn: &mut AnyConnection, deadline: &mut Deadline) {
    if let Ok((fresh, d)) = manager.open_limited(manager.limits.statement) {
        *conn = fresh;
        *deadline = d;
    }
}

/// The queued reads, one queue per client, and the clients whose next job may run now
/// (queued jobs, and fewer running than their share), in turn.
struct Queues {
    share: usize,
    clients: HashMap<Option<Arc<str>>, ClientQueue>,
    ready: VecDeque<Option<Arc<str>>>,
    /// The readers are dropped: the threads end.
    closed: bool,
}

struct ClientQueue {
    jobs: VecDeque<Job>,
    running: usize,
    /// Whether the client is in `ready`.
    ready: bool,
}

impl Queues {
    fn new(share: usize) -> Queues {
        Queues {
            share,
            clients: HashMap::new(),
            ready: VecDeque::new(),
            closed: false,
        }
    }

    /// How many readers `client` may run on at once (reads outside a request: all).
    fn share_of(&self, client: &Option<Arc<str>>) -> usize {
        if client.is_some() {
            self.share
        } else {
            usize::MAX
        }
    }

    fn push(&mut self, client: Option<Arc<str>>, job: Job) {
        let share = self.share_of(&client);
        let q = self.clients.entry(client.clone()).or_insert(ClientQueue {
            jobs: VecDeque::new(),
            running: 0,
            ready: false,
        });
        q.jobs.push_back(job);
        if !q.ready && q.running < share {
            q.ready = true;
            self.ready.push_back(client);
        }
    }

    /// The next job to run: of the next client in turn; it takes one of the client's
    /// readers until [`Queues::done`].
    fn next(&mut self) -> Option<(Option<Arc<str>>, Job)> {
        let (client, job) = loop {
            let client = self.ready.pop_front()?;
            if let Some(job) = self
                .clients
                .get_mut(&client)
                .and_then(|q| q.jobs.pop_front())
            {
                break (client, job);
            }
        };
        let share = self.share_of(&client);
        let q = self.clients.get_mut(&client)?;
        q.running += 1;
        if !q.jobs.is_empty() && q.running < share {
            // its next job waits for the other clients' turns
            self.ready.push_back(client.clone());
        } else {
            q.ready = false;
        }
        Some((client, job))
    }

    /// A job of `client` has ended; whether a job may now run that could not before.
    fn done(&mut self, client: &Option<Arc<str>>) -> bool {
        let share = self.share_of(client);
        let Some(q) = self.clients.get_mut(client) else {
            return false;
        };
        q.running = q.running.saturating_sub(1);
        if q.running == 0 && q.jobs.is_empty() {
            self.clients.remove(client);
            return false;
        }
        if !q.ready && !q.jobs.is_empty() && q.running < share {
            q.ready = true;
            self.ready.push_back(client.clone());
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Box::new(|_| {})
    }

    fn client(name: &str) -> Option<Arc<str>> {
        Some(name.into())
    }

    #[test]
    fn a_client_runs_on_its_share_and_the_others_take_their_turns() {
        let mut q = Queues::new(2);
        for _ in 0..100 {
            q.push(client("t/a"), job());
        }
        q.push(client("t/b"), job());
        // a's first job, then b's (in turn), then a's second: a's share is used up
        let order: Vec<Option<Arc<str>>> =
            std::iter::from_fn(|| q.next().map(|(c, _)| c)).collect();
        assert_eq!(order, vec![client("t/a"), client("t/b"), client("t/a")]);
        // b's job ends: nothing of b is left; a still waits for one of its own
        assert!(!q.done(&client("t/b")));
        assert!(q.next().is_none());
        // one of a's ends: its next may run
        assert!(q.done(&client("t/a")));
        assert_eq!(q.next().map(|(c, _)| c), Some(client("t/a")));
    }

    #[test]
    fn reads_outside_a_request_have_no_share_and_entries_go_when_done() {
        let mut q = Queues::new(1);
        for _ in 0..3 {
            q.push(None, job());
        }
        assert_eq!(std::iter::from_fn(|| q.next()).count(), 3);
        for _ in 0..3 {
            q.done(&None);
        }
        q.push(client("t/a"), job());
        let (c, _) = q.next().expect("a job");
        q.done(&c);
        assert!(q.clients.is_empty() && q.ready.is_empty());
    }
}
