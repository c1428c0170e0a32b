//! The one writer of resource versions. Every change of the store (a client's write,
//! and the server's own: sessions, missed sessions, summaries, referral moves, a
//! subscription's status) is described by one [`Change`] and written by [`commit`]:
//! id and meta stamped, the JSON serialised, the search values extracted, the version
//! written (only the index rows that change when the version replaced is known), the
//! client's change recorded in the audit trail, and the subscription outbox run, all in
//! the caller's transaction.
//!
//! What a write means (profiles, conditional matches, references, compartments) is
//! decided above, in `service`; what it causes (sessions, referral moves) runs after,
//! in the effects' modules, which write through here too.

use fhir_mapping::search_params::{DateValue, TokenValue, date_values, patient_of, token_values};
use serde_json::Value;

use crate::audit::Agent;
use crate::clock::instant_string;
use crate::db::audit::AuditRow;
use crate::db::store::{self, Key, NewVersion, Token, WriteResult};
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;
use crate::subscriptions::outbox;

type JsonObject = serde_json::Map<String, Value>;

/// Who makes a change.
#[derive(Debug, Clone, Copy)]
pub enum Author<'a> {
    /// A client (its agent, when known, is recorded in the audit trail; a Subscription
    /// it writes gets its delivery row). The server's seeding of a clinic writes as a
    /// client without agent.
    Client(Option<&'a Agent>),
    /// A move the server makes of its own: not in the audit trail, and a Subscription
    /// it writes (its status) keeps its delivery row as it is.
    Server,
}

/// A check of the search values of the new version (and of those stored for the
/// version replaced, when known) before it is written: identifiers that must be unique.
pub type IndexCheck<'c> =
    dyn FnMut(&mut AnyConnection, &[Token<'_>], Option<&[Token<'_>]>) -> Result<(), ApiError> + 'c;

/// One change of one resource.
pub struct Change<'a> {
    pub tenant: &'a str,
    pub res_type: &'a str,
    pub id: &'a str,
    /// The version replaced (`None`: the resource has no version yet).
    pub previous: Option<i64>,
    /// The stored JSON of the version replaced, when it is live and the caller has it:
    /// only the index rows that differ are then rewritten, and the topics that follow a
    /// change (a status) compare with it.
    pub before: Option<&'a JsonObject>,
    /// The new content (`None`: a delete). Its `id` and `meta` are stamped here.
    pub after: Option<&'a mut JsonObject>,
    /// The interaction recorded in the history (`POST`, `PUT`, `DELETE`).
    pub method: &'static str,
    pub author: Author<'a>,
    /// The time of the write, read in its transaction.
    pub now: i64,
    /// Checked after the search values are extracted, before anything is written.
    pub check: Option<&'a mut IndexCheck<'a>>,
}

/// The version a change wrote.
#[derive(Debug, Clone)]
pub struct Committed {
    pub version: i64,
    /// The stored JSON (`None` for a delete).
    pub body: Option<String>,
}

/// Writes `change` as the next version of its resource, in the open transaction. A
/// version written meanwhile by another transaction is a [`ApiError::Retry`].
pub fn commit(conn: &mut AnyConnection, change: Change<'_>) -> Result<Committed, ApiError> {
    let Change {
        tenant,
        res_type,
        id,
        previous,
        before,
        after,
        method,
        author,
        now,
        check,
    } = change;
    let version = previous.map_or(1, |p| p + 1);
    let after: Option<&JsonObject> = match after {
        Some(json) => {
            stamp(json, id, version, now);
            Some(json)
        }
        None => None,
    };
    let body = after
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| ApiError::internal_from("serialising a resource", e))?;
    let values: Vec<TokenValue> = after.map_or_else(Vec::new, |a| token_values(res_type, a));
    let tokens = Token::all(&values);
    let dates: Vec<DateValue> = after.map_or_else(Vec::new, |a| date_values(res_type, a));
    // the rows stored for the version replaced: only those that change are rewritten
    let previous_values = before.map(|b| token_values(res_type, b));
    let previous_tokens = previous_values.as_deref().map(Token::all);
    let previous_dates = before.map(|b| date_values(res_type, b));
    if let Some(check) = check {
        check(conn, &tokens, previous_tokens.as_deref())?;
    }
    let written = store::write_version(
        conn,
        &NewVersion {
            key: Key {
                tenant,
                res_type,
                res_id: id,
            },
            previous,
            version,
            last_updated: now,
            method,
            body: body.as_deref(),
            tokens: &tokens,
            previous_tokens: if after.is_some() {
                previous_tokens.as_deref()
            } else {
                None
            },
            dates: &dates,
            previous_dates: if after.is_some() {
                previous_dates.as_deref()
            } else {
                None
            },
        },
    )?;
    if written == WriteResult::Conflict {
        return Err(ApiError::Retry);
    }
    if let Author::Client(Some(agent)) = author {
        let (action, subtype) = match (previous, after) {
            (_, None) => ("D", "delete"),
            (None, Some(_)) => ("C", "create"),
            (Some(_), Some(_)) => ("U", "update"),
        };
        let patient = after
            .or(before)
            .and_then(|json| patient_of(res_type, id, json));
        record_change(
            conn,
            tenant,
            agent,
            (action, subtype),
            (res_type, id, version),
            patient,
            now,
        )?;
    }
    let client = match author {
        Author::Client(agent) => Some(agent),
        Author::Server => None,
    };
    match after {
        Some(after) => outbox::after_write(
            conn,
            tenant,
            res_type,
            id,
            version,
            before,
            Some(after),
            client,
            now,
        )?,
        None => outbox::after_delete(conn, tenant, res_type, id)?,
    }
    Ok(Committed { version, body })
}

