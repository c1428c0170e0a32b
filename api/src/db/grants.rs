//! SQL of what people authorised apps to do: grants, their single-use authorization
//! codes and rotating refresh tokens, and EHR launch contexts. Every secret is stored
//! as the SHA-256 of its value.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::{auth_codes, grants, launches, refresh_tokens, users};

/// What a person authorised one app to do.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct GrantRow {
    pub tenant: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub patient: Option<String>,
    pub fhir_user: Option<String>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    /// The last instant its refresh tokens may be used.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

const GRANT_COLUMNS: (
    grants::tenant,
    grants::grant_id,
    grants::client_id,
    grants::user_id,
    grants::scope,
    grants::patient,
    grants::fhir_user,
    grants::created_at,
    grants::expires_at,
    grants::revoked_at,
) = (
    grants::tenant,
    grants::grant_id,
    grants::client_id,
    grants::user_id,
    grants::scope,
    grants::patient,
    grants::fhir_user,
    grants::created_at,
    grants::expires_at,
    grants::revoked_at,
);

pub fn insert_grant(conn: &mut AnyConnection, g: &GrantRow) -> QueryResult<()> {
    on_backend!(conn, db => diesel::insert_into(grants::table)
        .values((
            grants::tenant.eq(&g.tenant),
            grants::grant_id.eq(&g.grant_id),
            grants::client_id.eq(&g.client_id),
            grants::user_id.eq(&g.user_id),
            grants::scope.eq(&g.scope),
            grants::patient.eq(&g.patient),
            grants::fhir_user.eq(&g.fhir_user),
            grants::created_at.eq(g.created_at),
            grants::expires_at.eq(g.expires_at),
            grants::revoked_at.eq(g.revoked_at),
        ))
        .execute(db))?;
    Ok(())
}

pub fn grant(
    conn: &mut AnyConnection,
    tenant: &str,
    grant_id: &str,
) -> QueryResult<Option<GrantRow>> {
    on_backend!(conn, db => grants::table
        .filter(grants::tenant.eq(tenant))
        .filter(grants::grant_id.eq(grant_id))
        .select(GRANT_COLUMNS)
        .first(db)
        .optional())
}

/// Whether a grant still holds: not revoked, and its person's account neither disabled
/// nor revoked since the grant was made. One lookup by key, for every request of a
/// token that names the grant.
pub fn grant_holds(conn: &mut AnyConnection, tenant: &str, grant_id: &str) -> QueryResult<bool> {
    let found: Option<(Option<i64>, i64, i64, Option<i64>)> = on_backend!(conn, db => grants::table
        .inner_join(
            users::table.on(users::tenant
                .eq(grants::tenant)
                .and(users::user_id.eq(grants::user_id))),
        )
        .filter(grants::tenant.eq(tenant))
        .filter(grants::grant_id.eq(grant_id))
        .select((
            grants::revoked_at,
            grants::created_at,
            users::tokens_after,
            users::disabled_at,
        ))
        .first(db)
        .optional())?;
    Ok(matches!(found, Some((None, created, after, None)) if created >= after))
}

/// Revokes a grant (and with it every token it issued); `false` when it was revoked
/// already or does not exist.
pub fn revoke_grant(
    conn: &mut AnyConnection,
    tenant: &str,
    grant_id: &str,
    now: i64,
) -> QueryResult<bool> {
    let n = on_backend!(conn, db => diesel::update(
        grants::table
            .filter(grants::tenant.eq(tenant))
            .filter(grants::grant_id.eq(grant_id))
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::revoked_at.eq(Some(now)))
    .execute(db))?;
    Ok(n == 1)
}

/// An authorization code, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct CodeRow {
    pub grant_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[allow(clippy::too_many_arguments)]
pub fn insert_code(
    conn: &mut AnyConnection,
    tenant: &str,
    code_hash: &str,
    grant_id: &str,
    redirect_uri: &str,
    code_challenge: &str,
    nonce: Option<&str>,
    expires_at: i64,
) -> QueryResult<()> {
    on_backend!(conn, db => diesel::insert_into(auth_codes::table)
        .values((
            auth_codes::tenant.eq(tenant),
            auth_codes::code_hash.eq(code_hash),
            auth_codes::grant_id.eq(grant_id),
            auth_codes::redirect_uri.eq(redirect_uri),
            auth_codes::code_challenge.eq(code_challenge),
            auth_codes::nonce.eq(nonce),
            auth_codes::expires_at.eq(expires_at),
        ))
        .execute(db))?;
    Ok(())
}

