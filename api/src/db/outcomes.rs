//! SQL of outcome measures (assignments of programs, the due questionnaire Tasks, the
//! scores) and of remote therapeutic monitoring (episodes and the events that count).
//! Every query names the tenant, except the jobs' scans, which return it with each row.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::{
    measure_assignments as ma, measure_tasks as mt, monitoring_events as me, outcome_scores as os,
    rtm_episodes as re, sessions,
};

/// A measure a program assigns, as the scheduler keeps it.
#[derive(Debug, Clone, PartialEq, Queryable, Insertable)]
#[diesel(table_name = ma)]
pub struct AssignmentRow {
    pub tenant: String,
    pub care_plan_id: String,
    pub questionnaire: String,
    pub patient_id: String,
    pub started_at: i64,
    pub every_micros: Option<i64>,
    pub at_discharge: bool,
    pub next_due: Option<i64>,
    pub active: bool,
}

/// The assignments of a program.
pub fn assignments_of(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
) -> QueryResult<Vec<AssignmentRow>> {
    on_backend!(conn, c => ma::table
        .filter(ma::tenant.eq(tenant))
        .filter(ma::care_plan_id.eq(care_plan_id))
        .order(ma::questionnaire)
        .load(c))
}

/// Stores an assignment (replacing the one of the same program and measure).
pub fn put_assignment(conn: &mut AnyConnection, row: &AssignmentRow) -> QueryResult<()> {
    on_backend!(conn, c => {
        diesel::delete(
            ma::table
                .filter(ma::tenant.eq(&row.tenant))
                .filter(ma::care_plan_id.eq(&row.care_plan_id))
                .filter(ma::questionnaire.eq(&row.questionnaire)),
        )
        .execute(c)?;
        diesel::insert_into(ma::table).values(row).execute(c)
    })?;
    Ok(())
}

/// Active assignments whose next follow-up starts before `before`, across tenants.
pub fn follow_ups_before(
    conn: &mut AnyConnection,
    before: i64,
    batch: i64,
) -> QueryResult<Vec<AssignmentRow>> {
    on_backend!(conn, c => ma::table
        .filter(ma::next_due.le(before))
        .filter(ma::active.eq(true))
        .order(ma::next_due)
        .limit(batch)
        .load(c))
}

/// Moves an assignment's next follow-up from `was` to `next`; false when another
/// process did first.
pub fn claim_follow_up(
    conn: &mut AnyConnection,
    row: &AssignmentRow,
    was: i64,
    next: Option<i64>,
) -> QueryResult<bool> {
    let n = on_backend!(conn, c => diesel::update(
        ma::table
            .filter(ma::tenant.eq(&row.tenant))
            .filter(ma::care_plan_id.eq(&row.care_plan_id))
            .filter(ma::questionnaire.eq(&row.questionnaire))
            .filter(ma::next_due.eq(was)),
    )
    .set(ma::next_due.eq(next))
    .execute(c))?;
    Ok(n == 1)
}

/// One due questionnaire Task.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = mt)]
pub struct MeasureTaskRow {
    pub tenant: String,
    pub task_id: String,
    pub care_plan_id: String,
    pub questionnaire: String,
    pub patient_id: String,
    pub occasion: String,
    pub due_from: i64,
    pub due_until: i64,
    pub status: String,
}

pub fn insert_task(conn: &mut AnyConnection, row: &MeasureTaskRow) -> QueryResult<()> {
    on_backend!(conn, c => diesel::insert_into(mt::table).values(row).execute(c))?;
    Ok(())
}

pub fn set_task_status(
    conn: &mut AnyConnection,
    tenant: &str,
    task_id: &str,
    status: &str,
) -> QueryResult<()> {
    on_backend!(conn, c => diesel::update(
        mt::table.filter(mt::tenant.eq(tenant)).filter(mt::task_id.eq(task_id)),
    )
    .set(mt::status.eq(status))
    .execute(c))?;
    Ok(())
}

/// The open (requested) measure Tasks of a program, of one measure or of all.
pub fn open_tasks_of_plan(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
    questionnaire: Option<&str>,
) -> QueryResult<Vec<String>> {
    on_backend!(conn, c => {
        let mut q = mt::table
            .filter(mt::tenant.eq(tenant))
            .filter(mt::care_plan_id.eq(care_plan_id))
            .filter(mt::status.eq("requested"))
            .select(mt::task_id)
            .into_boxed();
        if let Some(qn) = questionnaire {
            q = q.filter(mt::questionnaire.eq(qn.to_string()));
        }
        q.load(c)
    })
}

