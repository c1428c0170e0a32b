//! SQL of the audit trail.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::{audit_events, audit_patients};

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

/// Rows per statement of a large batch: a fixed number, so that the statement is
/// prepared once per connection (a statement of any other number of rows would be
/// prepared again for each batch).
const ROWS_PER_STATEMENT: usize = 32;

/// Writes records, `ROWS_PER_STATEMENT` at a time and the rest one at a time, always by
/// statements prepared once per connection. Then notes, once per patient and bucket,
/// which patients the records are about.
pub fn insert(conn: &mut AnyConnection, rows: &[AuditRow]) -> QueryResult<()> {
    // owned values: a statement is cached by the type of its values, which must not
    // borrow
    let values = |r: AuditRow| {
        (
            audit_events::tenant.eq(r.tenant),
            audit_events::id.eq(r.id),
            audit_events::recorded.eq(r.recorded),
            audit_events::action.eq(r.action),
            audit_events::subtype.eq(r.subtype),
            audit_events::outcome.eq(r.outcome),
            audit_events::status.eq(r.status),
            audit_events::client.eq(r.client),
            audit_events::address.eq(r.address),
            audit_events::res_type.eq(r.res_type),
            audit_events::res_id.eq(r.res_id),
            audit_events::version.eq(r.version),
            audit_events::patient.eq(r.patient),
            audit_events::query.eq(r.query),
        )
    };
    let mut chunks = rows.chunks_exact(ROWS_PER_STATEMENT);
    for chunk in &mut chunks {
        let many: [_; ROWS_PER_STATEMENT] = std::array::from_fn(|i| values(chunk[i].clone()));
        on_backend!(conn, c => diesel::insert_into(audit_events::table)
            .values(&many)
            .execute(c))?;
    }
    for r in chunks.remainder() {
        let one = values(r.clone());
        on_backend!(conn, c => diesel::insert_into(audit_events::table)
            .values(&one)
            .execute(c))?;
    }
    let mut noted = std::collections::HashSet::new();
    for r in rows {
        let Some(patient) = &r.patient else { continue };
        let bucket = bucket(&r.id);
        if !noted.insert((&r.tenant, patient, bucket)) {
            continue;
        }
        on_backend!(conn, c => diesel::insert_into(audit_patients::table)
            .values((
                audit_patients::tenant.eq(&r.tenant),
                audit_patients::patient.eq(patient),
                audit_patients::bucket.eq(bucket),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    Ok(())
}

/// The bucket of a record id: the first 32 bits of its millisecond, which the first
/// eight hex digits of a UUID v7 are (65.5 seconds a bucket).
pub fn bucket(id: &str) -> i64 {
    id.get(..8)
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .map_or(0, i64::from)
}

/// The smallest id of a bucket.
fn bucket_start(bucket: i64) -> String {
    format!(
        "{:08x}-0000-0000-0000-000000000000",
        bucket.clamp(0, 0xffff_ffff)
    )
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

/// Records of a tenant, newest first, `limit` at most. A search by patient reads the
/// buckets the patient appears in, newest first, until it has `limit` records.
pub fn search(
    conn: &mut AnyConnection,
    tenant: &str,
    q: &AuditQuery,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let Some(patient) = &q.patient else {
        return filtered(tenant, q, None, limit).load(conn);
    };
    // the buckets that may hold records in the query's bounds
    let mut buckets = audit_patients::table
        .filter(audit_patients::tenant.eq(tenant))
        .filter(audit_patients::patient.eq(patient))
        .select(audit_patients::bucket)
        .order(audit_patients::bucket.desc())
        .into_boxed();
    if let Some(v) = q.from {
        buckets = buckets.filter(audit_patients::bucket.ge(bucket(&id_at(v))));
    }
    if let Some(v) = q.until {
        buckets = buckets.filter(
            audit_patients::bucket.le(bucket(&id_at(v.saturating_add(UNTIL_SLACK_MICROS)))),
        );
    }
    if let Some(v) = &q.before_id {
        buckets = buckets.filter(audit_patients::bucket.le(bucket(v)));
    }
    let buckets: Vec<i64> = buckets.load(conn)?;
    let mut found = Vec::new();
    for b in buckets {
        let left = limit - found.len() as i64;
        if left <= 0 {
            break;
        }
        let rows: Vec<AuditRow> = filtered(tenant, q, Some(b), left).load(conn)?;
        found.extend(rows);
    }
    Ok(found)
}

/// An id is given when the record is written, after it was recorded: ten minutes of
/// slack for a queue that waited.
const UNTIL_SLACK_MICROS: i64 = 600_000_000;

/// The records of a tenant matching the query (and within one bucket, when given),
/// newest first.
fn filtered<'a>(
    tenant: &'a str,
    q: &'a AuditQuery,
    bucket: Option<i64>,
    limit: i64,
) -> audit_events::BoxedQuery<'a, <AnyConnection as diesel::Connection>::Backend> {
    let mut query = audit_events::table
        .filter(audit_events::tenant.eq(tenant))
        .select(audit_events::all_columns)
        .order(audit_events::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(b) = bucket {
        query = query
            .filter(audit_events::id.ge(bucket_start(b)))
            .filter(audit_events::id.lt(bucket_start(b + 1)));
    }
    // a time range is a range of ids (time-ordered), then the exact instants
    if let Some(v) = q.from {
        query = query
            .filter(audit_events::id.ge(id_at(v)))
            .filter(audit_events::recorded.ge(v));
    }
    if let Some(v) = q.until {
        query = query
            .filter(audit_events::id.lt(id_at(v.saturating_add(UNTIL_SLACK_MICROS))))
            .filter(audit_events::recorded.lt(v));
    }
    if let Some(v) = &q.patient {
        query = query.filter(audit_events::patient.eq(v));
    }
    if let Some((t, i)) = &q.entity {
        query = query
            .filter(audit_events::res_type.eq(t))
            .filter(audit_events::res_id.eq(i));
    }
    if let Some(v) = &q.subtype {
        query = query.filter(audit_events::subtype.eq(v));
    }
    if let Some(v) = &q.outcome {
        query = query.filter(audit_events::outcome.eq(v));
    }
    if let Some(v) = &q.action {
        query = query.filter(audit_events::action.eq(v));
    }
    if let Some(v) = &q.client {
        query = query.filter(audit_events::client.eq(v));
    }
    if let Some(v) = &q.before_id {
        query = query.filter(audit_events::id.lt(v));
    }
    if let Some(v) = &q.id {
        query = query.filter(audit_events::id.eq(v));
    }
    query
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
        assert_eq!(bucket(&id), (micros / 1000) >> 16);
        assert_eq!(bucket(&bucket_start(bucket(&id))), bucket(&id));
        assert!(bucket_start(bucket(&id)) <= id && id < bucket_start(bucket(&id) + 1));
    }

    fn row(id: &str, patient: Option<&str>, subtype: &str) -> AuditRow {
        AuditRow {
            tenant: "t".into(),
            id: id.into(),
            recorded: 0,
            action: "R".into(),
            subtype: subtype.into(),
            outcome: "0".into(),
            status: 200,
            client: "c".into(),
            address: None,
            res_type: None,
            res_id: None,
            version: None,
            patient: patient.map(str::to_string),
            query: None,
        }
    }

    #[test]
    fn a_patient_search_reads_the_buckets_newest_first() {
        // PostgreSQL when the tests are given one, else a new SQLite file
        let path = std::env::temp_dir().join(format!("audit-buckets-{}.db", uuid::Uuid::now_v7()));
        let url = match std::env::var("HEP_TEST_DATABASE_URL") {
            Ok(pg) if !pg.is_empty() => crate::db::create_test_schema(
                &pg,
                &format!("audit_{}", uuid::Uuid::now_v7().simple()),
            )
            .expect("schema"),
            _ => path.display().to_string(),
        };
        let db = crate::db::Db::open(&url, 1).expect("open");
        let mut conn = db.connect().expect("connect");
        // three buckets with records of p, one of them also of q; and another clinic's
        let ids = [
            ("019ac3f0-0001-7000-8000-000000000000", Some("p"), "read"),
            ("019ac3f0-0002-7000-8000-000000000000", Some("q"), "read"),
            (
                "019ac3f0-0003-7000-8000-000000000000",
                Some("p"),
                "search-type",
            ),
            ("019ac3f1-0001-7000-8000-000000000000", None, "read"),
            ("019ac3f1-0002-7000-8000-000000000000", Some("p"), "read"),
            ("019ac3f5-0001-7000-8000-000000000000", Some("p"), "read"),
        ];
        let rows: Vec<AuditRow> = ids.iter().map(|(i, p, s)| row(i, *p, s)).collect();
        insert(&mut conn, &rows).expect("insert");
        // written again (a retried batch would be refused by the key, a bucket is not)
        insert(
            &mut conn,
            &[row(
                "019ac3f5-0002-7000-8000-000000000000",
                Some("p"),
                "read",
            )],
        )
        .expect("same bucket again");
        let mut other = row("019ac3f5-0003-7000-8000-000000000000", Some("p"), "read");
        other.tenant = "u".into();
        insert(&mut conn, &[other]).expect("other clinic");

        let ids_of = |rows: Vec<AuditRow>| {
            rows.into_iter()
                .map(|r| r.id[..13].to_string())
                .collect::<Vec<_>>()
        };
        let of_p = AuditQuery {
            patient: Some("p".into()),
            ..Default::default()
        };
        assert_eq!(
            ids_of(search(&mut conn, "t", &of_p, 10).expect("search")),
            [
                "019ac3f5-0002",
                "019ac3f5-0001",
                "019ac3f1-0002",
                "019ac3f0-0003",
                "019ac3f0-0001"
            ]
        );
        // pages across buckets
        let first = search(&mut conn, "t", &of_p, 3).expect("page 1");
        assert_eq!(
            ids_of(first.clone()),
            ["019ac3f5-0002", "019ac3f5-0001", "019ac3f1-0002"]
        );
        let next = AuditQuery {
            before_id: first.last().map(|r| r.id.clone()),
            ..of_p.clone()
        };
        assert_eq!(
            ids_of(search(&mut conn, "t", &next, 3).expect("page 2")),
            ["019ac3f0-0003", "019ac3f0-0001"]
        );
        // other conditions within the buckets
        let searches = AuditQuery {
            subtype: Some("search-type".into()),
            ..of_p.clone()
        };
        assert_eq!(
            ids_of(search(&mut conn, "t", &searches, 10).expect("subtype")),
            ["019ac3f0-0003"]
        );
        assert_eq!(
            ids_of(
                search(
                    &mut conn,
                    "t",
                    &AuditQuery {
                        patient: Some("q".into()),
                        ..Default::default()
                    },
                    10
                )
                .expect("q")
            ),
            ["019ac3f0-0002"]
        );
        assert_eq!(
            search(&mut conn, "u", &of_p, 10)
                .expect("other clinic")
                .len(),
            1
        );
        // a large batch: whole statements of many rows, then the rest row by row
        let many: Vec<AuditRow> = (0..(2 * ROWS_PER_STATEMENT + 6))
            .map(|i| {
                row(
                    &format!("019ac3f7-{i:04x}-7000-8000-000000000000"),
                    Some("r"),
                    "read",
                )
            })
            .collect();
        insert(&mut conn, &many).expect("large batch");
        let of_r = AuditQuery {
            patient: Some("r".into()),
            ..Default::default()
        };
        let found = search(&mut conn, "t", &of_r, 1000).expect("r");
        let mut expected: Vec<String> = many.iter().map(|r| r.id.clone()).collect();
        expected.reverse();
        assert_eq!(
            found.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            expected
        );
        assert_eq!(found[0], many[many.len() - 1]);
        drop(conn);
        drop(db);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
