//! SQL of idempotent requests (the `Idempotency-Key` header) and of the identifiers that
//! are unique in a tenant. Every query names the tenant.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::{idempotency_keys, unique_identifiers};

/// Resource types whose business identifiers are unique in a tenant (enforced by the
/// primary key of `unique_identifiers`, kept with the search rows in `store.rs`).
pub const UNIQUE_IDENTIFIER_TYPES: &[&str] = &["Patient", "ServiceRequest", "Task"];

/// How long the answer to an idempotent request is kept, in microseconds (24 hours).
pub const IDEMPOTENCY_RETENTION_MICROS: i64 = 24 * 3600 * 1_000_000;

/// The answer stored for an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct StoredAnswer {
    pub tenant: String,
    pub idem_key: String,
    pub fingerprint: String,
    pub status: i32,
    pub res_type: Option<String>,
    pub res_id: Option<String>,
    pub version: Option<i64>,
    pub last_updated: Option<i64>,
    pub body: Option<String>,
    pub created_at: i64,
}

/// The answer stored for `key` in the tenant, unless it has expired at `now`.
pub fn answer(
    conn: &mut AnyConnection,
    tenant: &str,
    key: &str,
    now: i64,
) -> QueryResult<Option<StoredAnswer>> {
    on_backend!(conn, c => idempotency_keys::table
        .filter(idempotency_keys::tenant.eq(tenant))
        .filter(idempotency_keys::idem_key.eq(key))
        .filter(idempotency_keys::created_at.gt(now - IDEMPOTENCY_RETENTION_MICROS))
        .first(c)
        .optional())
}

/// Stores an answer, dropping the tenant's expired ones (the expired row of the same
/// key included).
pub fn store_answer(conn: &mut AnyConnection, answer: &StoredAnswer) -> QueryResult<()> {
    on_backend!(conn, c => diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::tenant.eq(&answer.tenant))
            .filter(idempotency_keys::created_at.le(answer.created_at - IDEMPOTENCY_RETENTION_MICROS)),
    )
    .execute(c))?;
    on_backend!(conn, c => diesel::insert_into(idempotency_keys::table)
        .values(answer)
        .execute(c))?;
    Ok(())
}

/// Another resource of `res_type` that holds the identifier `system|value`, if any.
pub fn identifier_holder(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    res_id: &str,
    system: &str,
    value: &str,
) -> QueryResult<Option<String>> {
    on_backend!(conn, c => unique_identifiers::table
        .filter(unique_identifiers::tenant.eq(tenant))
        .filter(unique_identifiers::res_type.eq(res_type))
        .filter(unique_identifiers::system.eq(system))
        .filter(unique_identifiers::value.eq(value))
        .filter(unique_identifiers::res_id.ne(res_id))
        .select(unique_identifiers::res_id)
        .first(c)
        .optional())
}