/// The open Task a response of `questionnaire` by the patient answers: the earliest one
/// whose window has begun by `now` (of the program, when the response names it).
pub fn open_task_for(
    conn: &mut AnyConnection,
    tenant: &str,
    patient_id: &str,
    questionnaire: &str,
    care_plan_id: Option<&str>,
    now: i64,
) -> QueryResult<Option<MeasureTaskRow>> {
    on_backend!(conn, c => {
        let mut q = mt::table
            .filter(mt::tenant.eq(tenant))
            .filter(mt::patient_id.eq(patient_id))
            .filter(mt::questionnaire.eq(questionnaire))
            .filter(mt::status.eq("requested"))
            .filter(mt::due_from.le(now))
            .order(mt::due_from)
            .into_boxed();
        if let Some(p) = care_plan_id {
            q = q.filter(mt::care_plan_id.eq(p.to_string()));
        }
        q.first(c).optional()
    })
}

/// Requested measure Tasks whose window closed by `now`, across tenants.
pub fn overdue_tasks(
    conn: &mut AnyConnection,
    now: i64,
    batch: i64,
) -> QueryResult<Vec<(String, String)>> {
    on_backend!(conn, c => mt::table
        .filter(mt::status.eq("requested"))
        .filter(mt::due_until.le(now))
        .order(mt::due_until)
        .limit(batch)
        .select((mt::tenant, mt::task_id))
        .load(c))
}

/// Marks an overdue Task failed in the table; false when it was answered or claimed
/// meanwhile.
pub fn claim_overdue(
    conn: &mut AnyConnection,
    tenant: &str,
    task_id: &str,
    now: i64,
) -> QueryResult<bool> {
    let n = on_backend!(conn, c => diesel::update(
        mt::table
            .filter(mt::tenant.eq(tenant))
            .filter(mt::task_id.eq(task_id))
            .filter(mt::status.eq("requested"))
            .filter(mt::due_until.le(now)),
    )
    .set(mt::status.eq("failed"))
    .execute(c))?;
    Ok(n == 1)
}

/// One score of a scored response.
#[derive(Debug, Clone, PartialEq, Queryable, Insertable)]
#[diesel(table_name = os)]
pub struct ScoreRow {
    pub tenant: String,
    pub response_id: String,
    pub observation_id: String,
    pub patient_id: String,
    pub care_plan_id: Option<String>,
    pub questionnaire: String,
    pub scored_at: i64,
    pub score: f64,
}

/// Stores the score of a response (replacing its earlier one).
pub fn put_score(conn: &mut AnyConnection, row: &ScoreRow) -> QueryResult<()> {
    forget_score(conn, &row.tenant, &row.response_id)?;
    on_backend!(conn, c => diesel::insert_into(os::table).values(row).execute(c))?;
    Ok(())
}

pub fn forget_score(conn: &mut AnyConnection, tenant: &str, response_id: &str) -> QueryResult<()> {
    on_backend!(conn, c => diesel::delete(
        os::table.filter(os::tenant.eq(tenant)).filter(os::response_id.eq(response_id)),
    )
    .execute(c))?;
    Ok(())
}

/// The score of a response, if it was scored.
pub fn score_of(
    conn: &mut AnyConnection,
    tenant: &str,
    response_id: &str,
) -> QueryResult<Option<ScoreRow>> {
    on_backend!(conn, c => os::table
        .filter(os::tenant.eq(tenant))
        .filter(os::response_id.eq(response_id))
        .first(c)
        .optional())
}

/// The scores of a patient's measure (of one program, when given), oldest first.
pub fn scores_of_measure(
    conn: &mut AnyConnection,
    tenant: &str,
    patient_id: &str,
    questionnaire: &str,
    care_plan_id: Option<&str>,
) -> QueryResult<Vec<ScoreRow>> {
    on_backend!(conn, c => {
        let mut q = os::table
            .filter(os::tenant.eq(tenant))
            .filter(os::patient_id.eq(patient_id))
            .filter(os::questionnaire.eq(questionnaire))
            .order((os::scored_at, os::response_id))
            .into_boxed();
        if let Some(p) = care_plan_id {
            q = q.filter(os::care_plan_id.eq(p.to_string()));
        }
        q.load(c)
    })
}

