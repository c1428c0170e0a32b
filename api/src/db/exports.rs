//! SQL of Bulk Data export jobs: kick-off, claims with a lease, progress, the end of a
//! job, cancellation and expiry.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::export_jobs;

/// The statuses of a job.
pub const ACCEPTED: &str = "accepted";
pub const IN_PROGRESS: &str = "in-progress";
pub const COMPLETED: &str = "completed";
pub const FAILED: &str = "failed";

/// A stored job.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = export_jobs)]
#[allow(
    dead_code,
    reason = "the row is the whole table row; the server reads some columns only"
)]
pub struct JobRow {
    pub tenant: String,
    pub id: String,
    pub client: String,
    pub status: String,
    pub request: String,
    pub spec: String,
    pub created_at: i64,
    pub owner: Option<String>,
    pub lease_until: Option<i64>,
    pub attempts: i32,
    pub progress: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub finished_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// Stores a new job (status `accepted`).
pub fn insert(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    client: &str,
    request: &str,
    spec: &str,
    now: i64,
) -> QueryResult<()> {
    on_backend!(conn, c => diesel::insert_into(export_jobs::table)
        .values((
            export_jobs::tenant.eq(tenant),
            export_jobs::id.eq(id),
            export_jobs::client.eq(client),
            export_jobs::status.eq(ACCEPTED),
            export_jobs::request.eq(request),
            export_jobs::spec.eq(spec),
            export_jobs::created_at.eq(now),
            export_jobs::attempts.eq(0),
        ))
        .execute(c))?;
    Ok(())
}

/// The job `id` of `client` in `tenant` (another client's job is not found).
pub fn of_client(
    conn: &mut AnyConnection,
    tenant: &str,
    client: &str,
    id: &str,
) -> QueryResult<Option<JobRow>> {
    export_jobs::table
        .filter(export_jobs::tenant.eq(tenant))
        .filter(export_jobs::id.eq(id))
        .filter(export_jobs::client.eq(client))
        .select(JobRow::as_select())
        .first(conn)
        .optional()
}

/// How many jobs of `client` have not finished.
pub fn unfinished_of_client(
    conn: &mut AnyConnection,
    tenant: &str,
    client: &str,
) -> QueryResult<i64> {
    export_jobs::table
        .filter(export_jobs::tenant.eq(tenant))
        .filter(export_jobs::client.eq(client))
        .filter(export_jobs::status.eq_any([ACCEPTED, IN_PROGRESS]))
        .count()
        .get_result(conn)
}

/// Claims the oldest job that is waiting, or whose worker's lease ran out (a process
/// that stopped): one conditional update, so two processes never both win a job.
/// Across clinics: the worker then works in the job's clinic.
pub fn claim(
    conn: &mut AnyConnection,
    owner: &str,
    now: i64,
    lease_until: i64,
) -> QueryResult<Option<JobRow>> {
    let waiting = || {
        export_jobs::status.eq(ACCEPTED).or(export_jobs::status
            .eq(IN_PROGRESS)
            .and(export_jobs::lease_until.lt(now)))
    };
    let candidates: Vec<(String, String)> = export_jobs::table
        .filter(waiting())
        .order(export_jobs::created_at.asc())
        .select((export_jobs::tenant, export_jobs::id))
        .limit(8)
        .load(conn)?;
    for (tenant, id) in candidates {
        let won = on_backend!(conn, c => diesel::update(
            export_jobs::table
                .filter(export_jobs::tenant.eq(&tenant))
                .filter(export_jobs::id.eq(&id))
                .filter(waiting()),
        )
        .set((
            export_jobs::status.eq(IN_PROGRESS),
            export_jobs::owner.eq(owner),
            export_jobs::lease_until.eq(lease_until),
            export_jobs::attempts.eq(export_jobs::attempts + 1),
            export_jobs::progress.eq(None::<String>),
        ))
        .execute(c))?;
        if won == 1 {
            return export_jobs::table
                .filter(export_jobs::tenant.eq(&tenant))
                .filter(export_jobs::id.eq(&id))
                .select(JobRow::as_select())
                .first(conn)
                .optional();
        }
    }
    Ok(None)
}

/// Extends the lease of a job this worker holds and notes its progress; `false` when
/// the job is no longer this worker's (cancelled, or taken over after a stall).
pub fn renew(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    owner: &str,
    lease_until: i64,
    progress: &str,
) -> QueryResult<bool> {
    let n = on_backend!(conn, c => diesel::update(
        export_jobs::table
            .filter(export_jobs::tenant.eq(tenant))
            .filter(export_jobs::id.eq(id))
            .filter(export_jobs::owner.eq(owner))
            .filter(export_jobs::status.eq(IN_PROGRESS)),
    )
    .set((
        export_jobs::lease_until.eq(lease_until),
        export_jobs::progress.eq(progress),
    ))
    .execute(c))?;
    Ok(n == 1)
}

/// How a job ended.
pub struct Finish<'a> {
    pub status: &'a str,
    pub result: Option<&'a str>,
    pub error: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

/// Ends a job this worker holds; `false` when it is no longer this worker's.
pub fn finish(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    owner: &str,
    f: &Finish<'_>,
) -> QueryResult<bool> {
    let n = on_backend!(conn, c => diesel::update(
        export_jobs::table
            .filter(export_jobs::tenant.eq(tenant))
            .filter(export_jobs::id.eq(id))
            .filter(export_jobs::owner.eq(owner))
            .filter(export_jobs::status.eq(IN_PROGRESS)),
    )
    .set((
        export_jobs::status.eq(f.status),
        export_jobs::result.eq(f.result),
        export_jobs::error.eq(f.error),
        export_jobs::finished_at.eq(f.now),
        export_jobs::expires_at.eq(f.expires_at),
        export_jobs::lease_until.eq(None::<i64>),
        export_jobs::progress.eq(None::<String>),
    ))
    .execute(c))?;
    Ok(n == 1)
}

/// Removes the job `id` of `client`; `false` when there was none.
pub fn delete(conn: &mut AnyConnection, tenant: &str, client: &str, id: &str) -> QueryResult<bool> {
    let n = on_backend!(conn, c => diesel::delete(
        export_jobs::table
            .filter(export_jobs::tenant.eq(tenant))
            .filter(export_jobs::id.eq(id))
            .filter(export_jobs::client.eq(client)),
    )
    .execute(c))?;
    Ok(n == 1)
}

/// Jobs that expired before `now`, across clinics, `limit` at most: (tenant, id).
pub fn expired(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> QueryResult<Vec<(String, String)>> {
    export_jobs::table
        .filter(export_jobs::expires_at.lt(now))
        .select((export_jobs::tenant, export_jobs::id))
        .limit(limit)
        .load(conn)
}

/// Removes an expired job (`false` when another process did first).
pub fn remove_expired(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    now: i64,
) -> QueryResult<bool> {
    let n = on_backend!(conn, c => diesel::delete(
        export_jobs::table
            .filter(export_jobs::tenant.eq(tenant))
            .filter(export_jobs::id.eq(id))
            .filter(export_jobs::expires_at.lt(now)),
    )
    .execute(c))?;
    Ok(n == 1)
}

/// Which of `ids` name a stored job (of any clinic): the sweep of orphaned files keeps
/// those.
pub fn existing(conn: &mut AnyConnection, ids: &[String]) -> QueryResult<Vec<String>> {
    export_jobs::table
        .filter(export_jobs::id.eq_any(ids))
        .select(export_jobs::id)
        .load(conn)
}

/// Runs `read` in one read-only snapshot of the store, for an export: on PostgreSQL a
/// repeatable-read, read-only transaction; on SQLite a read transaction with a small
/// page cache (every page is read once, in order). The snapshot is taken before `read`
/// runs.
pub fn in_snapshot<T, E: From<diesel::result::Error>>(
    conn: &mut AnyConnection,
    read: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E> {
    use diesel::connection::SimpleConnection;
    let pg = matches!(conn, AnyConnection::Postgresql(_));
    if !pg {
        conn.batch_execute("PRAGMA cache_size = -2048;")?;
    }
    conn.transaction::<_, E, _>(|c| {
        if pg {
            c.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        }
        // the snapshot starts with the transaction's first read
        c.batch_execute("SELECT 1 FROM export_jobs LIMIT 1")?;
        read(c)
    })
}
