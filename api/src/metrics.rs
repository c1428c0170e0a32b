//! Metrics in the Prometheus / OpenMetrics text format (`GET /metrics`, for a token
//! with the `hep-admin` scope): requests by route template, method and status with
//! their latency, tokens issued and refused, and, read when scraped, the database's
//! outage state, the reads waiting for a reader, the audit queue, the SQLite
//! writer's queue, commits, jobs and commit time, the PostgreSQL pool's use and wait,
//! and the background jobs' lag and backlog (sessions, schedules, summaries, exports,
//! subscriptions). No label holds a
//! resource id, a query or anything about a patient: routes are templates, methods
//! and statuses come from short fixed lists.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::audit::AuditLog;
use crate::db::Db;
use crate::db::backlog::Backlog;
use crate::db::outage::Outage;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutageLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// Latency buckets from 1 ms to about 16 s.
#[derive(Clone)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.001, 2.0, 15))
    }
}

/// The metrics of this process.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, Buckets>,
    tokens: Family<TokenLabels, Counter>,
    outage: Family<OutageLabels, Gauge>,
    reads_waiting: Gauge,
    audit_queue: Gauge,
    writer_queue: Gauge,
    writer_batches: Counter,
    writer_jobs: Counter,
    writer_commit_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// The writer's reading at the last scrape: counters grow by the difference.
    writer_last: std::sync::Mutex<crate::db::writer::WriterReading>,
    job_lag: Family<JobLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    job_backlog: Family<JobLabels, Gauge>,
    export_jobs: Family<StateLabels, Gauge>,
    export_oldest_queued: Gauge<f64, std::sync::atomic::AtomicU64>,
    subscriptions: Family<StateLabels, Gauge>,
    events_pending: Gauge,
    events_delivered: Gauge,
    pool_connections: Family<StateLabels, Gauge>,
    pool_waits: Counter,
    pool_wait_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// The pool's reading at the last scrape.
    pool_last: std::sync::Mutex<(u64, u64)>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, Buckets>::new_with_constructor(Buckets);
        let tokens = Family::<TokenLabels, Counter>::default();
        let outage = Family::<OutageLabels, Gauge>::default();
        let reads_waiting = Gauge::default();
        let audit_queue = Gauge::default();
        let writer_queue = Gauge::default();
        let writer_batches = Counter::default();
        let writer_jobs = Counter::default();
        let writer_commit_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        let job_lag = Family::<JobLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let job_backlog = Family::<JobLabels, Gauge>::default();
        let export_jobs = Family::<StateLabels, Gauge>::default();
        let export_oldest_queued = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let subscriptions = Family::<StateLabels, Gauge>::default();
        let events_pending = Gauge::default();
        let events_delivered = Gauge::default();
        let pool_connections = Family::<StateLabels, Gauge>::default();
        let pool_waits = Counter::default();
        let pool_wait_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        let mut registry = Registry::with_prefix("hep");
        registry.register(
            "http_requests",
            "Requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by method and route template",
            latency.clone(),
        );
        registry.register(
            "tokens",
            "Token requests at /auth/token, issued or refused",
            tokens.clone(),
        );
        registry.register(
            "database_outage",
            "1 while the database is in an outage of this kind (disk_full, unavailable)",
            outage.clone(),
        );
        registry.register(
            "database_reads_waiting",
            "Reads queued for a database reader",
            reads_waiting.clone(),
        );
        registry.register(
            "audit_queue_records",
            "Audit records waiting to be written",
            audit_queue.clone(),
        );
        registry.register(
            "sqlite_writer_queue_jobs",
            "SQLite: write jobs waiting for the writer",
            writer_queue.clone(),
        );
        registry.register(
            "sqlite_writer_batches",
            "SQLite: group commits made (rate: commits per second)",
            writer_batches.clone(),
        );
        registry.register(
            "sqlite_writer_jobs",
            "SQLite: write jobs committed (over batches: the mean batch size)",
            writer_jobs.clone(),
        );
        registry.register(
            "sqlite_writer_commit_seconds",
            "SQLite: time spent running and committing batches (over batches: the mean commit latency)",
            writer_commit_seconds.clone(),
        );
        registry.register(
            "job_lag_seconds",
            "How far a background job is behind: the oldest overdue session not yet marked missed (missed_sessions), the schedule furthest short of the horizon (horizon), the oldest unanswered outcome measure not yet marked missed (missed_measures), the measure follow-up furthest short of the horizon (measure_follow_ups)",
            job_lag.clone(),
        );
        registry.register(
            "job_backlog",
            "Work waiting for a background job: overdue sessions, schedules to extend, program summaries to rewrite, export jobs not started, overdue outcome measures, measure follow-ups to make",
            job_backlog.clone(),
        );
        registry.register(
            "export_jobs",
            "Bulk Data export jobs by state (accepted: waiting for a worker; in_progress)",
            export_jobs.clone(),
        );
        registry.register(
            "export_oldest_queued_seconds",
            "Age of the oldest export job waiting for a worker (0: none)",
            export_oldest_queued.clone(),
        );
        registry.register(
            "subscriptions",
            "Active subscriptions (active), and of them those whose last delivery failed (failing)",
            subscriptions.clone(),
        );
        registry.register(
            "subscription_events_pending",
            "Notifications of active subscriptions made and not yet delivered",
            events_pending.clone(),
        );
        registry.register(
            "subscription_events_delivered",
            "Notifications delivered to the active subscriptions, in all",
            events_delivered.clone(),
        );
        registry.register(
            "database_pool_connections",
            "PostgreSQL: write connections of the pool, idle or busy",
            pool_connections.clone(),
        );
        registry.register(
            "database_pool_waits",
            "PostgreSQL: write connections handed out by the pool",
            pool_waits.clone(),
        );
        registry.register(
            "database_pool_wait_seconds",
            "PostgreSQL: time writes waited for a pooled connection (over waits: the mean wait)",
            pool_wait_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            tokens,
            outage,
            reads_waiting,
            audit_queue,
            writer_queue,
            writer_batches,
            writer_jobs,
            writer_commit_seconds,
            writer_last: std::sync::Mutex::default(),
            job_lag,
            job_backlog,
            export_jobs,
            export_oldest_queued,
            subscriptions,
            events_pending,
            events_delivered,
            pool_connections,
            pool_waits,
            pool_wait_seconds,
            pool_last: std::sync::Mutex::default(),
        }
    }
}