/// Every score of a program, or of a patient, oldest first.
pub fn scores_of(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: Option<&str>,
    patient_id: Option<&str>,
) -> QueryResult<Vec<ScoreRow>> {
    on_backend!(conn, c => {
        let mut q = os::table
            .filter(os::tenant.eq(tenant))
            .order((os::questionnaire, os::scored_at, os::response_id))
            .into_boxed();
        if let Some(p) = care_plan_id {
            q = q.filter(os::care_plan_id.eq(p.to_string()));
        }
        if let Some(p) = patient_id {
            q = q.filter(os::patient_id.eq(p.to_string()));
        }
        q.load(c)
    })
}

/// A program's remote therapeutic monitoring episode.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = re)]
pub struct EpisodeRow {
    pub tenant: String,
    pub care_plan_id: String,
    pub patient_id: String,
    pub start_date: String,
    pub end_date: Option<String>,
}

/// Stores a program's episode, or forgets it (`None`).
pub fn put_episode(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
    row: Option<&EpisodeRow>,
) -> QueryResult<()> {
    on_backend!(conn, c => diesel::delete(
        re::table.filter(re::tenant.eq(tenant)).filter(re::care_plan_id.eq(care_plan_id)),
    )
    .execute(c))?;
    if let Some(row) = row {
        on_backend!(conn, c => diesel::insert_into(re::table).values(row).execute(c))?;
    }
    Ok(())
}

/// The episodes of a tenant (of some patients, when given), by patient.
pub fn episodes(
    conn: &mut AnyConnection,
    tenant: &str,
    patients: Option<&[String]>,
) -> QueryResult<Vec<EpisodeRow>> {
    on_backend!(conn, c => {
        let mut q = re::table
            .filter(re::tenant.eq(tenant))
            .order((re::patient_id, re::care_plan_id))
            .into_boxed();
        if let Some(p) = patients {
            q = q.filter(re::patient_id.eq_any(p.to_vec()));
        }
        q.load(c)
    })
}

/// One event that counts for remote therapeutic monitoring.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = me)]
pub struct EventRow {
    pub tenant: String,
    pub res_type: String,
    pub res_id: String,
    pub patient_id: String,
    pub at: i64,
    pub kind: String,
    pub minutes: i64,
    pub who: Option<String>,
    pub what: Option<String>,
}

/// Stores the event of a resource, or forgets it (`None`).
pub fn put_event(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    res_id: &str,
    row: Option<&EventRow>,
) -> QueryResult<()> {
    on_backend!(conn, c => diesel::delete(
        me::table
            .filter(me::tenant.eq(tenant))
            .filter(me::res_type.eq(res_type))
            .filter(me::res_id.eq(res_id)),
    )
    .execute(c))?;
    if let Some(row) = row {
        on_backend!(conn, c => diesel::insert_into(me::table).values(row).execute(c))?;
    }
    Ok(())
}

/// Each event of the tenant in `[from, to)` (of some patients, when given), streamed.
pub fn each_event(
    conn: &mut AnyConnection,
    tenant: &str,
    patients: Option<&[String]>,
    from: i64,
    to: i64,
    mut f: impl FnMut(EventRow),
) -> QueryResult<()> {
    use diesel::connection::DefaultLoadingMode;
    on_backend!(conn, c => {
        let mut q = me::table
            .filter(me::tenant.eq(tenant))
            .filter(me::at.ge(from))
            .filter(me::at.lt(to))
            .into_boxed();
        if let Some(p) = patients {
            q = q.filter(me::patient_id.eq_any(p.to_vec()));
        }
        for row in q.load_iter::<EventRow, DefaultLoadingMode>(c)? {
            f(row?);
        }
        Ok(())
    })
}

/// Each completed session of the tenant in `[from, to)`: (patient, when), streamed.
pub fn each_completion(
    conn: &mut AnyConnection,
    tenant: &str,
    patients: Option<&[String]>,
    from: i64,
    to: i64,
    mut f: impl FnMut(String, i64),
) -> QueryResult<()> {
    use diesel::connection::DefaultLoadingMode;
    on_backend!(conn, c => {
        let mut q = sessions::table
            .filter(sessions::tenant.eq(tenant))
            .filter(sessions::status.eq("completed"))
            .filter(sessions::completed_at.ge(from))
            .filter(sessions::completed_at.lt(to))
            .select((sessions::patient_id, sessions::completed_at.assume_not_null()))
            .into_boxed();
        if let Some(p) = patients {
            q = q.filter(sessions::patient_id.eq_any(p.to_vec()));
        }
        for row in q.load_iter::<(String, i64), DefaultLoadingMode>(c)? {
            let (patient, at) = row?;
            f(patient, at);
        }
        Ok(())
    })
}
