//! The FHIR interactions on the resource store: what create, update, delete and the
//! conditional variants mean, each as one database transaction. Blocking: callers run
//! these on the blocking pool.

use fhir_mapping::references::{ReferenceTarget, classify_reference, find_references};
use fhir_mapping::{Issue, IssueType, ParsedResource};

use domain::referral::Actor;

use crate::auth::visibility::Visibility;
use crate::auth::visibility::seen;
use crate::clock::{Clock, instant_string, to_micros};
use crate::commit::{Author, Change, commit};
use crate::db::store::{self, Key, SearchQuery, Token};
use crate::db::{AnyConnection, Db, intake};
use crate::error::ApiError;
use crate::search::{Search, normal_form};
use crate::sessions::{self, SessionSettings};

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Where a write happens and the rules it follows besides the profiles: the tenant,
/// and how exercise sessions are made.
#[derive(Clone)]
pub struct Scope {
    pub tenant: String,
    /// A patient-context client writes only in this patient's compartment.
    pub patient: Option<String>,
    /// Who writes, for the audit records of the changes (none for the server's own).
    pub agent: Option<crate::audit::Agent>,
    /// What the writer may see of the store (its read limits), for every lookup the
    /// write makes.
    pub visibility: Visibility,
    pub sessions: std::sync::Arc<SessionSettings>,
    /// The time of a write is read in its transaction, so that on one database the
    /// order of `lastUpdated` is the order of commits (see the README on polling).
    pub clock: std::sync::Arc<dyn Clock>,
}

impl Scope {
    /// The context of a write in the transaction being run: the time of the write is
    /// read now, inside it. A client's write (`Actor::Unknown` until authorization).
    pub fn ctx(&self, check_references: bool) -> Ctx<'_> {
        Ctx {
            tenant: &self.tenant,
            sessions: &self.sessions,
            now: to_micros(self.clock.now()),
            check_references,
            actor: Actor::Unknown,
            patient: self.patient.as_deref(),
            agent: self.agent.as_ref(),
            visibility: &self.visibility,
        }
    }

    /// A tenant with default session rules.
    pub fn of_tenant(tenant: &str, clock: std::sync::Arc<dyn Clock>) -> Scope {
        Scope {
            tenant: tenant.to_string(),
            patient: None,
            agent: None,
            visibility: Visibility::Open,
            sessions: std::sync::Arc::new(SessionSettings::default()),
            clock,
        }
    }
}

/// A write inside an open database transaction: the tenant, the session rules and the
/// time of the write (read in the transaction).
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub tenant: &'a str,
    pub sessions: &'a SessionSettings,
    pub now: i64,
    /// Whether references are checked as each resource is written; a transaction Bundle
    /// checks them once all its entries are written (they may reference each other in
    /// any order).
    pub check_references: bool,
    /// Who writes: a client, or the server making a move of its own.
    pub actor: Actor,
    /// A patient-context client: what it writes, and what it changes, must be in this
    /// patient's compartment.
    pub patient: Option<&'a str>,
    /// Who writes: each change is recorded in the audit trail in its transaction.
    pub agent: Option<&'a crate::audit::Agent>,
    /// What the writer may see: conditional matches, reference checks and the holder of
    /// an identifier are looked up within it.
    pub visibility: &'a Visibility,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStatus {
    /// A new resource (201).
    Created,
    /// A new version of an existing resource (200).
    Updated,
    /// A conditional create found its match; nothing was written (200).
    Existing,
    /// The resource is now deleted (a delete version was written).
    Deleted,
    /// Nothing to do (deleting what is already deleted).
    Unchanged,
}

/// The result of a write: the version that is now current.
#[derive(Debug, Clone)]
pub struct Written {
    pub status: WriteStatus,
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated: i64,
    /// Canonical JSON of the current version (`None` when deleted).
    pub body: Option<String>,
}

/// Applies the profiles' rules and the server's part of a Subscription: the resource to
/// store (generated elements included: they are indexed too).
fn prepare(conn: &mut AnyConnection, i: &Insert<'_>) -> Result<ParsedResource, ApiError> {
    let mut resource = i.parsed.clone();
    let resource_type = resource.resource_type().to_string();
    // Only a resource that claims a profile (or whose stored version did) reads the
    // stored version and its references.
    if fhir_mapping::hep::claims_a_profile(&resource_type, resource.json())
        || i.current
            .is_some_and(|c| fhir_mapping::hep::claims_a_profile(&resource_type, c))
    {
        apply_profile_rules(conn, i, &resource_type, resource.json_mut())?;
    }
    if resource_type == "QuestionnaireResponse" {
        crate::outcomes::check_response(conn, i.tenant, resource.json())?;
    }
    if resource_type == "Subscription" {
        crate::subscriptions::outbox::prepare(
            i.tenant,
            resource.json_mut(),
            i.agent,
            &i.sessions.endpoints,
        )?;
    }
    Ok(resource)
}