/// Takes a code: its row, marked used in the same statement's transaction when it was
/// unused (`true`), or as it was when it had been used before (`false`).
pub fn take_code(
    conn: &mut AnyConnection,
    tenant: &str,
    code_hash: &str,
    now: i64,
) -> QueryResult<Option<(CodeRow, bool)>> {
    let row: Option<CodeRow> = on_backend!(conn, db => auth_codes::table
        .filter(auth_codes::tenant.eq(tenant))
        .filter(auth_codes::code_hash.eq(code_hash))
        .select((
            auth_codes::grant_id,
            auth_codes::redirect_uri,
            auth_codes::code_challenge,
            auth_codes::nonce,
            auth_codes::expires_at,
            auth_codes::used_at,
        ))
        .first(db)
        .optional())?;
    let Some(row) = row else {
        return Ok(None);
    };
    let n = on_backend!(conn, db => diesel::update(
        auth_codes::table
            .filter(auth_codes::tenant.eq(tenant))
            .filter(auth_codes::code_hash.eq(code_hash))
            .filter(auth_codes::used_at.is_null()),
    )
    .set(auth_codes::used_at.eq(Some(now)))
    .execute(db))?;
    Ok(Some((row, n == 1)))
}

pub fn insert_refresh(
    conn: &mut AnyConnection,
    tenant: &str,
    token_hash: &str,
    grant_id: &str,
    expires_at: i64,
) -> QueryResult<()> {
    on_backend!(conn, db => diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::tenant.eq(tenant),
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::grant_id.eq(grant_id),
            refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(db))?;
    Ok(())
}

/// Takes a refresh token: its grant and expiry, with `true` when it was unused and is
/// now used, `false` when it had been used before (a replay).
pub fn take_refresh(
    conn: &mut AnyConnection,
    tenant: &str,
    token_hash: &str,
    now: i64,
) -> QueryResult<Option<(String, i64, bool)>> {
    let row: Option<(String, i64)> = on_backend!(conn, db => refresh_tokens::table
        .filter(refresh_tokens::tenant.eq(tenant))
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((refresh_tokens::grant_id, refresh_tokens::expires_at))
        .first(db)
        .optional())?;
    let Some((grant_id, expires_at)) = row else {
        return Ok(None);
    };
    let n = on_backend!(conn, db => diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::tenant.eq(tenant))
            .filter(refresh_tokens::token_hash.eq(token_hash))
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(Some(now)))
    .execute(db))?;
    Ok(Some((grant_id, expires_at, n == 1)))
}

/// The grant of a refresh token, without using it (introspection, revocation).
pub fn refresh_grant(
    conn: &mut AnyConnection,
    tenant: &str,
    token_hash: &str,
) -> QueryResult<Option<(String, i64, bool)>> {
    let row: Option<(String, i64, Option<i64>)> = on_backend!(conn, db => refresh_tokens::table
        .filter(refresh_tokens::tenant.eq(tenant))
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((
            refresh_tokens::grant_id,
            refresh_tokens::expires_at,
            refresh_tokens::used_at,
        ))
        .first(db)
        .optional())?;
    Ok(row.map(|(g, e, used)| (g, e, used.is_none())))
}

pub fn insert_launch(
    conn: &mut AnyConnection,
    tenant: &str,
    launch_hash: &str,
    patient: &str,
    encounter: Option<&str>,
    expires_at: i64,
) -> QueryResult<()> {
    on_backend!(conn, db => diesel::insert_into(launches::table)
        .values((
            launches::tenant.eq(tenant),
            launches::launch_hash.eq(launch_hash),
            launches::patient.eq(patient),
            launches::encounter.eq(encounter),
            launches::expires_at.eq(expires_at),
        ))
        .execute(db))?;
    Ok(())
}

/// Takes an unused, unexpired launch context: its patient and encounter (`None` when
/// unknown, used or expired).
pub fn take_launch(
    conn: &mut AnyConnection,
    tenant: &str,
    launch_hash: &str,
    now: i64,
) -> QueryResult<Option<(String, Option<String>)>> {
    let row: Option<(String, Option<String>)> = on_backend!(conn, db => launches::table
        .filter(launches::tenant.eq(tenant))
        .filter(launches::launch_hash.eq(launch_hash))
        .filter(launches::expires_at.gt(now))
        .filter(launches::used_at.is_null())
        .select((launches::patient, launches::encounter))
        .first(db)
        .optional())?;
    if row.is_none() {
        return Ok(None);
    }
    let n = on_backend!(conn, db => diesel::update(
        launches::table
            .filter(launches::tenant.eq(tenant))
            .filter(launches::launch_hash.eq(launch_hash))
            .filter(launches::used_at.is_null()),
    )
    .set(launches::used_at.eq(Some(now)))
    .execute(db))?;
    Ok(if n == 1 { row } else { None })
}

/// Revokes every grant of a person (an account disabled or invited again).
pub fn revoke_user_grants(
    conn: &mut AnyConnection,
    tenant: &str,
    user_id: &str,
    now: i64,
) -> QueryResult<usize> {
    on_backend!(conn, db => diesel::update(
        grants::table
            .filter(grants::tenant.eq(tenant))
            .filter(grants::user_id.eq(user_id))
            .filter(grants::revoked_at.is_null()),
    )
    .set(grants::revoked_at.eq(Some(now)))
    .execute(db))
}
