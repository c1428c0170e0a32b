//! People's accounts: patients (invited by their clinic with a one-time code) and
//! clinic staff (added by an administrator, with a one-time set-up code), their
//! sign-in with a username and password, and the throttling of wrong guesses.
//!
//! No answer tells whether an account exists: an unknown username and a wrong password
//! are one error and cost the same time (an Argon2 check either way); an unknown, used
//! or expired code and a wrong birth date are one error. Wrong codes are throttled per
//! code and per address, failed sign-ins per account and per address.
//!
//! Times are seconds since the Unix epoch.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fhir_mapping::resource_types::is_valid_id;

use super::passwords;
use crate::db::accounts::{self as rows, InvitationRow, UserRow};
use crate::db::store::{self, Key};
use crate::db::{AnyConnection, Db, DbError, IsRetryable};
use crate::error::ApiError;

/// Seconds a patient's invitation is valid, unless the caller says otherwise.
pub const INVITATION_SECONDS: i64 = 7 * 24 * 3600;
/// Seconds a staff member's set-up code is valid.
pub const SETUP_SECONDS: i64 = 7 * 24 * 3600;
/// Characters of a patient's invitation code (31 symbols: about 40 bits, throttled).
pub const INVITATION_CODE_LEN: usize = 8;
/// Characters of a staff member's set-up code (about 79 bits).
pub const SETUP_CODE_LEN: usize = 16;

/// What a person is to the clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Patient,
    Therapist,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Therapist => "therapist",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "patient" => Some(Role::Patient),
            "therapist" => Some(Role::Therapist),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A person who may sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub tenant: String,
    pub user_id: String,
    pub username: String,
    pub role: Role,
    /// `Patient/x` or `Practitioner/x`.
    pub fhir_user: String,
    /// Grants made before this instant (seconds) are void.
    pub tokens_after: i64,
}

impl User {
    /// The Patient id when the person is a patient.
    pub fn patient(&self) -> Option<&str> {
        self.fhir_user.strip_prefix("Patient/")
    }

    fn of(row: &UserRow) -> Option<User> {
        Some(User {
            tenant: row.tenant.clone(),
            user_id: row.user_id.clone(),
            username: row.username.clone()?,
            role: Role::parse(&row.role)?,
            fhir_user: row.fhir_user.clone(),
            tokens_after: row.tokens_after,
        })
    }
}

/// Why a sign-in fails.
#[derive(Debug)]
pub enum SignInError {
    /// Unknown username or wrong password: one message for both.
    Wrong,
    /// Too many failures of this account or address: wait this long.
    Throttled(Duration),
    /// The password is right but the account is disabled.
    Disabled,
    /// The database failed.
    Internal(ApiError),
}

/// Why redeeming a code fails.
#[derive(Debug)]
pub enum RedeemError {
    /// Unknown, used or expired code, or a wrong birth date: one message for all.
    Code,
    /// The username is taken or not valid: why.
    Username(String),
    /// The password does not meet the policy: why.
    Password(String),
    /// Too many wrong codes from this address, or for this code: wait this long.
    Throttled(Duration),
    /// The database failed (retried by `Db::write` when it lost a race).
    Internal(ApiError),
}

impl From<diesel::result::Error> for RedeemError {
    fn from(e: diesel::result::Error) -> Self {
        RedeemError::Internal(e.into())
    }
}

impl From<DbError> for RedeemError {
    fn from(e: DbError) -> Self {
        RedeemError::Internal(e.into())
    }
}

impl From<ApiError> for RedeemError {
    fn from(e: ApiError) -> Self {
        RedeemError::Internal(e)
    }
}

impl IsRetryable for RedeemError {
    fn is_retryable(&self) -> bool {
        matches!(self, RedeemError::Internal(e) if e.is_retryable())
    }

    fn outage(&self) -> Option<crate::db::outage::Outage> {
        match self {
            RedeemError::Internal(e) => e.outage(),
            _ => None,
        }
    }
}

/// A username as stored: trimmed, lower case, 3 to 64 of `a-z 0-9 . _ - @ +`, starting
/// with a letter or digit.
pub fn normalize_username(username: &str) -> Result<String, String> {
    let u = username.trim().to_lowercase();
    let len = u.chars().count();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_@+".contains(c);
    if !(3..=64).contains(&len)
        || !u.chars().all(allowed)
        || !u.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(
            "a username has 3 to 64 letters, digits or . _ - @ +, and starts with a letter or digit"
                .into(),
        );
    }
    Ok(u)
}