/// The rules of the project's profiles, with the stored version being replaced and
/// what the resource references as stored in this transaction (a program's
/// prescriptions).
fn apply_profile_rules(
    conn: &mut AnyConnection,
    i: &Insert<'_>,
    resource_type: &str,
    json: &mut JsonObject,
) -> Result<(), ApiError> {
    let current = i.current;
    let mut failure: Option<crate::db::DbError> = None;
    let mut lookup = |reference: &str| -> Option<JsonObject> {
        let ReferenceTarget::Local {
            resource_type,
            id,
            version: None,
        } = classify_reference(reference)
        else {
            return None;
        };
        let key = Key {
            tenant: i.tenant,
            res_type: &resource_type,
            res_id: &id,
        };
        match seen(conn, i.tenant, i.visibility, &resource_type, &id) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                failure = Some(e);
                return None;
            }
        }
        match store::current(conn, key) {
            Ok(found) => found
                .filter(|c| !c.deleted)
                .and_then(|c| c.body)
                .and_then(|b| serde_json::from_str(&b).ok()),
            Err(e) => {
                failure = Some(e.into());
                None
            }
        }
    };
    let now = instant_string(i.now);
    let rules =
        fhir_mapping::hep::apply_rules(resource_type, json, current, &mut lookup, &now, i.actor);
    if let Some(e) = failure {
        return Err(e.into());
    }
    rules.map_err(ApiError::Unprocessable)
}

/// Every relative reference must resolve to a live resource of the same tenant that
/// the writer may see; a reference to the resource itself resolves to the version being
/// written (as it does inside a transaction).
fn check_references(
    conn: &mut AnyConnection,
    tenant: &str,
    visibility: &Visibility,
    (res_type, res_id): (&str, &str),
    json: &JsonObject,
) -> Result<(), ApiError> {
    let found = find_references(res_type, json)
        .into_iter()
        .filter(|f| {
            !matches!(classify_reference(&f.reference),
                ReferenceTarget::Local { resource_type, id, version: None }
                    if resource_type == res_type && id == res_id)
        })
        .collect();
    check_found_references(conn, tenant, visibility, found)
}

/// Every one of `found` (references of a resource, with their locations) that is
/// relative must resolve to a live resource of the tenant (or the version it names)
/// that the writer may see: a reference to a resource it may not read answers as one
/// to a resource that does not exist.
pub fn check_found_references(
    conn: &mut AnyConnection,
    tenant: &str,
    visibility: &Visibility,
    found: Vec<fhir_mapping::references::FoundReference>,
) -> Result<(), ApiError> {
    let mut issues = Vec::new();
    for found in found {
        match classify_reference(&found.reference) {
            ReferenceTarget::Local {
                resource_type,
                id,
                version,
            } => {
                let key = Key {
                    tenant,
                    res_type: &resource_type,
                    res_id: &id,
                };
                let ok = match version {
                    None => store::exists(conn, key)?,
                    Some(v) => match v.parse::<i64>() {
                        Ok(v) => store::version(conn, key, v)?.is_some_and(|r| r.body.is_some()),
                        Err(_) => false,
                    },
                } && seen(conn, tenant, visibility, &resource_type, &id)?;
                if !ok {
                    issues.push(
                        Issue::error(
                            IssueType::NotFound,
                            format!(
                                "reference `{}` does not resolve on this server",
                                found.reference
                            ),
                        )
                        .at(found.path),
                    );
                }
            }
            ReferenceTarget::Invalid(r) => issues.push(
                Issue::error(IssueType::Value, format!("`{r}` is not a valid reference"))
                    .at(found.path),
            ),
            ReferenceTarget::Contained(_) | ReferenceTarget::External(_) => {}
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(issues))
    }
}

/// Matches of `search` among what the writer may see (at most two: enough to tell
/// none, one and many apart). The writer's limits are conditions of the same SQL, as
/// for its searches: a resource it may not read is never a match.
pub fn matches(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    res_type: &str,
    search: &Search,
) -> Result<Vec<store::MatchRow>, ApiError> {
    if search.conditions.is_empty() {
        return Err(ApiError::BadRequest(
            "conditional interactions need at least one search parameter".into(),
        ));
    }
    let Some(limits) = ctx.visibility.limits(res_type) else {
        return Ok(Vec::new());
    };
    let mut conditions = search.conditions.clone();
    conditions.extend(limits.conditions);
    Ok(store::search(
        conn,
        &SearchQuery::new(ctx.tenant, res_type, &conditions, 2),
    )?)
}

