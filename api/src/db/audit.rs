//! SQL of the audit trail.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::audit_events;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct AuditRow {
    pub tenant: String,
    pub id: String,
    pub recorded: i64,
    pub action: String,
    pub subtype: String,
    pub outcome: String,
    pub status: i32,
    pub client: String,
    pub address: Option<String>,
    pub res_type: Option<String>,
    pub res_id: Option<String>,
    pub version: Option<i64>,
    pub patient: Option<String>,
    pub query: Option<String>,
}

/// Writes records, one statement each: the same statement every time, prepared once
/// per connection (a statement of many rows would be prepared again for each batch).
pub fn insert(conn: &mut AnyConnection, rows: &[AuditRow]) -> QueryResult<()> {
    for r in rows {
        on_backend!(conn, c => diesel::insert_into(audit_events::table)
            .values((
                audit_events::tenant.eq(&r.tenant),
                audit_events::id.eq(&r.id),
                audit_events::recorded.eq(r.recorded),
                audit_events::action.eq(&r.action),
                audit_events::subtype.eq(&r.subtype),
                audit_events::outcome.eq(&r.outcome),
                audit_events::status.eq(r.status),
                audit_events::client.eq(&r.client),
                audit_events::address.eq(&r.address),
                audit_events::res_type.eq(&r.res_type),
                audit_events::res_id.eq(&r.res_id),
                audit_events::version.eq(r.version),
                audit_events::patient.eq(&r.patient),
                audit_events::query.eq(&r.query),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// The smallest UUID v7 (as text) of the millisecond `micros / 1000`: the ids of
/// records from that instant on compare greater or equal.
pub fn id_at(micros: i64) -> String {
    let ms = u64::try_from(micros.max(0) / 1000).unwrap_or(0) & 0xffff_ffff_ffff;
    format!(
        "{:08x}-{:04x}-0000-0000-000000000000",
        ms >> 16,
        ms & 0xffff
    )
}

/// What a search of the audit trail asks for (every field optional, all ANDed).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// `recorded` at or after, and before (microseconds).
    pub from: Option<i64>,
    pub until: Option<i64>,
    pub patient: Option<String>,
    pub entity: Option<(String, String)>,
    pub subtype: Option<String>,
    pub outcome: Option<String>,
    pub action: Option<String>,
    pub client: Option<String>,
    /// Newest first: only records before this id.
    pub before_id: Option<String>,
    pub id: Option<String>,
}

/// Records of a tenant, newest first, `limit` at most.
pub fn search(
    conn: &mut AnyConnection,
    tenant: &str,
    q: &AuditQuery,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_events::table
        .filter(audit_events::tenant.eq(tenant))
        .select(audit_events::all_columns)
        .order(audit_events::id.desc())
        .limit(limit)
        .into_boxed();
    // a time range is a range of ids (time-ordered), then the exact instants
    if let Some(v) = q.from {
        query = query
            .filter(audit_events::id.ge(id_at(v)))
            .filter(audit_events::recorded.ge(v));
    }
    if let Some(v) = q.until {
        // an id is given when the record is written, after it was recorded: ten
        // minutes of slack for a queue that waited
        query = query
            .filter(audit_events::id.lt(id_at(v.saturating_add(600_000_000))))
            .filter(audit_events::recorded.lt(v));
    }
    if let Some(v) = &q.patient {
        query = query
            .filter(audit_events::patient.is_not_null())
            .filter(audit_events::patient.eq(v.clone()));
    }
    if let Some((t, i)) = &q.entity {
        query = query
            .filter(audit_events::res_type.eq(t.clone()))
            .filter(audit_events::res_id.eq(i.clone()));
    }
    if let Some(v) = &q.subtype {
        query = query.filter(audit_events::subtype.eq(v.clone()));
    }
    if let Some(v) = &q.outcome {
        query = query.filter(audit_events::outcome.eq(v.clone()));
    }
    if let Some(v) = &q.action {
        query = query.filter(audit_events::action.eq(v.clone()));
    }
    if let Some(v) = &q.client {
        query = query.filter(audit_events::client.eq(v.clone()));
    }
    if let Some(v) = &q.before_id {
        query = query.filter(audit_events::id.lt(v.clone()));
    }
    if let Some(v) = &q.id {
        query = query.filter(audit_events::id.eq(v.clone()));
    }
    query.load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_are_id_bounds() {
        let micros = 1_764_237_000_123_456i64;
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            (micros / 1_000_000) as u64,
            ((micros % 1_000_000) * 1000) as u32,
        ))
        .to_string();
        assert!(id_at(micros) <= id, "{} {id}", id_at(micros));
        assert!(id_at(micros + 1000) > id);
    }
}