/// Checks a username and password and answers the person. Reads the database and
/// checks an Argon2 hash (about 80 ms, blocking: run it off the async workers, such as
/// in `Db::read`). `address` is the client's network address ("" when unknown).
#[allow(clippy::too_many_arguments)]
pub fn sign_in(
    conn: &mut AnyConnection,
    throttle: &Throttle,
    tenant: &str,
    username: &str,
    password: &str,
    address: &str,
    now: i64,
) -> Result<User, SignInError> {
    let name = username.trim().to_lowercase();
    let keys = [
        Throttle::account_key(tenant, &name),
        Throttle::address_key(address),
    ];
    let keys: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| !k.is_empty())
        .collect();
    throttle.check(&keys).map_err(SignInError::Throttled)?;
    let row = if name.is_empty() || password.len() > passwords::MAX_LEN * 4 {
        None
    } else {
        rows::by_username(conn, tenant, &name).map_err(|e| SignInError::Internal(e.into()))?
    };
    let checked = match row.as_ref().and_then(|r| r.password_hash.as_deref()) {
        Some(hash) => passwords::verify(hash, password),
        None => passwords::dummy_verify(password),
    };
    let row = match row {
        Some(row) if checked => row,
        _ => {
            throttle.fail(&keys);
            return Err(SignInError::Wrong);
        }
    };
    if row.disabled_at.is_some_and(|d| d <= now) {
        return Err(SignInError::Disabled);
    }
    User::of(&row).ok_or(SignInError::Wrong)
}

/// Redeems a patient's invitation code (checking the Patient's `birthDate` when it has
/// one) or a staff member's set-up code: sets the account's username and password
/// (a patient invited again keeps one account, its username and password replaced) and
/// voids its earlier grants (`tokens_after = now`). The code becomes used in the same
/// transaction, only if it was unused: of two redeems at once one succeeds. Run it in
/// `Db::write` (its error type is retried there when it lost a race); it hashes the
/// password (about 80 ms) once the code is known to be good.
#[allow(clippy::too_many_arguments)]
pub fn redeem(
    conn: &mut AnyConnection,
    throttle: &Throttle,
    tenant: &str,
    code: &str,
    birth_date: Option<&str>,
    username: &str,
    password: &str,
    address: &str,
    now: i64,
) -> Result<User, RedeemError> {
    let code = passwords::normalize_code(code);
    let code_hash = passwords::hash_secret(&code);
    let keys = [
        Throttle::code_key(tenant, &code_hash),
        Throttle::address_key(address),
    ];
    let keys: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| !k.is_empty())
        .collect();
    throttle.check(&keys).map_err(RedeemError::Throttled)?;
    let wrong = || {
        throttle.fail(&keys);
        RedeemError::Code
    };
    if code.is_empty() || code.len() > 64 {
        return Err(wrong());
    }
    enum Target {
        Patient(InvitationRow),
        Staff(UserRow),
    }
    let target = match rows::invitation_by_hash(conn, tenant, &code_hash)? {
        Some(i) if i.used_at.is_none() && i.expires_at > now => Target::Patient(i),
        Some(_) => return Err(wrong()),
        None => match rows::by_setup_hash(conn, tenant, &code_hash)? {
            Some(u)
                if u.disabled_at.is_none()
                    && u.setup_expires.is_some_and(|e| e > now)
                    && u.role != Role::Patient.as_str() =>
            {
                Target::Staff(u)
            }
            _ => return Err(wrong()),
        },
    };
    if let Target::Patient(i) = &target
        && !birth_date_matches(conn, tenant, &i.patient_id, birth_date)?
    {
        return Err(wrong());
    }
    let name = normalize_username(username).map_err(RedeemError::Username)?;
    passwords::check_new(password, &name).map_err(RedeemError::Password)?;
    let fhir_user = match &target {
        Target::Patient(i) => format!("Patient/{}", i.patient_id),
        Target::Staff(u) => u.fhir_user.clone(),
    };
    if let Some(other) = rows::by_username(conn, tenant, &name)?
        && other.fhir_user != fhir_user
    {
        return Err(RedeemError::Username(
            "this username is taken: choose another".into(),
        ));
    }
    // the code first: of two redeems at once, the second finds it used
    let claimed = match &target {
        Target::Patient(_) => rows::use_invitation(conn, tenant, &code_hash, now)?,
        Target::Staff(u) => rows::use_setup(conn, tenant, &u.user_id, &code_hash)?,
    };
    if !claimed {
        return Err(wrong());
    }
    let hash = passwords::hash(password)?;
    let existing = match &target {
        Target::Patient(_) => rows::by_fhir_user(conn, tenant, &fhir_user)?,
        Target::Staff(u) => Some(u.clone()),
    };
    let row = match existing {
        Some(mut row) => {
            rows::set_credentials(conn, tenant, &row.user_id, &name, &hash, now)?;
            row.username = Some(name);
            row.tokens_after = now;
            row
        }
        None => {
            let row = UserRow {
                tenant: tenant.to_string(),
                user_id: crate::db::new_id(),
                username: Some(name),
                password_hash: Some(hash),
                role: Role::Patient.as_str().into(),
                fhir_user,
                setup_hash: None,
                setup_expires: None,
                tokens_after: now,
                disabled_at: None,
                created_at: now,
            };
            rows::insert(conn, &row)?;
            row
        }
    };
    User::of(&row)
        .ok_or_else(|| RedeemError::Internal(ApiError::internal("an account row is not valid")))
}