/// The key under which a conditional create claims its criteria: a patient-context
/// writer's claims are its own (another patient's claim of the same criteria must not
/// show as a conflict).
fn claim_of(ctx: Ctx<'_>, search: &Search) -> String {
    let criteria = normal_form(&search.applied);
    match ctx.patient {
        Some(p) => format!("Patient/{p}?{criteria}"),
        None => criteria,
    }
}

struct Insert<'a> {
    tenant: &'a str,
    sessions: &'a SessionSettings,
    parsed: &'a ParsedResource,
    id: &'a str,
    previous: Option<i64>,
    /// The stored JSON of the version replaced (an update of a live resource).
    current: Option<&'a JsonObject>,
    now: i64,
    method: &'static str,
    check_references: bool,
    actor: Actor,
    patient: Option<&'a str>,
    agent: Option<&'a crate::audit::Agent>,
    visibility: &'a Visibility,
}

/// The patient of a patient-context client when `json` lies outside its compartment.
fn outside_compartment<'p>(
    patient: Option<&'p str>,
    res_type: &str,
    id: &str,
    json: &JsonObject,
) -> Option<&'p str> {
    patient.filter(|p| !fhir_mapping::search_params::in_patient_compartment(res_type, id, json, p))
}

/// A 403 unless a patient-context client's write stays in its patient's compartment.
fn check_compartment(
    patient: Option<&str>,
    res_type: &str,
    id: &str,
    json: &JsonObject,
) -> Result<(), ApiError> {
    match outside_compartment(patient, res_type, id, json) {
        Some(p) => Err(ApiError::Forbidden(format!(
            "a patient-context token writes only resources of its patient (Patient/{p})"
        ))),
        None => Ok(()),
    }
}

/// A 404, as for a resource that does not exist, when a patient-context client acts on
/// a resource of another patient: nothing of another patient shows by any route.
fn hidden_outside_compartment(
    patient: Option<&str>,
    res_type: &str,
    id: &str,
    json: &JsonObject,
) -> Result<(), ApiError> {
    match outside_compartment(patient, res_type, id, json) {
        Some(_) => Err(ApiError::NotFound(format!(
            "{res_type}/{id} does not exist"
        ))),
        None => Ok(()),
    }
}

fn insert(conn: &mut AnyConnection, i: Insert<'_>) -> Result<Written, ApiError> {
    if let Some(current) = i.current {
        hidden_outside_compartment(i.patient, i.parsed.resource_type(), i.id, current)?;
    }
    check_compartment(i.patient, i.parsed.resource_type(), i.id, i.parsed.json())?;
    crate::monitoring::check_patient_write(
        i.patient,
        i.parsed.resource_type(),
        i.parsed.json(),
        i.current,
    )?;
    let mut prepared = prepare(conn, &i)?;
    let res_type = i.parsed.resource_type();
    // references already checked for the version replaced need no new check
    let same_references = i.current.is_some_and(|old| {
        let refs = |j: &JsonObject| {
            let mut r: Vec<String> = find_references(res_type, j)
                .into_iter()
                .map(|f| f.reference)
                .collect();
            r.sort();
            r
        };
        refs(old) == refs(prepared.json())
    });
    if i.check_references && !same_references {
        check_references(
            conn,
            i.tenant,
            i.visibility,
            (res_type, i.id),
            prepared.json(),
        )?;
    }
    let mut unique = |conn: &mut AnyConnection, new: &[Token<'_>], old: Option<&[Token<'_>]>| {
        check_unique_identifiers(conn, &i, new, old)
    };
    let committed = commit(
        conn,
        Change {
            tenant: i.tenant,
            res_type,
            id: i.id,
            previous: i.previous,
            before: i.current,
            after: Some(prepared.json_mut()),
            method: i.method,
            author: Author::Client(i.agent),
            now: i.now,
            check: Some(&mut unique),
        },
    )?;
    let after: Option<&JsonObject> = Some(prepared.json());
    if fhir_mapping::hep::claims_a_profile(res_type, i.parsed.json())
        || i.current
            .is_some_and(|c| fhir_mapping::hep::claims_a_profile(res_type, c))
    {
        sessions::after_write(
            conn, i.tenant, res_type, i.id, i.current, after, i.sessions, i.now,
        )?;
        if res_type == "CarePlan" {
            crate::referrals::after_program_write(
                conn, i.tenant, i.id, i.current, after, i.sessions, i.now,
            )?;
        }
    }
    if matches!(res_type, "CarePlan" | "QuestionnaireResponse") {
        crate::outcomes::after_write(
            conn, i.tenant, res_type, i.id, i.current, after, i.sessions, i.now,
        )?;
    }
    if crate::monitoring::concerns(res_type) {
        crate::monitoring::after_write(conn, i.tenant, res_type, i.id, i.current, after)?;
    }
    Ok(Written {
        status: WriteStatus::Created,
        res_type: res_type.to_string(),
        id: i.id.to_string(),
        version: committed.version,
        last_updated: i.now,
        body: committed.body,
    })
}

