//! SQL of the work waiting for the background jobs, read by a metrics scrape: across
//! every clinic (an operator's figures, no clinic data: counts and ages only).

use diesel::dsl::{count_star, min};
use diesel::prelude::*;

use super::connection::AnyConnection;
use super::exports::{ACCEPTED, IN_PROGRESS};
use super::schema::{
    export_jobs, measure_assignments, measure_tasks, schedules, sessions, subscriptions,
    summary_queue,
};
use super::subscriptions::ACTIVE;

/// What the background jobs have still to do, as of `now`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backlog {
    /// Sessions whose window has closed, still `requested`: the missed-session job's
    /// work; and the earliest of their window ends (microseconds).
    pub overdue_sessions: i64,
    pub oldest_overdue: Option<i64>,
    /// Schedules ending before the horizon: the horizon job's work; and the earliest end.
    pub schedules_due: i64,
    pub earliest_schedule_end: Option<i64>,
    /// Outcome-measure Tasks whose window has closed, still `requested`: the
    /// missed-measure job's work; and the earliest of their window ends.
    pub overdue_measures: i64,
    pub oldest_overdue_measure: Option<i64>,
    /// Active assigned measures whose next follow-up starts before the horizon: the
    /// follow-up job's work; and the earliest of those starts.
    pub follow_ups_due: i64,
    pub earliest_follow_up: Option<i64>,
    /// Program summaries waiting to be rewritten.
    pub summaries_queued: i64,
    /// Export jobs accepted and not started, running; the oldest accepted one's kick-off.
    pub exports_queued: i64,
    pub exports_running: i64,
    pub oldest_queued_export: Option<i64>,
    /// Active subscriptions, and of them failing (their last delivery failed); events
    /// made and not yet delivered; events delivered, in all.
    pub subscriptions_active: i64,
    pub subscriptions_failing: i64,
    pub events_pending: i64,
    pub events_delivered: i64,
}

/// The backlog as of `now` (microseconds); `horizon_end`: how far ahead the horizon job
/// keeps schedules made.
pub fn read(conn: &mut AnyConnection, now: i64, horizon_end: i64) -> QueryResult<Backlog> {
    let (overdue_sessions, oldest_overdue): (i64, Option<i64>) = on_backend!(conn, c => sessions::table
        .filter(sessions::status.eq("requested"))
        .filter(sessions::due_until.le(now))
        .select((count_star(), min(sessions::due_until)))
        .first(c))?;
    let (schedules_due, earliest_schedule_end): (i64, Option<i64>) = on_backend!(conn, c => schedules::table
        .filter(schedules::scheduled_until.lt(horizon_end))
        .select((count_star(), min(schedules::scheduled_until)))
        .first(c))?;
    let (overdue_measures, oldest_overdue_measure): (i64, Option<i64>) = on_backend!(conn, c => measure_tasks::table
        .filter(measure_tasks::status.eq("requested"))
        .filter(measure_tasks::due_until.le(now))
        .select((count_star(), min(measure_tasks::due_until)))
        .first(c))?;
    let (follow_ups_due, earliest_follow_up): (i64, Option<i64>) = on_backend!(conn, c => measure_assignments::table
        .filter(measure_assignments::next_due.le(horizon_end))
        .filter(measure_assignments::active.eq(true))
        .select((count_star(), min(measure_assignments::next_due)))
        .first(c))?;
    let summaries_queued: i64 =
        on_backend!(conn, c => summary_queue::table.select(count_star()).first(c))?;
    let (exports_queued, oldest_queued_export): (i64, Option<i64>) = on_backend!(conn, c => export_jobs::table
        .filter(export_jobs::status.eq(ACCEPTED))
        .select((count_star(), min(export_jobs::created_at)))
        .first(c))?;
    let exports_running: i64 = on_backend!(conn, c => export_jobs::table
        .filter(export_jobs::status.eq(IN_PROGRESS))
        .select(count_star())
        .first(c))?;
    // summed here: PostgreSQL's sum of a bigint is a numeric
    let counts: Vec<(i64, i64, i32)> = on_backend!(conn, c => subscriptions::table
        .filter(subscriptions::status.eq(ACTIVE))
        .select((subscriptions::events, subscriptions::delivered, subscriptions::failures))
        .load(c))?;
    let subscriptions_active = i64::try_from(counts.len()).unwrap_or(i64::MAX);
    let subscriptions_failing =
        i64::try_from(counts.iter().filter(|(_, _, f)| *f > 0).count()).unwrap_or(i64::MAX);
    let made: i64 = counts.iter().map(|(e, _, _)| *e).sum();
    let delivered: i64 = counts.iter().map(|(_, d, _)| *d).sum();
    Ok(Backlog {
        overdue_sessions,
        oldest_overdue,
        schedules_due,
        earliest_schedule_end,
        overdue_measures,
        oldest_overdue_measure,
        follow_ups_due,
        earliest_follow_up,
        summaries_queued,
        exports_queued,
        exports_running,
        oldest_queued_export,
        subscriptions_active,
        subscriptions_failing,
        events_pending: made.saturating_sub(delivered),
        events_delivered: delivered,
    })
}
