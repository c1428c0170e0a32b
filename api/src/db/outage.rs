//! Outages of the database: a full disk, or a database that cannot be reached. An error
//! that shows one answers 503 with `Retry-After` (not a 500), and the state is logged
//! once when it begins and once when it ends, not once per request.

use std::sync::atomic::{AtomicU8, Ordering};

/// Why the database cannot do its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The file system of the database is full (SQLite `SQLITE_FULL`, PostgreSQL
    /// "could not extend file" / "No space left on device").
    DiskFull,
    /// The database cannot be reached (a connection refused, closed or timed out).
    Unavailable,
}

impl Outage {
    /// In words, for the OperationOutcome and the log.
    pub fn text(self) -> &'static str {
        match self {
            Outage::DiskFull => "disk full",
            Outage::Unavailable => "database unavailable",
        }
    }

    /// Seconds a client should wait before it tries again.
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Outage::DiskFull => 30,
            Outage::Unavailable => 5,
        }
    }

    fn code(self) -> u8 {
        match self {
            Outage::DiskFull => 1,
            Outage::Unavailable => 2,
        }
    }
}

/// The outage a message of the database names, if any.
pub fn of_message(message: &str) -> Option<Outage> {
    const DISK_FULL: &[&str] = &[
        "disk full",
        // SQLite
        "database or disk is full",
        // PostgreSQL
        "could not extend file",
        "No space left on device",
    ];
    const UNAVAILABLE: &[&str] = &[
        // this server's own words for it (a connection attempt's error as the pool
        // reports it)
        "database unavailable",
        "unable to open database file",
        "disk I/O error",
        "server closed the connection unexpectedly",
        "terminating connection due to administrator command",
        "the database system is shutting down",
        "the database system is starting up",
        "Connection refused",
        "could not connect to server",
        "connection to server",
        "no connection to the server",
        // libpq, on a connection the server closed while it sat in the pool
        "could not send data to server",
        "could not receive data from server",
        "Connection reset by peer",
        "Broken pipe",
        "lost synchronization with server",
        "SSL SYSCALL error",
        "SSL connection has been closed unexpectedly",
    ];
    if DISK_FULL.iter().any(|m| message.contains(m)) {
        Some(Outage::DiskFull)
    } else if UNAVAILABLE.iter().any(|m| message.contains(m)) {
        Some(Outage::Unavailable)
    } else {
        None
    }
}

/// The outage a diesel error shows, if any.
pub fn of_error(e: &diesel::result::Error) -> Option<Outage> {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        // libpq could not send the statement: the connection is gone, whatever its words
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => Some(Outage::Unavailable),
        Error::RollbackErrorOnCommit { commit_error, .. } => of_error(commit_error),
        Error::DatabaseError(_, info) => of_message(info.message()),
        Error::BrokenTransactionManager => Some(Outage::Unavailable),
        _ => None,
    }
}

/// The pool's handler of failed connection attempts: one that shows an outage notes it.
#[derive(Debug)]
pub struct NoteOutages(pub std::sync::Arc<OutageLog>);

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for NoteOutages {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        if let Some(o) = of_message(&error.to_string()) {
            self.0.met(o);
        }
    }
}

/// The state of the process's database, for the log: a line when an outage begins,
/// one when it ends.
///
/// A full disk ends only with a write served, and only once no write has met it for
/// [`QUIET`]: while the disk is full, small writes (an audit record) may still fit
/// between the large ones that do not, and reads are served throughout, neither of
/// which means the disk has room again. An unreachable database ends with any answer.
#[derive(Debug, Default)]
pub struct OutageLog {
    state: AtomicU8,
    /// When a request last met the outage (microseconds since [`EPOCH`]).
    last_met: std::sync::atomic::AtomicU64,
}

/// How long a full disk must have refused no write before a served write ends it.
pub const QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// The start of the process's own clock of outages.
static EPOCH: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