/// Identifiers of patients, referrals and Tasks are unique in a tenant: a clear 409
/// when another resource holds one (the unique index behind it settles races), which
/// names the holder only when the writer may see it.
///
/// A patient-context client gives none of these resources an identifier it did not
/// have: whether an identifier is free would tell it that another patient's resource
/// holds it, so it is refused whatever the answer would be. Identifiers are the
/// business identifiers of the clinic's systems.
fn check_unique_identifiers(
    conn: &mut AnyConnection,
    i: &Insert<'_>,
    tokens: &[Token<'_>],
    previous: Option<&[Token<'_>]>,
) -> Result<(), ApiError> {
    let res_type = i.parsed.resource_type();
    if !intake::UNIQUE_IDENTIFIER_TYPES.contains(&res_type) {
        return Ok(());
    }
    let identifiers = tokens.iter().filter(|t| t.param == "identifier");
    if i.patient.is_some() {
        let kept = |t: &Token<'_>| {
            previous.is_some_and(|p| {
                p.iter()
                    .any(|o| o.param == "identifier" && o.system == t.system && o.code == t.code)
            })
        };
        if let Some(t) = identifiers.clone().find(|t| !kept(t)) {
            return Err(ApiError::Forbidden(format!(
                "a patient-context token cannot give a {res_type} a new identifier (`{}|{}`): identifiers of {res_type} are assigned by the clinic's systems",
                t.system, t.code
            )));
        }
        return Ok(());
    }
    for t in identifiers {
        if let Some(other) =
            intake::identifier_holder(conn, i.tenant, res_type, i.id, t.system, t.code)?
        {
            let holder = if seen(conn, i.tenant, i.visibility, res_type, &other)? {
                format!("{res_type}/{other}")
            } else {
                format!("another {res_type}")
            };
            return Err(ApiError::Conflict(format!(
                "{holder} already has the identifier `{}|{}`; identifiers of {res_type} are unique (use a conditional create to push the same resource again)",
                t.system, t.code
            )));
        }
    }
    Ok(())
}

pub fn existing(res_type: &str, m: store::MatchRow) -> Written {
    Written {
        status: WriteStatus::Existing,
        res_type: res_type.to_string(),
        id: m.res_id,
        version: m.version,
        last_updated: m.last_updated,
        body: m.body,
    }
}

/// `POST [type]`, with `If-None-Exist` when `if_none_exist` is given. With an
/// idempotency key, a request sent again gets the first answer (`replayed`).
pub fn create(
    db: &Db,
    scope: Scope,
    parsed: ParsedResource,
    id: String,
    if_none_exist: Option<Search>,
    idempotency: Option<Idempotency>,
) -> Result<(Written, bool), ApiError> {
    db.write(move |conn| {
        // the time of the write is read in its transaction: see `Db::write`
        let ctx = scope.ctx(true);
        // what the request may write is settled before a stored answer is replayed
        check_compartment(ctx.patient, parsed.resource_type(), &id, parsed.json())?;
        let answered = idempotent(
            conn,
            ctx,
            idempotency.as_ref(),
            |conn| create_in(conn, ctx, &parsed, &id, if_none_exist.as_ref(), false),
            record_write,
        )?;
        Ok(match answered {
            Answered::Fresh(w) => (w, false),
            Answered::Replayed(a) => (written_of(a, WriteStatus::Existing), true),
        })
    })
}

/// What an idempotency key keeps of a write's answer: its status (201 for a resource
/// made, else 200), the resource and its body.
fn record_write(w: &Written) -> (i32, Option<&Written>, Option<String>) {
    let status = if w.status == WriteStatus::Created {
        201
    } else {
        200
    };
    (status, Some(w), w.body.clone())
}

/// An `Idempotency-Key` header and a fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    /// Method, path and a digest of the body: the same key with another request is
    /// refused.
    pub fingerprint: String,
}

/// The answer of an idempotent request: made now, or the stored first answer.
pub enum Answered<T> {
    Fresh(T),
    Replayed(intake::StoredAnswer),
}