/// A method as a label: the methods of HTTP, anything else `OTHER` (a client choosing
/// methods must not create series at will).
fn method_label(method: &str) -> &'static str {
    const KNOWN: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

impl Metrics {
    /// One answered request (`route`: the template of the route it matched).
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// One token request, issued or refused.
    pub fn token(&self, issued: bool) {
        self.tokens
            .get_or_create(&TokenLabels {
                outcome: if issued { "issued" } else { "refused" },
            })
            .inc();
    }

    /// The text of a scrape, the gauges read now; `backlog`: the background jobs' work
    /// as the database has it now (microseconds `now`, `horizon_end` as it was read).
    pub fn scrape(&self, db: &Db, audit: &AuditLog, backlog: &ScrapedBacklog) -> String {
        self.set_backlog(backlog);
        if let Some(pool) = db.pool_reading() {
            let gauge = |state| self.pool_connections.get_or_create(&StateLabels { state });
            gauge("idle").set(i64::from(pool.idle));
            gauge("busy").set(i64::from(pool.connections.saturating_sub(pool.idle)));
            let mut last = self
                .pool_last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.pool_waits.inc_by(pool.waits.saturating_sub(last.0));
            self.pool_wait_seconds
                .inc_by(pool.wait_micros.saturating_sub(last.1) as f64 / 1e6);
            *last = (pool.waits, pool.wait_micros);
        }
        let now = db.outage();
        for (kind, outage) in [
            ("disk_full", Outage::DiskFull),
            ("unavailable", Outage::Unavailable),
        ] {
            self.outage
                .get_or_create(&OutageLabels { kind })
                .set(i64::from(now == Some(outage)));
        }
        self.reads_waiting
            .set(i64::try_from(db.reads_waiting()).unwrap_or(i64::MAX));
        self.audit_queue
            .set(i64::try_from(audit.queued()).unwrap_or(i64::MAX));
        if let Some(now) = db.writer_reading() {
            let mut last = self
                .writer_last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.writer_queue
                .set(i64::try_from(now.queued).unwrap_or(i64::MAX));
            self.writer_batches
                .inc_by(now.batches.saturating_sub(last.batches));
            self.writer_jobs.inc_by(now.jobs.saturating_sub(last.jobs));
            self.writer_commit_seconds
                .inc_by(now.commit_micros.saturating_sub(last.commit_micros) as f64 / 1e6);
            *last = now;
        }
        let mut text = String::new();
        // writing to a String cannot fail
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The background jobs' work read for a scrape, with the times it is measured against.
pub struct ScrapedBacklog {
    pub backlog: Backlog,
    /// When it was read, and how far ahead the horizon job keeps schedules (microseconds).
    pub now: i64,
    pub horizon_end: i64,
}

impl Metrics {
    fn set_backlog(&self, b: &ScrapedBacklog) {
        let seconds = |from: Option<i64>, to: i64| {
            from.map_or(0.0, |f| (to.saturating_sub(f)).max(0) as f64 / 1e6)
        };
        let lag = |job| self.job_lag.get_or_create(&JobLabels { job });
        lag("missed_sessions").set(seconds(b.backlog.oldest_overdue, b.now));
        lag("horizon").set(seconds(b.backlog.earliest_schedule_end, b.horizon_end));
        lag("missed_measures").set(seconds(b.backlog.oldest_overdue_measure, b.now));
        lag("measure_follow_ups").set(seconds(b.backlog.earliest_follow_up, b.horizon_end));
        let backlog = |job| self.job_backlog.get_or_create(&JobLabels { job });
        backlog("missed_sessions").set(b.backlog.overdue_sessions);
        backlog("horizon").set(b.backlog.schedules_due);
        backlog("summaries").set(b.backlog.summaries_queued);
        backlog("missed_measures").set(b.backlog.overdue_measures);
        backlog("measure_follow_ups").set(b.backlog.follow_ups_due);
        backlog("exports").set(b.backlog.exports_queued);
        let exports = |state| self.export_jobs.get_or_create(&StateLabels { state });
        exports("accepted").set(b.backlog.exports_queued);
        exports("in_progress").set(b.backlog.exports_running);
        self.export_oldest_queued
            .set(seconds(b.backlog.oldest_queued_export, b.now));
        let subscriptions = |state| self.subscriptions.get_or_create(&StateLabels { state });
        subscriptions("active").set(b.backlog.subscriptions_active);
        subscriptions("failing").set(b.backlog.subscriptions_failing);
        self.events_pending.set(b.backlog.events_pending);
        self.events_delivered.set(b.backlog.events_delivered);
    }
}