/// Whether the typed birth date is the Patient's (any date when the Patient states
/// none; `false` when the clinic has no such live Patient).
fn birth_date_matches(
    conn: &mut AnyConnection,
    tenant: &str,
    patient_id: &str,
    typed: Option<&str>,
) -> Result<bool, RedeemError> {
    let key = Key {
        tenant,
        res_type: "Patient",
        res_id: patient_id,
    };
    let Some(body) = store::current(conn, key)?
        .filter(|c| !c.deleted)
        .and_then(|c| c.body)
    else {
        return Ok(false);
    };
    let patient: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| ApiError::internal_from("a stored Patient is not JSON", e))?;
    let Some(stated) = patient.get("birthDate").and_then(serde_json::Value::as_str) else {
        return Ok(true);
    };
    let typed = typed.map(str::trim).unwrap_or_default();
    // a partial birth date (a year, a year and month) matches the full dates within it
    Ok(!typed.is_empty()
        && (typed == stated || (stated.len() < 10 && typed.starts_with(&format!("{stated}-")))))
}

/// The account of `user_id`, `None` when there is none, it is disabled, or it has no
/// password yet.
pub fn find(
    conn: &mut AnyConnection,
    tenant: &str,
    user_id: &str,
) -> Result<Option<User>, ApiError> {
    Ok(rows::by_id(conn, tenant, user_id)?
        .filter(|r| r.disabled_at.is_none() && r.password_hash.is_some())
        .as_ref()
        .and_then(User::of))
}

/// A patient's new invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// The code to give the patient (shown once; stored as its hash).
    pub code: String,
    /// Seconds since the Unix epoch.
    pub expires: i64,
}

/// Invites the clinic's Patient `patient_id` (404 when the clinic has no such live
/// Patient) for `valid_secs`; the patient's earlier invitations are void.
pub fn invite(
    conn: &mut AnyConnection,
    tenant: &str,
    patient_id: &str,
    now: i64,
    valid_secs: i64,
) -> Result<Invitation, ApiError> {
    let key = Key {
        tenant,
        res_type: "Patient",
        res_id: patient_id,
    };
    if !is_valid_id(patient_id) || !store::exists(conn, key)? {
        return Err(ApiError::NotFound(format!(
            "Patient/{patient_id} does not exist"
        )));
    }
    let code = passwords::random_code(INVITATION_CODE_LEN)?;
    let expires = now + valid_secs.max(60);
    rows::insert_invitation(
        conn,
        &InvitationRow {
            tenant: tenant.to_string(),
            code_hash: passwords::hash_secret(&code),
            patient_id: patient_id.to_string(),
            created_at: now,
            expires_at: expires,
            used_at: None,
        },
    )?;
    Ok(Invitation { code, expires })
}

