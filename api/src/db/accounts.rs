//! SQL of people's accounts (`users`) and of patients' invitations (`invitations`).
//! Times are seconds since the Unix epoch; codes are stored as their SHA-256.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::{invitations, users};

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct UserRow {
    pub tenant: String,
    pub user_id: String,
    /// Lower case; `None` until a patient chooses one.
    pub username: Option<String>,
    pub password_hash: Option<String>,
    /// `patient`, `therapist` or `admin`.
    pub role: String,
    /// `Patient/x` or `Practitioner/x`.
    pub fhir_user: String,
    pub setup_hash: Option<String>,
    pub setup_expires: Option<i64>,
    pub tokens_after: i64,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
}

/// The columns of a [`UserRow`], in its order.
const COLUMNS: (
    users::tenant,
    users::user_id,
    users::username,
    users::password_hash,
    users::role,
    users::fhir_user,
    users::setup_hash,
    users::setup_expires,
    users::tokens_after,
    users::disabled_at,
    users::created_at,
) = (
    users::tenant,
    users::user_id,
    users::username,
    users::password_hash,
    users::role,
    users::fhir_user,
    users::setup_hash,
    users::setup_expires,
    users::tokens_after,
    users::disabled_at,
    users::created_at,
);

pub fn insert(conn: &mut AnyConnection, u: &UserRow) -> QueryResult<()> {
    on_backend!(conn, db => diesel::insert_into(users::table)
        .values((
            users::tenant.eq(&u.tenant),
            users::user_id.eq(&u.user_id),
            users::username.eq(&u.username),
            users::password_hash.eq(&u.password_hash),
            users::role.eq(&u.role),
            users::fhir_user.eq(&u.fhir_user),
            users::setup_hash.eq(&u.setup_hash),
            users::setup_expires.eq(u.setup_expires),
            users::tokens_after.eq(u.tokens_after),
            users::disabled_at.eq(u.disabled_at),
            users::created_at.eq(u.created_at),
        ))
        .execute(db))?;
    Ok(())
}

/// The account of a (lower-case) username.
pub fn by_username(
    conn: &mut AnyConnection,
    tenant: &str,
    username: &str,
) -> QueryResult<Option<UserRow>> {
    on_backend!(conn, db => users::table
        .filter(users::tenant.eq(tenant))
        .filter(users::username.eq(username))
        .select(COLUMNS)
        .first(db)
        .optional())
}

pub fn by_id(
    conn: &mut AnyConnection,
    tenant: &str,
    user_id: &str,
) -> QueryResult<Option<UserRow>> {
    on_backend!(conn, db => users::table
        .filter(users::tenant.eq(tenant))
        .filter(users::user_id.eq(user_id))
        .select(COLUMNS)
        .first(db)
        .optional())
}

/// The account of a person (`Patient/x`, `Practitioner/x`).
pub fn by_fhir_user(
    conn: &mut AnyConnection,
    tenant: &str,
    fhir_user: &str,
) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::tenant.eq(tenant))
        .filter(users::fhir_user.eq(fhir_user))
        .select(COLUMNS)
        .first(conn)
        .optional()
}

/// The account whose set-up code has this hash.
pub fn by_setup_hash(
    conn: &mut AnyConnection,
    tenant: &str,
    setup_hash: &str,
) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::tenant.eq(tenant))
        .filter(users::setup_hash.eq(setup_hash))
        .select(COLUMNS)
        .first(conn)
        .optional()
}

/// The accounts of a clinic, oldest first.
pub fn list(conn: &mut AnyConnection, tenant: &str) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::tenant.eq(tenant))
        .order((users::created_at.asc(), users::user_id.asc()))
        .select(COLUMNS)
        .load(conn)
}

/// Sets username and password, enables the account, clears its set-up code and voids
/// the grants made before `tokens_after`; `false` when there is no such account.
pub fn set_credentials(
    conn: &mut AnyConnection,
    tenant: &str,
    user_id: &str,
    username: &str,
    password_hash: &str,
    tokens_after: i64,
) -> QueryResult<bool> {
    let n = on_backend!(conn, db => diesel::update(
        users::table
            .filter(users::tenant.eq(tenant))
            .filter(users::user_id.eq(user_id)),
    )
    .set((
        users::username.eq(username),
        users::password_hash.eq(password_hash),
        users::setup_hash.eq(None::<String>),
        users::setup_expires.eq(None::<i64>),
        users::disabled_at.eq(None::<i64>),
        users::tokens_after.eq(tokens_after),
    ))
    .execute(db))?;
    Ok(n == 1)
}

