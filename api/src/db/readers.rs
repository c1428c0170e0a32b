//! Reads run on a small set of dedicated threads, each owning its connection. Under load
//! a reader takes the next queued job without sleeping, so a read costs two cross-thread
//! hand-offs at most, and the async workers never block on the database.
//!
//! Fair share: the reads of one client (its clinic and client id, set for the request
//! by the authentication middleware with [`as_client`]) hold at most its share of the
//! readers at once, queued or running (by default all but one, at least one;
//! `--db-reads-per-client`); its further reads wait for one of its own to end, so the
//! other clients always find a reader. A turn is taken before the job is queued and
//! given back by the reader thread when the job ends, even when the caller has gone
//! away, so that dropping requests cannot free turns early. Reads outside a request
//! (background jobs) take no turn. A job's time limit (`deadline.rs`) is armed while it
//! runs.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender, bounded};
use tokio::sync::Semaphore;

use super::deadline::Deadline;
use super::{AnyConnection, DbError, Manager};

type Job = Box<dyn FnOnce(&mut AnyConnection) + Send>;

/// Jobs waiting for a reader before callers wait to enqueue.
const QUEUE: usize = 4096;

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
    jobs: Sender<Job>,
    shares: Arc<Shares>,
}

impl Readers {
    /// Opens `count` connections and starts one thread for each; a client holds
    /// `share` of them at once (default: all but one, at least one).
    pub(super) fn start(
        manager: &Manager,
        count: u32,
        share: Option<u32>,
    ) -> Result<Readers, DbError> {
        let (jobs, rx) = bounded::<Job>(QUEUE);
        let count = count.max(1);
        for i in 0..count {
            let (conn, deadline) = manager.open_limited(manager.limits.statement)?;
            let rx = rx.clone();
            let manager = manager.clone();
            std::thread::Builder::new()
                .name(format!("db-reader-{i}"))
                .spawn(move || reader_loop(conn, deadline, rx, manager))
                .map_err(|e| DbError::Connection(format!("cannot start a reader: {e}")))?;
        }
        let share = share.unwrap_or(count.saturating_sub(1)).clamp(1, count);
        let share = usize::try_from(share).unwrap_or(1);
        Ok(Readers {
            jobs,
            shares: Arc::new(Shares::new(share)),
        })
    }

    /// Runs `f` on a reader and waits (asynchronously) for its result; within the
    /// client's share of the readers when the task runs [`as_client`].
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, DbError> + Send + 'static,
    {
        let stopped = || DbError::Connection("the database readers have stopped".into());
        let turn = match CLIENT.try_with(Arc::clone) {
            Ok(client) => Some(self.shares.take(client).await.ok_or_else(stopped)?),
            Err(_) => None,
        };
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let out = f(conn);
            // the turn ends with the work, even when the caller has gone away
            drop(turn);
            // The caller may have gone away (client disconnected); nothing to do then.
            let _ = reply.send(out);
        });
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

fn reader_loop(
    mut conn: AnyConnection,
    mut deadline: Deadline,
    rx: Receiver<Job>,
    manager: Manager,
) {
    while let Ok(job) = rx.recv() {
        {
            let _armed = deadline.arm();
            job(&mut conn);
        }
        if diesel::r2d2::R2D2Connection::is_broken(&mut conn) {
            // The server went away (PostgreSQL restart): reconnect before the next job.
            if let Ok((fresh, d)) = manager.open_limited(manager.limits.statement) {
                conn = fresh;
                deadline = d;
            }
        }
    }
}

/// Shards of the clients' semaphores: a read locks one shard briefly to find its
/// client's, never a lock shared by all clients.
const SHARDS: usize = 16;

/// The readers each client may hold at once.
struct Shares {
    share: usize,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<Arc<str>, Arc<Semaphore>>>>,
}

impl Shares {
    fn new(share: usize) -> Shares {
        Shares {
            share,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, client: &str) -> &Mutex<HashMap<Arc<str>, Arc<Semaphore>>> {
        let i = usize::try_from(self.hasher.hash_one(client) % SHARDS as u64).unwrap_or(0);
        &self.shards[i]
    }

    /// A turn of `client` (waiting for one of its reads to end when it holds its whole
    /// share); `None` only if the semaphore was closed, which never happens.
    async fn take(self: &Arc<Self>, client: Arc<str>) -> Option<Turn> {
        let semaphore = {
            let mut map = self
                .shard(&client)
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            map.entry(client.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.share)))
                .clone()
        };
        // made before waiting, so that a cancelled wait also tidies the map
        let mut turn = Turn {
            shares: self.clone(),
            client,
            semaphore,
            held: false,
        };
        turn.semaphore.acquire().await.ok()?.forget();
        turn.held = true;
        Some(turn)
    }
}

/// One reader of a client's share, given back when dropped; the client's entry goes
/// when nobody holds or waits for a turn of it.
struct Turn {
    shares: Arc<Shares>,
    client: Arc<str>,
    semaphore: Arc<Semaphore>,
    held: bool,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut map = self
            .shares
            .shard(&self.client)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.held {
            self.semaphore.add_permits(1);
        }
        // every other reference is a turn's, cloned under this lock: only the map's and
        // this one left means no other turn of this client holds or waits
        if Arc::strong_count(&self.semaphore) == 2
            && map
                .get(&self.client)
                .is_some_and(|s| Arc::ptr_eq(s, &self.semaphore))
        {
            map.remove(&self.client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_holds_its_share_and_waits_for_more() {
        let shares = Arc::new(Shares::new(2));
        let a: Arc<str> = "t/a".into();
        let first = shares.take(a.clone()).await;
        let second = shares.take(a.clone()).await;
        assert!(first.is_some() && second.is_some());
        // a third turn of the same client waits
        let third =
            tokio::time::timeout(std::time::Duration::from_millis(50), shares.take(a.clone()))
                .await;
        assert!(third.is_err(), "a third turn must wait");
        // another client is not held up
        let other = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            shares.take("t/b".into()),
        )
        .await;
        assert!(other.is_ok_and(|t| t.is_some()));
        // a turn given back lets the next one in
        drop(first);
        let third = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            shares.take(a.clone()),
        )
        .await;
        assert!(third.is_ok_and(|t| t.is_some()));
    }

    #[tokio::test]
    async fn entries_go_when_no_turn_is_left() {
        let shares = Arc::new(Shares::new(1));
        let turn = shares.take("t/a".into()).await;
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            shares.take("t/a".into()),
        )
        .await;
        assert!(waiting.is_err(), "waits, then is cancelled");
        drop(turn);
        let left: usize = shares
            .shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(1))
            .sum();
        assert_eq!(left, 0);
    }
}
