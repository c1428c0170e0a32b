//! SQL of registered clients and of the client assertions they used.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::{client_assertions, clients};

/// A registered client.
#[derive(Debug, Clone, Queryable)]
pub struct ClientRow {
    pub tenant: String,
    pub client_id: String,
    pub name: String,
    pub scope: String,
    pub jwks: Option<String>,
    pub jwks_url: Option<String>,
    pub created_at: i64,
    /// `backend` (private_key_jwt), `public` (PKCE, no secret) or `confidential` (a
    /// client secret).
    pub kind: String,
    /// The redirect URIs of an app, space separated.
    pub redirect_uris: Option<String>,
    /// The SHA-256 of a confidential app's secret (32 random bytes: no slow hash needed).
    pub secret_hash: Option<String>,
}

/// The columns of a [`ClientRow`], in its order.
const COLUMNS: (
    clients::tenant,
    clients::client_id,
    clients::name,
    clients::scope,
    clients::jwks,
    clients::jwks_url,
    clients::created_at,
    clients::kind,
    clients::redirect_uris,
    clients::secret_hash,
) = (
    clients::tenant,
    clients::client_id,
    clients::name,
    clients::scope,
    clients::jwks,
    clients::jwks_url,
    clients::created_at,
    clients::kind,
    clients::redirect_uris,
    clients::secret_hash,
);

pub fn insert(conn: &mut AnyConnection, c: &ClientRow) -> QueryResult<()> {
    on_backend!(conn, db => diesel::insert_into(clients::table)
        .values((
            clients::tenant.eq(&c.tenant),
            clients::client_id.eq(&c.client_id),
            clients::name.eq(&c.name),
            clients::scope.eq(&c.scope),
            clients::jwks.eq(&c.jwks),
            clients::jwks_url.eq(&c.jwks_url),
            clients::created_at.eq(c.created_at),
            clients::kind.eq(&c.kind),
            clients::redirect_uris.eq(&c.redirect_uris),
            clients::secret_hash.eq(&c.secret_hash),
        ))
        .execute(db))?;
    Ok(())
}

/// The client with this id, in whichever clinic registered it (the token endpoint
/// learns the clinic from the client).
pub fn find(conn: &mut AnyConnection, client_id: &str) -> QueryResult<Option<ClientRow>> {
    clients::table
        .filter(clients::client_id.eq(client_id))
        .select(COLUMNS)
        .first(conn)
        .optional()
}

/// Records the use of an assertion id; `false` when it was used before (a replay).
/// Expired records are removed on the way.
pub fn use_assertion(
    conn: &mut AnyConnection,
    tenant: &str,
    client_id: &str,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> QueryResult<bool> {
    on_backend!(conn, db => diesel::delete(
        client_assertions::table.filter(client_assertions::expires_at.lt(now)),
    )
    .execute(db))?;
    let inserted = on_backend!(conn, db => diesel::insert_into(client_assertions::table)
        .values((
            client_assertions::tenant.eq(tenant),
            client_assertions::client_id.eq(client_id),
            client_assertions::jti.eq(jti),
            client_assertions::expires_at.eq(expires_at),
        ))
        .on_conflict_do_nothing()
        .execute(db))?;
    Ok(inserted == 1)
}

/// The clients of a clinic, oldest first.
pub fn list(conn: &mut AnyConnection, tenant: &str) -> QueryResult<Vec<ClientRow>> {
    clients::table
        .filter(clients::tenant.eq(tenant))
        .order((clients::created_at.asc(), clients::client_id.asc()))
        .select(COLUMNS)
        .load(conn)
}

/// Replaces a client's keys (a JWKS document or its URL); `false` when the clinic has no
/// such client.
pub fn set_keys(
    conn: &mut AnyConnection,
    tenant: &str,
    client_id: &str,
    jwks: Option<&str>,
    jwks_url: Option<&str>,
) -> QueryResult<bool> {
    let n = on_backend!(conn, db => diesel::update(
        clients::table
            .filter(clients::tenant.eq(tenant))
            .filter(clients::client_id.eq(client_id)),
    )
    .set((clients::jwks.eq(jwks), clients::jwks_url.eq(jwks_url)))
    .execute(db))?;
    Ok(n == 1)
}

/// Replaces a client's scope when it is still `was`; `false` otherwise.
pub fn replace_scope(
    conn: &mut AnyConnection,
    tenant: &str,
    client_id: &str,
    was: &str,
    scope: &str,
) -> QueryResult<bool> {
    let n = on_backend!(conn, db => diesel::update(
        clients::table
            .filter(clients::tenant.eq(tenant))
            .filter(clients::client_id.eq(client_id))
            .filter(clients::scope.eq(was)),
    )
    .set(clients::scope.eq(scope))
    .execute(db))?;
    Ok(n == 1)
}

/// Removes a client and the assertion ids it used; `false` when the clinic has no such
/// client.
pub fn remove(conn: &mut AnyConnection, tenant: &str, client_id: &str) -> QueryResult<bool> {
    on_backend!(conn, db => diesel::delete(
        client_assertions::table
            .filter(client_assertions::tenant.eq(tenant))
            .filter(client_assertions::client_id.eq(client_id)),
    )
    .execute(db))?;
    let n = on_backend!(conn, db => diesel::delete(
        clients::table
            .filter(clients::tenant.eq(tenant))
            .filter(clients::client_id.eq(client_id)),
    )
    .execute(db))?;
    Ok(n == 1)
}