/// Ends a patient's access: their unused invitations are void, and their account (if
/// any) is disabled with every grant void (`tokens_after = now`) until a new invitation
/// is redeemed. `true` when the patient had an account.
pub fn revoke_patient(
    conn: &mut AnyConnection,
    tenant: &str,
    patient_id: &str,
    now: i64,
) -> Result<bool, ApiError> {
    rows::void_invitations(conn, tenant, patient_id, now)?;
    match rows::by_fhir_user(conn, tenant, &format!("Patient/{patient_id}"))? {
        Some(row) => {
            crate::db::grants::revoke_user_grants(conn, tenant, &row.user_id, now)?;
            Ok(rows::disable(conn, tenant, &row.user_id, now)?)
        }
        None => Ok(false),
    }
}

/// A staff member's new account, before its set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSetup {
    pub user_id: String,
    /// The one-time set-up code (shown once; stored as its hash).
    pub code: String,
    /// Seconds since the Unix epoch.
    pub expires: i64,
}

/// Adds an account for the clinic's `practitioner` (`Practitioner/x`, which must exist
/// in the clinic) with `username` and `role` (therapist or admin), and answers its
/// set-up code, valid 7 days, with which the person chooses a password.
pub fn add_staff(
    conn: &mut AnyConnection,
    tenant: &str,
    practitioner: &str,
    username: &str,
    role: Role,
    now: i64,
) -> Result<StaffSetup, ApiError> {
    if role == Role::Patient {
        return Err(ApiError::BadRequest(
            "a staff member's role is therapist or admin (patients are invited with $invite)"
                .into(),
        ));
    }
    let id = practitioner
        .strip_prefix("Practitioner/")
        .filter(|id| is_valid_id(id))
        .ok_or_else(|| ApiError::BadRequest("practitioner is Practitioner/<id>".into()))?;
    let key = Key {
        tenant,
        res_type: "Practitioner",
        res_id: id,
    };
    if !store::exists(conn, key)? {
        return Err(ApiError::NotFound(format!(
            "Practitioner/{id} does not exist"
        )));
    }
    let name = normalize_username(username).map_err(ApiError::BadRequest)?;
    if rows::by_username(conn, tenant, &name)?.is_some() {
        return Err(ApiError::Conflict(format!(
            "the username `{name}` is taken"
        )));
    }
    let fhir_user = format!("Practitioner/{id}");
    if rows::by_fhir_user(conn, tenant, &fhir_user)?.is_some() {
        return Err(ApiError::Conflict(format!(
            "{fhir_user} has an account already"
        )));
    }
    let code = passwords::random_code(SETUP_CODE_LEN)?;
    let row = UserRow {
        tenant: tenant.to_string(),
        user_id: crate::db::new_id(),
        username: Some(name),
        password_hash: None,
        role: role.as_str().into(),
        fhir_user,
        setup_hash: Some(passwords::hash_secret(&code)),
        setup_expires: Some(now + SETUP_SECONDS),
        tokens_after: now,
        disabled_at: None,
        created_at: now,
    };
    rows::insert(conn, &row)?;
    Ok(StaffSetup {
        user_id: row.user_id,
        code,
        expires: now + SETUP_SECONDS,
    })
}

/// Voids every grant the person made before `now` (signing out everywhere); `false`
/// when the clinic has no such account.
pub fn void_grants(
    conn: &mut AnyConnection,
    tenant: &str,
    user_id: &str,
    now: i64,
) -> Result<bool, ApiError> {
    crate::db::grants::revoke_user_grants(conn, tenant, user_id, now)?;
    Ok(rows::set_tokens_after(conn, tenant, user_id, now)?)
}

/// Disables a staff member's account and voids its grants; 404 when the clinic has no
/// such account (a patient's access is ended with `revoke_patient`).
pub fn disable(
    conn: &mut AnyConnection,
    tenant: &str,
    user_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    if rows::disable(conn, tenant, user_id, now)? {
        crate::db::grants::revoke_user_grants(conn, tenant, user_id, now)?;
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("there is no account {user_id}")))
    }
}

/// What an administrator sees of an account (never a hash or a code).
pub fn describe(u: &UserRow) -> serde_json::Value {
    let at = |s: i64| crate::clock::instant_string(s.saturating_mul(1_000_000));
    serde_json::json!({
        "user_id": u.user_id,
        "username": u.username,
        "role": u.role,
        "fhir_user": u.fhir_user,
        "status": if u.disabled_at.is_some() {
            "disabled"
        } else if u.password_hash.is_some() {
            "active"
        } else {
            "set-up pending"
        },
        "created": at(u.created_at),
    })
}

