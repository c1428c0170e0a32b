//! SQL of exercise sessions (the scheduled occurrence Tasks) and of the schedules the
//! horizon job extends. Every query names the tenant, except the jobs' scans, which
//! return it with each row.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::{schedules, sessions, summary_queue};

/// One session as stored for adherence and the jobs.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub tenant: String,
    pub task_id: String,
    pub care_plan_id: String,
    pub request_id: String,
    pub patient_id: String,
    pub due_from: i64,
    pub due_until: i64,
    pub slot: i64,
    pub status: String,
    pub completed_at: Option<i64>,
    pub done_volume: Option<i64>,
    pub prescribed_volume: i64,
    pub prescribed_sets: i64,
    pub prescribed_reps: i64,
    pub pain: Option<i64>,
    pub difficulty: Option<i64>,
}

pub fn insert(conn: &mut AnyConnection, row: &SessionRow) -> QueryResult<()> {
    on_backend!(conn, c => diesel::insert_into(sessions::table).values(row).execute(c))?;
    Ok(())
}

/// Stores what a write of its Task changed in a session: its status and the patient's
/// report. Only those columns are set: setting a key column, even to its own value,
/// would make SQLite move the row and rewrite every index of it.
pub fn report(conn: &mut AnyConnection, row: &SessionRow) -> QueryResult<usize> {
    on_backend!(conn, c => diesel::update(
        sessions::table
            .filter(sessions::tenant.eq(&row.tenant))
            .filter(sessions::task_id.eq(&row.task_id)),
    )
    .set((
        sessions::status.eq(&row.status),
        sessions::completed_at.eq(row.completed_at),
        sessions::done_volume.eq(row.done_volume),
        sessions::pain.eq(row.pain),
        sessions::difficulty.eq(row.difficulty),
    ))
    .execute(c))
}

/// Requested sessions of a program and/or a prescription whose window is still open at
/// `now` or to come: the ones a change of program cancels.
pub fn open_from(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: Option<&str>,
    request_id: Option<&str>,
    from: i64,
) -> QueryResult<Vec<String>> {
    on_backend!(conn, c => {
        let mut q = sessions::table
            .filter(sessions::tenant.eq(tenant))
            .filter(sessions::status.eq("requested"))
            .filter(sessions::due_until.gt(from))
            .select(sessions::task_id)
            .into_boxed();
        if let Some(p) = care_plan_id {
            q = q.filter(sessions::care_plan_id.eq(p.to_string()));
        }
        if let Some(r) = request_id {
            q = q.filter(sessions::request_id.eq(r.to_string()));
        }
        q.load(c)
    })
}

/// The last window start scheduled for a prescription of a program (live sessions).
pub fn last_scheduled(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
    request_id: &str,
) -> QueryResult<Option<i64>> {
    on_backend!(conn, c => sessions::table
        .filter(sessions::tenant.eq(tenant))
        .filter(sessions::care_plan_id.eq(care_plan_id))
        .filter(sessions::request_id.eq(request_id))
        .filter(sessions::status.ne("cancelled"))
        .select(diesel::dsl::max(sessions::due_from))
        .first::<Option<i64>>(c))
}

/// Window starts of a program's live sessions of `request_ids` whose window is still open
/// at `now` or to come (a replaced prescription's windows the new one must not repeat).
pub fn live_windows(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
    request_ids: &[String],
    now: i64,
) -> QueryResult<Vec<i64>> {
    on_backend!(conn, c => sessions::table
        .filter(sessions::tenant.eq(tenant))
        .filter(sessions::care_plan_id.eq(care_plan_id))
        .filter(sessions::request_id.eq_any(request_ids))
        .filter(sessions::status.ne("cancelled"))
        .filter(sessions::due_until.gt(now))
        .select(sessions::due_from)
        .load(c))
}

/// What adherence needs of a session.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct AdherenceRow {
    pub patient_id: String,
    pub request_id: String,
    pub due_from: i64,
    pub due_until: i64,
    pub status: String,
    pub completed_at: Option<i64>,
    pub done_volume: Option<i64>,
    pub prescribed_volume: i64,
    pub pain: Option<i64>,
    pub difficulty: Option<i64>,
}