/// Runs `run` in the open transaction unless `idempotency`'s key already has an answer;
/// the answer of `run` (`record`: HTTP status, the resource written, the body) is
/// stored in the same transaction, so a retry racing the first request gets its answer.
pub fn idempotent<T>(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    idempotency: Option<&Idempotency>,
    run: impl FnOnce(&mut AnyConnection) -> Result<T, ApiError>,
    record: impl FnOnce(&T) -> (i32, Option<&Written>, Option<String>),
) -> Result<Answered<T>, ApiError> {
    let Some(idem) = idempotency else {
        return run(conn).map(Answered::Fresh);
    };
    if let Some(stored) = earlier_answer(conn, ctx, idem)? {
        return Ok(Answered::Replayed(same_request(stored, idem)?));
    }
    let key = scoped_key(ctx, &idem.key);
    let result = match run(conn) {
        Ok(r) => r,
        Err(ApiError::Conflict(e)) => {
            // the same request on another connection committed meanwhile (PostgreSQL
            // reads each statement's latest commits): its answer is this one's
            if let Some(stored) = earlier_answer(conn, ctx, idem)? {
                return Ok(Answered::Replayed(same_request(stored, idem)?));
            }
            return Err(ApiError::Conflict(e));
        }
        Err(e) => return Err(e),
    };
    let (status, written, body) = record(&result);
    intake::store_answer(
        conn,
        &intake::StoredAnswer {
            tenant: ctx.tenant.to_string(),
            idem_key: key,
            fingerprint: idem.fingerprint.clone(),
            status,
            res_type: written.map(|w| w.res_type.clone()),
            res_id: written.map(|w| w.id.clone()),
            version: written.map(|w| w.version),
            last_updated: written.map(|w| w.last_updated),
            body,
            created_at: ctx.now,
        },
    )?;
    Ok(Answered::Fresh(result))
}

/// The answer stored for `idem`'s key by this sender within the retention, if any: a
/// request already made. Read before the request is worked out by a request that
/// starts from the current version (a `PATCH`), then again in its write transaction.
pub fn earlier_answer(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    idem: &Idempotency,
) -> diesel::QueryResult<Option<intake::StoredAnswer>> {
    intake::answer(conn, ctx.tenant, &scoped_key(ctx, &idem.key), ctx.now)
}

/// The stored answer of `idem`'s key, when the key came with this same request; 422
/// when it came with another.
pub fn same_request(
    stored: intake::StoredAnswer,
    idem: &Idempotency,
) -> Result<intake::StoredAnswer, ApiError> {
    if stored.fingerprint != idem.fingerprint {
        return Err(ApiError::Unprocessable(vec![Issue::error(
            IssueType::BusinessRule,
            "this Idempotency-Key was sent with a different request; use a new key for a new request",
        )]));
    }
    Ok(stored)
}

/// An idempotency key as stored: the key of one sender (the client, and the patient in
/// context), so that another client, or the same client for another patient, neither
/// replays the answer nor learns that the key is in use.
fn scoped_key(ctx: Ctx<'_>, key: &str) -> String {
    let (client, patient) = ctx.agent.map_or(("", ""), |a| {
        (a.client.as_str(), a.patient.as_deref().unwrap_or(""))
    });
    format!("{client}\u{1f}{patient}\u{1f}{key}")
}

/// The write a stored answer recorded; `ok` is what its 200 meant (a conditional
/// create's match, or an update).
pub fn written_of(a: intake::StoredAnswer, ok: WriteStatus) -> Written {
    Written {
        status: if a.status == 201 {
            WriteStatus::Created
        } else {
            ok
        },
        res_type: a.res_type.unwrap_or_default(),
        id: a.res_id.unwrap_or_default(),
        version: a.version.unwrap_or_default(),
        last_updated: a.last_updated.unwrap_or_default(),
        body: a.body,
    }
}

/// A create (conditional when `if_none_exist` is given) in an open transaction.
/// `searched`: the criteria were searched earlier in this transaction and matched
/// nothing (a transaction Bundle settles its ids first), so they are not searched
/// again; the claim on the criteria still settles races.
pub fn create_in(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    parsed: &ParsedResource,
    id: &str,
    if_none_exist: Option<&Search>,
    searched: bool,
) -> Result<Written, ApiError> {
    let res_type = parsed.resource_type();
    if let Some(search) = if_none_exist.filter(|_| !searched) {
        let mut found = matches(conn, ctx, res_type, search)?;
        match found.len() {
            0 => {}
            1 => return Ok(existing(res_type, found.remove(0))),
            _ => {
                return Err(ApiError::PreconditionFailed(
                    "the If-None-Exist criteria match more than one resource".into(),
                ));
            }
        }
    }
    let written = insert(
        conn,
        Insert {
            tenant: ctx.tenant,
            sessions: ctx.sessions,
            parsed,
            id,
            previous: None,
            current: None,
            now: ctx.now,
            method: "POST",
            check_references: ctx.check_references,
            actor: ctx.actor,
            patient: ctx.patient,
            agent: ctx.agent,
            visibility: ctx.visibility,
        },
    );
    let written = match (written, if_none_exist) {
        // a concurrent create of the same resource committed after the search above
        // (PostgreSQL, read committed): run again, the search then finds it
        (Err(ApiError::Conflict(m)), Some(search)) => {
            return Err(if matches(conn, ctx, res_type, search)?.is_empty() {
                ApiError::Conflict(m)
            } else {
                ApiError::Retry
            });
        }
        (w, _) => w?,
    };
    if let Some(search) = if_none_exist {
        let key = Key {
            tenant: ctx.tenant,
            res_type,
            res_id: id,
        };
        store::claim_criteria(conn, key, &claim_of(ctx, search))?;
    }
    Ok(written)
}