/// The agent of the audit records of `user` commands.
pub const COMMAND_LINE: &str = super::clients::COMMAND_LINE;

/// Records a change to an account (action `C`, `U` or `D`) in the change's
/// transaction: the person's resource (`Practitioner/x`, `Patient/x`) is the entity.
#[allow(clippy::too_many_arguments)]
pub fn record_change(
    conn: &mut AnyConnection,
    tenant: &str,
    client: &str,
    address: Option<&str>,
    action: &str,
    fhir_user: &str,
    status: u16,
    now_micros: i64,
) -> Result<(), ApiError> {
    crate::db::audit::insert(
        conn,
        &[change_row(
            tenant, client, address, action, fhir_user, status, now_micros,
        )],
    )?;
    Ok(())
}

/// The audit record of a change to an account or an invitation.
#[allow(clippy::too_many_arguments)]
pub fn change_row(
    tenant: &str,
    client: &str,
    address: Option<&str>,
    action: &str,
    fhir_user: &str,
    status: u16,
    now_micros: i64,
) -> crate::db::audit::AuditRow {
    let (res_type, res_id) = fhir_user.split_once('/').unwrap_or(("", fhir_user));
    crate::db::audit::AuditRow {
        tenant: tenant.to_string(),
        id: crate::db::new_id(),
        recorded: now_micros,
        action: action.into(),
        subtype: fhir_mapping::audit::ACCOUNT_CHANGE.into(),
        outcome: "0".into(),
        status: i32::from(status),
        client: client.to_string(),
        address: address.map(str::to_string),
        res_type: Some(res_type.to_string()),
        res_id: Some(res_id.to_string()),
        version: None,
        patient: (res_type == "Patient").then(|| res_id.to_string()),
        query: None,
    }
}

/// Adds a staff account in the database at `database_url` (the `user add` command).
pub fn add_staff_in(
    database_url: &str,
    tenant: &str,
    practitioner: &str,
    username: &str,
    role: Role,
) -> Result<StaffSetup, ApiError> {
    domain::TenantId::parse(tenant)
        .map_err(|_| ApiError::BadRequest(format!("`{tenant}` is not a valid tenant")))?;
    let db = Db::open(database_url, 1)?;
    let now_micros = jiff::Timestamp::now().as_microsecond();
    let (tenant, practitioner, username) = (
        tenant.to_string(),
        practitioner.to_string(),
        username.to_string(),
    );
    db.write(move |conn| {
        let setup = add_staff(
            conn,
            &tenant,
            &practitioner,
            &username,
            role,
            now_micros / 1_000_000,
        )?;
        record_change(
            conn,
            &tenant,
            COMMAND_LINE,
            None,
            "C",
            &practitioner,
            201,
            now_micros,
        )?;
        Ok(setup)
    })
}

/// The accounts of a clinic in the database at `database_url` (the `user list` command).
pub fn list_in(database_url: &str, tenant: &str) -> Result<Vec<UserRow>, ApiError> {
    let db = Db::open(database_url, 1)?;
    let tenant = tenant.to_string();
    db.write(move |conn| Ok::<_, ApiError>(rows::list(conn, &tenant)?))
}

/// What `user add` prints: the account, then the set-up code as the last word.
pub fn setup_message(username: &str, setup: &StaffSetup) -> String {
    format!(
        "account {} ({username}) added; it is set up by {} with the code {}",
        setup.user_id,
        crate::clock::instant_string(setup.expires.saturating_mul(1_000_000)),
        setup.code
    )
}

/// Failures counted per key, in memory: a key over its quota is refused until its
/// next failure would be allowed again. Keys are made by `account_key` (failed
/// sign-ins of one username: 5, then one a minute), `address_key` (failures from one
/// network address: 20, then one every 10 s) and `code_key` (wrong birth dates with one
/// code: 5, then one every 10 minutes). Several server processes each count their own.
pub struct Throttle {
    accounts: governor::DefaultKeyedRateLimiter<String>,
    addresses: governor::DefaultKeyedRateLimiter<String>,
    codes: governor::DefaultKeyedRateLimiter<String>,
    /// Keys over their quota, and until when.
    blocked: Mutex<HashMap<String, Instant>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new()
    }
}