macro_rules! adherence_columns {
    () => {
        (
            sessions::patient_id,
            sessions::request_id,
            sessions::due_from,
            sessions::due_until,
            sessions::status,
            sessions::completed_at,
            sessions::done_volume,
            sessions::prescribed_volume,
            sessions::pain,
            sessions::difficulty,
        )
    };
}

/// Every session of a program.
pub fn of_plan(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
) -> QueryResult<Vec<AdherenceRow>> {
    on_backend!(conn, c => sessions::table
        .filter(sessions::tenant.eq(tenant))
        .filter(sessions::care_plan_id.eq(care_plan_id))
        .order(sessions::due_from)
        .select(adherence_columns!())
        .load(c))
}

/// Every session of a patient.
pub fn of_patient(
    conn: &mut AnyConnection,
    tenant: &str,
    patient_id: &str,
) -> QueryResult<Vec<AdherenceRow>> {
    on_backend!(conn, c => sessions::table
        .filter(sessions::tenant.eq(tenant))
        .filter(sessions::patient_id.eq(patient_id))
        .order(sessions::due_from)
        .select(adherence_columns!())
        .load(c))
}

/// Requested sessions whose window closed before `now` (any tenant), oldest first.
pub fn overdue(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> QueryResult<Vec<(String, String)>> {
    on_backend!(conn, c => sessions::table
        .filter(sessions::status.eq("requested"))
        .filter(sessions::due_until.le(now))
        .order(sessions::due_until)
        .select((sessions::tenant, sessions::task_id))
        .limit(limit)
        .load(c))
}

/// Claims an overdue session for the missed job: only one process gets `true`.
pub fn claim_missed(
    conn: &mut AnyConnection,
    tenant: &str,
    task_id: &str,
    now: i64,
) -> QueryResult<bool> {
    let n = on_backend!(conn, c => diesel::update(
        sessions::table
            .filter(sessions::tenant.eq(tenant))
            .filter(sessions::task_id.eq(task_id))
            .filter(sessions::status.eq("requested"))
            .filter(sessions::due_until.le(now)),
    )
    .set(sessions::status.eq("failed"))
    .execute(c))?;
    Ok(n == 1)
}

/// A schedule to keep extended.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ScheduleRow {
    pub tenant: String,
    pub care_plan_id: String,
    pub request_id: String,
    pub scheduled_until: i64,
}

/// Records (or moves) how far a prescription of a program is scheduled.
pub fn set_schedule(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
    request_id: &str,
    until: i64,
) -> QueryResult<()> {
    drop_schedule(conn, tenant, Some(care_plan_id), Some(request_id))?;
    on_backend!(conn, c => diesel::insert_into(schedules::table)
        .values((
            schedules::tenant.eq(tenant),
            schedules::care_plan_id.eq(care_plan_id),
            schedules::request_id.eq(request_id),
            schedules::scheduled_until.eq(until),
        ))
        .execute(c))?;
    Ok(())
}

/// Forgets the schedules of a program, of a prescription, or of both.
pub fn drop_schedule(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: Option<&str>,
    request_id: Option<&str>,
) -> QueryResult<()> {
    match (care_plan_id, request_id) {
        (Some(p), Some(r)) => on_backend!(conn, c => diesel::delete(
            schedules::table
                .filter(schedules::tenant.eq(tenant))
                .filter(schedules::care_plan_id.eq(p))
                .filter(schedules::request_id.eq(r)),
        )
        .execute(c))?,
        (Some(p), None) => on_backend!(conn, c => diesel::delete(
            schedules::table
                .filter(schedules::tenant.eq(tenant))
                .filter(schedules::care_plan_id.eq(p)),
        )
        .execute(c))?,
        (None, Some(r)) => on_backend!(conn, c => diesel::delete(
            schedules::table
                .filter(schedules::tenant.eq(tenant))
                .filter(schedules::request_id.eq(r)),
        )
        .execute(c))?,
        (None, None) => 0,
    };
    Ok(())
}

/// Schedules that end before `before` (any tenant).
pub fn schedules_before(
    conn: &mut AnyConnection,
    before: i64,
    limit: i64,
) -> QueryResult<Vec<ScheduleRow>> {
    on_backend!(conn, c => schedules::table
        .filter(schedules::scheduled_until.lt(before))
        .order(schedules::scheduled_until)
        .limit(limit)
        .load(c))
}