/// Grants made before `at` are void (their tokens and refresh tokens are refused).
pub fn set_tokens_after(
    conn: &mut AnyConnection,
    tenant: &str,
    user_id: &str,
    at: i64,
) -> QueryResult<bool> {
    let n = on_backend!(conn, db => diesel::update(
        users::table
            .filter(users::tenant.eq(tenant))
            .filter(users::user_id.eq(user_id)),
    )
    .set(users::tokens_after.eq(at))
    .execute(db))?;
    Ok(n == 1)
}

/// Disables an account at `now` and voids its grants (`tokens_after = now`); `false`
/// when there is no such account.
pub fn disable(
    conn: &mut AnyConnection,
    tenant: &str,
    user_id: &str,
    now: i64,
) -> QueryResult<bool> {
    let n = on_backend!(conn, db => diesel::update(
        users::table
            .filter(users::tenant.eq(tenant))
            .filter(users::user_id.eq(user_id)),
    )
    .set((
        users::disabled_at.eq(Some(now)),
        users::tokens_after.eq(now),
        users::setup_hash.eq(None::<String>),
        users::setup_expires.eq(None::<i64>),
    ))
    .execute(db))?;
    Ok(n == 1)
}

/// An invitation.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct InvitationRow {
    pub tenant: String,
    pub code_hash: String,
    pub patient_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Stores an invitation; the patient's earlier unused invitations become used at
/// `created_at` (void).
pub fn insert_invitation(conn: &mut AnyConnection, i: &InvitationRow) -> QueryResult<()> {
    on_backend!(conn, db => diesel::update(
        invitations::table
            .filter(invitations::tenant.eq(&i.tenant))
            .filter(invitations::patient_id.eq(&i.patient_id))
            .filter(invitations::used_at.is_null()),
    )
    .set(invitations::used_at.eq(Some(i.created_at)))
    .execute(db))?;
    on_backend!(conn, db => diesel::insert_into(invitations::table)
        .values((
            invitations::tenant.eq(&i.tenant),
            invitations::code_hash.eq(&i.code_hash),
            invitations::patient_id.eq(&i.patient_id),
            invitations::created_at.eq(i.created_at),
            invitations::expires_at.eq(i.expires_at),
            invitations::used_at.eq(i.used_at),
        ))
        .execute(db))?;
    Ok(())
}

/// Voids a patient's unused invitations; how many there were.
pub fn void_invitations(
    conn: &mut AnyConnection,
    tenant: &str,
    patient_id: &str,
    now: i64,
) -> QueryResult<usize> {
    on_backend!(conn, db => diesel::update(
        invitations::table
            .filter(invitations::tenant.eq(tenant))
            .filter(invitations::patient_id.eq(patient_id))
            .filter(invitations::used_at.is_null()),
    )
    .set(invitations::used_at.eq(Some(now)))
    .execute(db))
}

pub fn invitation_by_hash(
    conn: &mut AnyConnection,
    tenant: &str,
    code_hash: &str,
) -> QueryResult<Option<InvitationRow>> {
    on_backend!(conn, db => invitations::table
        .filter(invitations::tenant.eq(tenant))
        .filter(invitations::code_hash.eq(code_hash))
        .select((
            invitations::tenant,
            invitations::code_hash,
            invitations::patient_id,
            invitations::created_at,
            invitations::expires_at,
            invitations::used_at,
        ))
        .first(db)
        .optional())
}

/// Marks an invitation used, only if it was not: `true` for the one caller that did
/// (of two redeems at once, one gets `false`).
pub fn use_invitation(
    conn: &mut AnyConnection,
    tenant: &str,
    code_hash: &str,
    now: i64,
) -> QueryResult<bool> {
    let n = on_backend!(conn, db => diesel::update(
        invitations::table
            .filter(invitations::tenant.eq(tenant))
            .filter(invitations::code_hash.eq(code_hash))
            .filter(invitations::used_at.is_null()),
    )
    .set(invitations::used_at.eq(Some(now)))
    .execute(db))?;
    Ok(n == 1)
}

/// Clears a staff member's set-up code, only if it is still this one: `true` for the
/// one caller that did.
pub fn use_setup(
    conn: &mut AnyConnection,
    tenant: &str,
    user_id: &str,
    setup_hash: &str,
) -> QueryResult<bool> {
    let n = on_backend!(conn, db => diesel::update(
        users::table
            .filter(users::tenant.eq(tenant))
            .filter(users::user_id.eq(user_id))
            .filter(users::setup_hash.eq(setup_hash)),
    )
    .set((
        users::setup_hash.eq(None::<String>),
        users::setup_expires.eq(None::<i64>),
    ))
    .execute(db))?;
    Ok(n == 1)
}
