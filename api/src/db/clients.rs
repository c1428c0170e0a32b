//! SQL of registered clients and of the client assertions they used.

use diesel::prelude::*;

use super::AnyConnection;
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
}

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
        ))
        .execute(db))?;
    Ok(())
}

/// The client with this id, in whichever clinic registered it (the token endpoint
/// learns the clinic from the client).
pub fn find(conn: &mut AnyConnection, client_id: &str) -> QueryResult<Option<ClientRow>> {
    clients::table
        .filter(clients::client_id.eq(client_id))
        .select((
            clients::tenant,
            clients::client_id,
            clients::name,
            clients::scope,
            clients::jwks,
            clients::jwks_url,
            clients::created_at,
        ))
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