fn quota(burst: u32, every: Duration) -> governor::Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    governor::Quota::with_period(every)
        .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle {
            accounts: governor::RateLimiter::keyed(quota(5, Duration::from_secs(60))),
            addresses: governor::RateLimiter::keyed(quota(20, Duration::from_secs(10))),
            codes: governor::RateLimiter::keyed(quota(5, Duration::from_secs(600))),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// The key of the sign-ins of one username of a clinic.
    pub fn account_key(tenant: &str, username: &str) -> String {
        format!(
            "account\u{0}{tenant}\u{0}{}",
            username.trim().to_lowercase()
        )
    }

    /// The key of one network address ("" for none: not counted).
    pub fn address_key(address: &str) -> String {
        if address.is_empty() {
            String::new()
        } else {
            format!("address\u{0}{address}")
        }
    }

    /// The key of one code (by its hash) of a clinic.
    pub fn code_key(tenant: &str, code_hash: &str) -> String {
        format!("code\u{0}{tenant}\u{0}{code_hash}")
    }

    /// `Err` with the time to wait when any of `keys` is over its quota.
    pub fn check(&self, keys: &[&str]) -> Result<(), Duration> {
        let now = Instant::now();
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let wait = keys
            .iter()
            .filter_map(|k| blocked.get(*k))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max();
        match wait {
            Some(w) => Err(w.max(Duration::from_secs(1))),
            None => Ok(()),
        }
    }

    /// Counts a failure against each of `keys`.
    pub fn fail(&self, keys: &[&str]) {
        use governor::clock::{Clock, DefaultClock};
        let clock = DefaultClock::default();
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            let limiter = if key.starts_with("account\u{0}") {
                &self.accounts
            } else if key.starts_with("code\u{0}") {
                &self.codes
            } else {
                &self.addresses
            };
            if let Err(not_until) = limiter.check_key(&key.to_string()) {
                blocked.insert(key.to_string(), now + not_until.wait_time_from(clock.now()));
            }
        }
        if blocked.len() > 10_000 {
            blocked.retain(|_, until| *until > now);
            self.accounts.retain_recent();
            self.addresses.retain_recent();
            self.codes.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_case_words() {
        assert_eq!(
            normalize_username(" Ann.Lee ").ok().as_deref(),
            Some("ann.lee")
        );
        assert!(normalize_username("ab").is_err());
        assert!(normalize_username("-ann").is_err());
        assert!(normalize_username("ann lee").is_err());
        assert!(normalize_username(&"a".repeat(65)).is_err());
        assert_eq!(Role::parse("therapist"), Some(Role::Therapist));
        assert_eq!(Role::Admin.as_str(), "admin");
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn a_patient_user_names_its_patient() {
        let u = User {
            tenant: "default".into(),
            user_id: "u1".into(),
            username: "ann".into(),
            role: Role::Patient,
            fhir_user: "Patient/p1".into(),
            tokens_after: 0,
        };
        assert_eq!(u.patient(), Some("p1"));
        let staff = User {
            fhir_user: "Practitioner/x".into(),
            ..u
        };
        assert_eq!(staff.patient(), None);
    }

    #[test]
    fn failures_past_the_quota_are_throttled_per_key() {
        let t = Throttle::new();
        let account = Throttle::account_key("default", "Ann");
        let other = Throttle::account_key("default", "bob");
        for _ in 0..5 {
            assert!(t.check(&[&account]).is_ok());
            t.fail(&[&account]);
        }
        assert!(t.check(&[&account]).is_ok(), "five failures are allowed");
        t.fail(&[&account]);
        let wait = t.check(&[&account]).err().unwrap_or_default();
        assert!(wait > Duration::from_secs(30), "{wait:?}");
        assert!(t.check(&[&other]).is_ok(), "another account is not");
        assert!(t.check(&[&other, &account]).is_err(), "any key over counts");
        assert_eq!(account, Throttle::account_key("default", "ann "));
        assert_eq!(Throttle::address_key(""), "");
    }

    #[test]
    fn the_setup_message_ends_with_the_code() {
        let s = StaffSetup {
            user_id: "u1".into(),
            code: "ABCDEFGHJKMNPQRS".into(),
            expires: 0,
        };
        let m = setup_message("ann", &s);
        assert_eq!(m.split_whitespace().last(), Some("ABCDEFGHJKMNPQRS"));
    }
}
