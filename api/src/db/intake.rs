//! SQL of idempotent requests (the `Idempotency-Key` header) and of the identifiers that
//! are unique in a tenant. Every query names the tenant.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{idempotency_keys, search_tokens};

/// Resource types whose business identifiers are unique in a tenant (enforced by a
/// unique index on the search rows; see the migration `referral_intake`).
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

/// Another live resource of `res_type` with the identifier `system|value`, if any.
pub fn identifier_holder(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    res_id: &str,
    system: &str,
    value: &str,
) -> QueryResult<Option<String>> {
    on_backend!(conn, c => search_tokens::table
        .filter(search_tokens::tenant.eq(tenant))
        .filter(search_tokens::res_type.eq(res_type))
        .filter(search_tokens::param.eq("identifier"))
        .filter(search_tokens::code.eq(value))
        .filter(search_tokens::system.eq(system))
        .filter(search_tokens::res_id.ne(res_id))
        .select(search_tokens::res_id)
        .first(c)
        .optional())
}
