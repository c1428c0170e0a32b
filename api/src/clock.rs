//! The source of "now": the system clock in production, a settable one in tests.

use std::sync::Mutex;

use jiff::Timestamp;

/// Where the server reads the current instant.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until moved (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Microseconds since the Unix epoch, as stored.
pub fn to_micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

/// A stored instant (microseconds since the Unix epoch) as a timestamp; out-of-range
/// values are clamped.
pub fn from_micros(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(if micros < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// A stored instant as a FHIR `instant` (UTC, microseconds).
pub fn instant_string(micros: i64) -> String {
    match Timestamp::from_microsecond(micros) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        Err(_) => "1970-01-01T00:00:00.000000Z".to_string(),
    }
}

/// A stored instant as an HTTP date (`Last-Modified`).
pub fn http_date(micros: i64) -> String {
    let secs = u64::try_from(micros.div_euclid(1_000_000)).unwrap_or(0);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// The longest a write may take from reading the clock (in its transaction) to its
/// commit. Search and history Bundles state as `meta.lastUpdated` the instant this long
/// before their read began: every version stamped up to then is in the answer, so a
/// client that polls again from that instant misses nothing (README, "Polling").
pub const POLL_LAG_MICROS: i64 = 5_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_instants() {
        assert_eq!(
            instant_string(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            http_date(1_700_000_000_123_456),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
    }
}