/// A resource the server built from its own templates (covered by the mapping crate's
/// tests): no parse, no profile rules, the version replaced checked. The version
/// replaced is read for the types whose topics follow a status change.
pub fn commit_built(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    id: &str,
    previous: Option<i64>,
    json: &mut JsonObject,
    now: i64,
) -> Result<(), ApiError> {
    let before: Option<JsonObject> = match previous {
        Some(_) if matches!(res_type, "Task" | "CarePlan") => store::current(
            conn,
            Key {
                tenant,
                res_type,
                res_id: id,
            },
        )?
        .filter(|c| !c.deleted)
        .and_then(|c| c.body)
        .and_then(|b| serde_json::from_str(&b).ok()),
        _ => None,
    };
    commit(
        conn,
        Change {
            tenant,
            res_type,
            id,
            previous,
            before: before.as_ref(),
            after: Some(json),
            method: if previous.is_some() { "PUT" } else { "POST" },
            author: Author::Server,
            now,
            check: None,
        },
    )?;
    Ok(())
}

/// Sets the id (after `resourceType`, as in every stored resource) and the meta of the
/// new version.
fn stamp(json: &mut JsonObject, id: &str, version: i64, now: i64) {
    json.shift_remove("id");
    json.shift_insert(
        1.min(json.len()),
        "id".into(),
        Value::String(id.to_string()),
    );
    fhir_mapping::codec::stamp_meta(json, &version.to_string(), &instant_string(now));
}

/// Records a client's change in the audit trail, in the transaction of the change.
fn record_change(
    conn: &mut AnyConnection,
    tenant: &str,
    agent: &Agent,
    (action, subtype): (&str, &str),
    (res_type, id, version): (&str, &str, i64),
    patient: Option<String>,
    now: i64,
) -> Result<(), ApiError> {
    crate::db::audit::insert(
        conn,
        &[AuditRow {
            tenant: tenant.to_string(),
            id: crate::db::new_id(),
            recorded: now,
            action: action.into(),
            subtype: subtype.into(),
            outcome: "0".into(),
            status: if subtype == "create" { 201 } else { 200 },
            client: agent.client.clone(),
            address: agent.address.clone(),
            res_type: Some(res_type.to_string()),
            res_id: Some(id.to_string()),
            version: Some(version),
            patient,
            query: None,
        }],
    )?;
    Ok(())
}

/// Rebuilds the search index of every live resource when it was built by a server that
/// extracted search values differently (`search_params::INDEX_VERSION`). Runs at start,
/// in batches; safe to repeat. Returns how many resources were indexed.
pub fn rebuild_search_index(db: &Db) -> Result<usize, ApiError> {
    use fhir_mapping::search_params::INDEX_VERSION;
    const SETTING: &str = "search-index-version";
    let current = db.write(|conn| Ok::<_, ApiError>(store::setting(conn, SETTING)?))?;
    if current.as_deref() == Some(INDEX_VERSION) {
        return Ok(0);
    }
    let mut after: Option<(String, String, String)> = None;
    let mut n = 0;
    loop {
        let from = after.clone();
        let done = db.write(move |conn| {
            let rows = store::live_after(
                conn,
                None,
                from.as_ref()
                    .map(|(t, ty, id)| (t.as_str(), ty.as_str(), id.as_str())),
                500,
            )?;
            for (tenant, res_type, res_id, body) in &rows {
                let json: JsonObject = body
                    .as_deref()
                    .and_then(|b| serde_json::from_str(b).ok())
                    .unwrap_or_default();
                let values = token_values(res_type, &json);
                let tokens: Vec<Token<'_>> = Token::all(&values);
                let key = Key {
                    tenant,
                    res_type,
                    res_id,
                };
                store::replace_tokens(conn, key, &tokens)?;
                store::replace_dates(conn, key, &date_values(res_type, &json))?;
            }
            Ok::<_, ApiError>(
                rows.last()
                    .map(|(t, ty, id, _)| (t.clone(), ty.clone(), id.clone()))
                    .map(|last| (last, rows.len())),
            )
        })?;
        match done {
            Some((last, count)) => {
                n += count;
                after = Some(last);
            }
            None => break,
        }
    }
    db.write(|conn| Ok::<_, ApiError>(store::set_setting(conn, SETTING, INDEX_VERSION)?))?;
    Ok(n)
}