/// `PUT [type]/[id]` (update, or create with the client's id), and the write of a
/// `PATCH`. With an idempotency key, a request sent again gets the first answer
/// (`replayed`) whatever was written since, so a retried completion is not a second one.
pub fn update(
    db: &Db,
    scope: Scope,
    parsed: ParsedResource,
    id: String,
    if_match: Option<i64>,
    idempotency: Option<Idempotency>,
) -> Result<(Written, bool), ApiError> {
    db.write(move |conn| {
        // the time of the write is read in its transaction: see `Db::write`
        let ctx = scope.ctx(true);
        if idempotency.is_some() {
            // what the request may write is settled before a stored answer is replayed
            check_compartment(ctx.patient, parsed.resource_type(), &id, parsed.json())?;
        }
        let answered = idempotent(
            conn,
            ctx,
            idempotency.as_ref(),
            |conn| update_in(conn, ctx, &parsed, &id, if_match),
            record_write,
        )?;
        Ok(match answered {
            Answered::Fresh(w) => (w, false),
            Answered::Replayed(a) => (written_of(a, WriteStatus::Updated), true),
        })
    })
}

/// An update (or create with the client's id) in an open transaction.
pub fn update_in(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    parsed: &ParsedResource,
    id: &str,
    if_match: Option<i64>,
) -> Result<Written, ApiError> {
    let key = Key {
        tenant: ctx.tenant,
        res_type: parsed.resource_type(),
        res_id: id,
    };
    if ctx.patient.is_some() && !seen(conn, ctx.tenant, ctx.visibility, key.res_type, id)? {
        // a patient-context client sees nothing outside its compartment, not even a
        // version number or whether the id is taken: it updates what it can read and
        // creates with POST, and every other id answers alike
        return Err(ApiError::NotFound(format!(
            "{}/{id} does not exist (a patient-context token updates resources it can read, and creates with POST)",
            parsed.resource_type()
        )));
    }
    let current = store::current(conn, key)?;
    match (&current, if_match) {
        (None, Some(_)) => {
            return Err(ApiError::PreconditionFailed(
                "If-Match was given but the resource does not exist".into(),
            ));
        }
        (Some(c), Some(v)) if c.version != v => {
            return Err(ApiError::PreconditionFailed(format!(
                "If-Match names version {v} but the current version is {}",
                c.version
            )));
        }
        _ => {}
    }
    let current_json: Option<JsonObject> = current
        .as_ref()
        .filter(|c| !c.deleted)
        .and_then(|c| c.body.as_deref())
        .and_then(|b| serde_json::from_str(b).ok());
    let mut written = insert(
        conn,
        Insert {
            tenant: ctx.tenant,
            sessions: ctx.sessions,
            parsed,
            id,
            previous: current.as_ref().map(|c| c.version),
            current: current_json.as_ref(),
            now: ctx.now,
            method: "PUT",
            check_references: ctx.check_references,
            actor: ctx.actor,
            patient: ctx.patient,
            agent: ctx.agent,
            visibility: ctx.visibility,
        },
    )?;
    written.status = match current {
        Some(c) if !c.deleted => WriteStatus::Updated,
        _ => WriteStatus::Created,
    };
    Ok(written)
}

/// How the server writes its own content at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    /// Rewritten when its content (`meta` aside) changed: the project's definitions.
    Current,
    /// Written once, never over a clinic's edits or deletions: the starter library.
    Once,
}

/// Stores the server's own resource `parsed` under `id`, as `policy` says.
pub fn seed(
    db: &Db,
    scope: Scope,
    parsed: ParsedResource,
    id: String,
    policy: Seed,
) -> Result<Option<Written>, ApiError> {
    db.write(move |conn| {
        // the time of the write is read in its transaction: see `Db::write`
        let ctx = scope.ctx(true);
        let key = Key {
            tenant: ctx.tenant,
            res_type: parsed.resource_type(),
            res_id: &id,
        };
        let current = store::current(conn, key)?;
        let keep = match policy {
            Seed::Once => current.is_some(),
            Seed::Current => {
                let without_meta = |mut m: JsonObject| {
                    m.shift_remove("meta");
                    m
                };
                let stored: Option<JsonObject> = current
                    .filter(|c| !c.deleted)
                    .and_then(|c| c.body)
                    .and_then(|b| serde_json::from_str(&b).ok());
                let mut wanted = parsed.clone();
                wanted.set_id(&id);
                stored.map(without_meta) == Some(without_meta(wanted.json().clone()))
            }
        };
        if keep {
            return Ok(None);
        }
        update_in(conn, ctx, &parsed, &id, None).map(Some)
    })
}