fn micros_now() -> u64 {
    u64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// What the database was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Read,
    Write,
}

impl OutageLog {
    /// A request met `outage`: logged when it is new.
    pub fn met(&self, outage: Outage) {
        self.last_met.store(micros_now(), Ordering::Release);
        if self.state.swap(outage.code(), Ordering::AcqRel) != outage.code() {
            tracing::error!(
                outage = outage.text(),
                "database outage began; requests answer 503"
            );
        }
    }

    /// The outage under way, if any.
    pub fn current(&self) -> Option<Outage> {
        match self.state.load(Ordering::Acquire) {
            1 => Some(Outage::DiskFull),
            2 => Some(Outage::Unavailable),
            _ => None,
        }
    }

    /// What one request found: served (`ok`), or failed, by an outage or not.
    pub fn note(&self, asked: Asked, ok: bool, outage: Option<Outage>) {
        match (ok, outage) {
            (true, _) => self.served(asked),
            (false, Some(o)) => self.met(o),
            (false, None) => {}
        }
    }

    /// A request was served by the database: the outage, if this shows it is over, ends.
    pub fn served(&self, asked: Asked) {
        self.served_at(asked, micros_now());
    }

    fn served_at(&self, asked: Asked, now: u64) {
        let ends = match self.current() {
            None => false,
            Some(Outage::Unavailable) => true,
            Some(Outage::DiskFull) => {
                let quiet = now.saturating_sub(self.last_met.load(Ordering::Acquire));
                asked == Asked::Write && quiet >= QUIET.as_micros() as u64
            }
        };
        if ends && self.state.swap(0, Ordering::AcqRel) != 0 {
            tracing::warn!("database outage ended");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_ends_with_a_write_after_a_quiet_while() {
        let log = OutageLog::default();
        log.met(Outage::DiskFull);
        // reads, and a small write between refused ones, do not end it
        log.served(Asked::Read);
        log.served(Asked::Write);
        assert_eq!(log.current(), Some(Outage::DiskFull));
        let later = log.last_met.load(Ordering::Acquire) + QUIET.as_micros() as u64;
        log.served_at(Asked::Read, later);
        assert_eq!(log.current(), Some(Outage::DiskFull));
        log.served_at(Asked::Write, later);
        assert_eq!(log.current(), None);
        // an unreachable database ends with any answer
        log.met(Outage::Unavailable);
        log.served(Asked::Read);
        assert_eq!(log.current(), None);
    }

    #[test]
    fn messages_of_either_backend_name_their_outage() {
        assert_eq!(
            of_message("database or disk is full"),
            Some(Outage::DiskFull)
        );
        assert_eq!(
            of_message("could not extend file \"base/16384/2619\": No space left on device"),
            Some(Outage::DiskFull)
        );
        assert_eq!(
            of_message("server closed the connection unexpectedly"),
            Some(Outage::Unavailable)
        );
        assert_eq!(
            of_message(
                "timed out waiting for connection: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused"
            ),
            Some(Outage::Unavailable)
        );
        assert_eq!(
            of_message("could not send data to server: Broken pipe"),
            Some(Outage::Unavailable)
        );
        // a pool's timeout after a connection attempt this server described
        assert_eq!(
            of_message("timed out waiting for connection: database unavailable"),
            Some(Outage::Unavailable)
        );
        // a pool that is only busy, and other errors, are not outages
        assert_eq!(of_message("timed out waiting for connection"), None);
        assert_eq!(
            of_message("UNIQUE constraint failed: resources.res_id"),
            None
        );
    }

    #[test]
    fn an_outage_is_logged_when_it_begins_and_when_it_ends() {
        let log = OutageLog::default();
        log.met(Outage::Unavailable);
        assert_eq!(
            log.state.load(Ordering::Acquire),
            Outage::Unavailable.code()
        );
        log.met(Outage::Unavailable);
        log.served(Asked::Read);
        assert_eq!(log.state.load(Ordering::Acquire), 0);
    }
}