/// Claims a schedule for extension: only one process moves it from `from`.
pub fn claim_schedule(conn: &mut AnyConnection, s: &ScheduleRow, to: i64) -> QueryResult<bool> {
    let n = on_backend!(conn, c => diesel::update(
        schedules::table
            .filter(schedules::tenant.eq(&s.tenant))
            .filter(schedules::care_plan_id.eq(&s.care_plan_id))
            .filter(schedules::request_id.eq(&s.request_id))
            .filter(schedules::scheduled_until.eq(s.scheduled_until)),
    )
    .set(schedules::scheduled_until.eq(to))
    .execute(c))?;
    Ok(n == 1)
}

/// The stored state of one session.
pub fn of_task(
    conn: &mut AnyConnection,
    tenant: &str,
    task_id: &str,
) -> QueryResult<Option<SessionRow>> {
    on_backend!(conn, c => sessions::table
        .filter(sessions::tenant.eq(tenant))
        .filter(sessions::task_id.eq(task_id))
        .first(c)
        .optional())
}

/// The start of a program's first session (live or not): week 1 starts that day.
pub fn first_due(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
) -> QueryResult<Option<i64>> {
    on_backend!(conn, c => sessions::table
        .filter(sessions::tenant.eq(tenant))
        .filter(sessions::care_plan_id.eq(care_plan_id))
        .select(diesel::dsl::min(sessions::due_from))
        .first::<Option<i64>>(c))
}

/// A program's sessions whose window starts in `[from, to)`.
pub fn of_plan_between(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
    from: i64,
    to: i64,
) -> QueryResult<Vec<AdherenceRow>> {
    on_backend!(conn, c => sessions::table
        .filter(sessions::tenant.eq(tenant))
        .filter(sessions::care_plan_id.eq(care_plan_id))
        .filter(sessions::due_from.ge(from))
        .filter(sessions::due_from.lt(to))
        .select(adherence_columns!())
        .load(c))
}

/// Calls `f` with each session of a tenant whose window starts in `[from, to)`, in the
/// order they are stored (by program, then time), streamed: a clinic has millions. The
/// prescription is left out (`request_id` empty).
pub fn each_of_tenant(
    conn: &mut AnyConnection,
    tenant: &str,
    from: i64,
    to: i64,
    mut f: impl FnMut(AdherenceRow),
) -> QueryResult<()> {
    use diesel::connection::DefaultLoadingMode;
    on_backend!(conn, c => {
        let rows = sessions::table
            .filter(sessions::tenant.eq(tenant))
            .filter(sessions::due_from.ge(from))
            .filter(sessions::due_from.lt(to))
            .order((sessions::care_plan_id, sessions::due_from))
            .select((
                sessions::patient_id,
                diesel::dsl::sql::<diesel::sql_types::Text>("''"),
                sessions::due_from,
                sessions::due_until,
                sessions::status,
                sessions::completed_at,
                sessions::done_volume,
                sessions::prescribed_volume,
                sessions::pain,
                sessions::difficulty,
            ))
            .load_iter::<AdherenceRow, DefaultLoadingMode>(c)?;
        for row in rows {
            f(row?);
        }
        Ok(())
    })
}

/// Marks a session's week for a refresh of its summary (once, however often it changes).
pub fn queue_summary(conn: &mut AnyConnection, tenant: &str, task_id: &str) -> QueryResult<()> {
    on_backend!(conn, c => diesel::insert_into(summary_queue::table)
        .values((summary_queue::tenant.eq(tenant), summary_queue::task_id.eq(task_id)))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

/// Sessions waiting for their summary (any tenant).
pub fn queued_summaries(
    conn: &mut AnyConnection,
    limit: i64,
) -> QueryResult<Vec<(String, String)>> {
    on_backend!(conn, c => summary_queue::table
        .select((summary_queue::tenant, summary_queue::task_id))
        .order((summary_queue::tenant, summary_queue::task_id))
        .limit(limit)
        .load(c))
}

/// Takes a session off the queue: `true` for the one process that does.
pub fn take_summary(conn: &mut AnyConnection, tenant: &str, task_id: &str) -> QueryResult<bool> {
    let n = on_backend!(conn, c => diesel::delete(
        summary_queue::table
            .filter(summary_queue::tenant.eq(tenant))
            .filter(summary_queue::task_id.eq(task_id)),
    )
    .execute(c))?;
    Ok(n == 1)
}