/// `PUT [type]?criteria`: update the one match, or create when there is none.
pub fn conditional_update(
    db: &Db,
    scope: Scope,
    parsed: ParsedResource,
    new_id: String,
    search: Search,
    if_match: Option<i64>,
) -> Result<Written, ApiError> {
    db.write(move |conn| {
        // the time of the write is read in its transaction: see `Db::write`
        let ctx = scope.ctx(true);
        conditional_update_in(conn, ctx, &parsed, &new_id, &search, if_match)
    })
}

/// A conditional update in an open transaction.
pub fn conditional_update_in(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    parsed: &ParsedResource,
    new_id: &str,
    search: &Search,
    if_match: Option<i64>,
) -> Result<Written, ApiError> {
    let tenant = ctx.tenant;
    let res_type = parsed.resource_type();
    let found = matches(conn, ctx, res_type, search)?;
    match found.as_slice() {
        [] => match parsed.id() {
            // a patient-context client learns nothing of an id it cannot see
            Some(id) if ctx.patient.is_some() => update_in(conn, ctx, parsed, id, if_match),
            Some(id) => {
                let key = Key {
                    tenant,
                    res_type,
                    res_id: id,
                };
                if store::current(conn, key)?.is_some_and(|c| !c.deleted) {
                    return Err(ApiError::Conflict(format!(
                        "{res_type}/{id} exists but does not match the criteria"
                    )));
                }
                update_in(conn, ctx, parsed, id, if_match)
            }
            None => {
                let written = insert(
                    conn,
                    Insert {
                        tenant,
                        sessions: ctx.sessions,
                        parsed,
                        id: new_id,
                        previous: None,
                        current: None,
                        now: ctx.now,
                        method: "PUT",
                        check_references: ctx.check_references,
                        actor: ctx.actor,
                        patient: ctx.patient,
                        agent: ctx.agent,
                        visibility: ctx.visibility,
                    },
                )?;
                let key = Key {
                    tenant,
                    res_type,
                    res_id: new_id,
                };
                store::claim_criteria(conn, key, &claim_of(ctx, search))?;
                Ok(written)
            }
        },
        [one] => {
            if let Some(id) = parsed.id()
                && id != one.res_id
            {
                return Err(ApiError::BadRequest(format!(
                    "the resource id `{id}` differs from the id of the match `{}`",
                    one.res_id
                )));
            }
            update_in(conn, ctx, parsed, &one.res_id.clone(), if_match)
        }
        _ => Err(ApiError::PreconditionFailed(
            "the criteria match more than one resource".into(),
        )),
    }
}

/// The write `$validate` asks about (R4 `Resource-validate`, its `mode`).
#[derive(Debug)]
pub enum Trial {
    /// `mode=create` (the default): the resource as a create would store it.
    Create(ParsedResource),
    /// `mode=update`: the resource as an update of `[type]/[id]`.
    Update(ParsedResource, String),
    /// `mode=delete`: the delete of `[type]/[id]`.
    Delete(String, String),
}

/// `$validate`: the write runs as it would (the profiles' rules, references,
/// compartments, unique identifiers, the stored version it would replace) in a savepoint
/// that is always rolled back. The problems it would answer with, or none.
pub fn validate_write(db: &Db, scope: Scope, trial: Trial) -> Result<Vec<Issue>, ApiError> {
    db.write(move |conn| {
        let ctx = scope.ctx(true);
        let ran = crate::db::trial(conn, |c| match &trial {
            Trial::Create(parsed) => {
                let id = crate::db::new_id();
                check_compartment(ctx.patient, parsed.resource_type(), &id, parsed.json())?;
                create_in(c, ctx, parsed, &id, None, false).map(drop)
            }
            Trial::Update(parsed, id) => update_in(c, ctx, parsed, id, None).map(drop),
            Trial::Delete(res_type, id) => delete_in(c, ctx, res_type, id, None).map(drop),
        });
        match ran {
            Ok(()) => Ok(Vec::new()),
            // what the write would answer with as a client's error is the answer
            Err(e) if e.status().is_client_error() => Ok(e.issues()),
            Err(e) => Err(e),
        }
    })
}

/// `DELETE [type]/[id]`.
pub fn delete(
    db: &Db,
    scope: Scope,
    res_type: String,
    id: String,
    if_match: Option<i64>,
) -> Result<Written, ApiError> {
    db.write(move |conn| {
        // the time of the write is read in its transaction: see `Db::write`
        let ctx = scope.ctx(true);
        delete_in(conn, ctx, &res_type, &id, if_match)
    })
}

/// A delete in an open transaction. Deleting what is already deleted changes nothing.
pub fn delete_in(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    res_type: &str,
    id: &str,
    if_match: Option<i64>,
) -> Result<Written, ApiError> {
    let (tenant, now) = (ctx.tenant, ctx.now);
    let key = Key {
        tenant,
        res_type,
        res_id: id,
    };
    let current = store::current(conn, key)?
        .ok_or_else(|| ApiError::NotFound(format!("{res_type}/{id} does not exist")))?;
    if ctx.patient.is_some() {
        // a patient-context client deletes within its compartment and sees nothing
        // outside it, not even a version number: a live resource by the SQL of its
        // reads, a deleted one by the version before its deletion
        let within = if current.deleted {
            let before = store::version(conn, key, current.version - 1)?.and_then(|r| r.body);
            before
                .as_deref()
                .and_then(|b| serde_json::from_str::<JsonObject>(b).ok())
                .is_some_and(|j| outside_compartment(ctx.patient, res_type, id, &j).is_none())
        } else {
            seen(conn, tenant, ctx.visibility, res_type, id)?
        };
        if !within {
            return Err(ApiError::NotFound(format!(
                "{res_type}/{id} does not exist"
            )));
        }
    }
    if let Some(v) = if_match
        && v != current.version
    {
        return Err(ApiError::PreconditionFailed(format!(
            "If-Match names version {v} but the current version is {}",
            current.version
        )));
    }
    let mut written = Written {
        status: WriteStatus::Unchanged,
        res_type: res_type.to_string(),
        id: id.to_string(),
        version: current.version,
        last_updated: current.last_updated,
        body: None,
    };
    if current.deleted {
        return Ok(written);
    }
    // the stored JSON is read only when the audit trail or a profile's effects need it
    let before: Option<JsonObject> = current
        .body
        .as_deref()
        .filter(|b| ctx.agent.is_some() || b.contains(fhir_mapping::hep::CANONICAL_BASE))
        .and_then(|b| serde_json::from_str::<JsonObject>(b).ok());
    if let Some(b) = &before {
        crate::monitoring::check_patient_write(ctx.patient, res_type, b, Some(b))?;
    }
    let committed = commit(
        conn,
        Change {
            tenant,
            res_type,
            id,
            previous: Some(current.version),
            before: before.as_ref(),
            after: None,
            method: "DELETE",
            author: Author::Client(ctx.agent),
            now,
            check: None,
        },
    )?;
    let version = committed.version;
    if before
        .as_ref()
        .is_some_and(|b| fhir_mapping::hep::claims_a_profile(res_type, b))
    {
        sessions::after_write(
            conn,
            tenant,
            res_type,
            id,
            before.as_ref(),
            None,
            ctx.sessions,
            now,
        )?;
    }
    if matches!(res_type, "CarePlan" | "QuestionnaireResponse") {
        crate::outcomes::after_write(
            conn,
            tenant,
            res_type,
            id,
            before.as_ref(),
            None,
            ctx.sessions,
            now,
        )?;
    }
    if crate::monitoring::concerns(res_type) {
        crate::monitoring::after_write(conn, tenant, res_type, id, before.as_ref(), None)?;
    }
    written.status = WriteStatus::Deleted;
    written.version = version;
    written.last_updated = now;
    Ok(written)
}

/// `DELETE [type]?criteria`: deletes the one match; no match changes nothing; several
/// matches are refused (412).
pub fn conditional_delete_in(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    res_type: &str,
    search: &Search,
) -> Result<Written, ApiError> {
    let found = matches(conn, ctx, res_type, search)?;
    match found.as_slice() {
        [] => Ok(Written {
            status: WriteStatus::Unchanged,
            res_type: res_type.to_string(),
            id: String::new(),
            version: 0,
            last_updated: ctx.now,
            body: None,
        }),
        [one] => delete_in(conn, ctx, res_type, &one.res_id.clone(), None),
        _ => Err(ApiError::PreconditionFailed(
            "the criteria match more than one resource".into(),
        )),
    }
}

/// Creates a resource the server built itself, with the same validation and rules as a
/// client's create.
pub(crate) fn create_own(
    conn: &mut AnyConnection,
    tenant: &str,
    sessions: &SessionSettings,
    json: &serde_json::Value,
    limits: &fhir_mapping::ParseLimits,
    now: i64,
) -> Result<Written, ApiError> {
    let bytes =
        serde_json::to_vec(json).map_err(|e| ApiError::internal_from("serialising JSON", e))?;
    let parsed = fhir_mapping::parse_resource(&bytes, fhir_mapping::Format::Json, limits)
        .map_err(ApiError::Invalid)?;
    let id = crate::db::new_id();
    insert(
        conn,
        Insert {
            tenant,
            sessions,
            parsed: &parsed,
            id: &id,
            previous: None,
            current: None,
            now,
            method: "POST",
            check_references: true,
            actor: Actor::Server,
            patient: None,
            agent: None,
            visibility: &Visibility::Open,
        },
    )
}
