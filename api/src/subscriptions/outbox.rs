//! The subscription outbox, run by `commit` in the transaction of every write: a
//! client's Subscription keeps its delivery row; a write that triggers a topic appends
//! an event to each matching subscription whose subscriber may read the resource.

use fhir_mapping::subscriptions as topics;
use serde_json::{Map, Value};

use super::{
    DEFAULT_MAX_COUNT, DEFAULT_TIMEOUT_SECS, EndpointPolicy, MAX_COUNT, MAX_TIMEOUT_SECS,
    access_of, subscriber_of,
};
use crate::audit::Agent;
use crate::auth::scopes::Perm;
use crate::db::AnyConnection;
use crate::db::subscriptions::{self as rows, Channel};
use crate::error::ApiError;

type JsonObject = Map<String, Value>;

fn unprocessable(expression: &str, msg: String) -> ApiError {
    ApiError::Unprocessable(vec![
        fhir_mapping::Issue::error(fhir_mapping::IssueType::Value, msg).at(expression),
    ])
}

/// Checks a client's Subscription before it is stored and sets the status the server
/// keeps: `off` when the client turns it off, else `requested` (a handshake follows).
pub fn prepare(
    tenant: &str,
    json: &mut JsonObject,
    agent: Option<&Agent>,
    policy: &EndpointPolicy,
) -> Result<(), ApiError> {
    let spec = topics::read(json).map_err(ApiError::Unprocessable)?;
    policy
        .check(&spec.endpoint)
        .map_err(|m| unprocessable("Subscription.channel.endpoint", m))?;
    let subscriber = subscriber_of(agent);
    let access = access_of(tenant, &subscriber);
    // (a patient-context token cannot write a Subscription: it is outside the
    // patient's compartment, which `service` checks before this)
    access.require(spec.topic.resource_type, Perm::Read)?;
    topics::set_status(json, if spec.off { rows::OFF } else { rows::REQUESTED });
    Ok(())
}

/// What a write does to subscriptions, in its transaction: a client's Subscription
/// keeps its delivery row; a write that triggers a topic appends an event to each
/// matching subscription whose subscriber may read the resource.
#[allow(clippy::too_many_arguments)]
pub fn after_write(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    id: &str,
    version: i64,
    before: Option<&JsonObject>,
    after: Option<&JsonObject>,
    client_write: Option<Option<&Agent>>,
    now: i64,
) -> Result<(), ApiError> {
    if res_type == "Subscription" {
        if let (Some(agent), Some(after)) = (client_write, after) {
            set_up(conn, tenant, id, after, agent, now)?;
        }
        return Ok(());
    }
    let triggered = topics::triggered(res_type, before, after);
    let Some(after) = after else {
        return Ok(());
    };
    for topic in triggered {
        if !rows::any_of_topic(conn, tenant, topic.code)? {
            continue;
        }
        let values = topics::filter_values(topic, res_type, id, after);
        for sub in rows::matching(conn, tenant, topic.code, &values)? {
            let Some(row) = rows::get(conn, tenant, &sub)? else {
                continue;
            };
            let Some(subscriber) = row.subscriber() else {
                continue;
            };
            // a person's subscription ends with their sign-in
            if let Some(g) = &subscriber.grant
                && !crate::db::grants::grant_holds(conn, tenant, g)?
            {
                continue;
            }
            let access = access_of(tenant, &subscriber);
            let Ok(limits) = access.require(res_type, Perm::Read) else {
                continue;
            };
            if !crate::auth::visibility::visible(conn, tenant, res_type, id, &limits)? {
                continue;
            }
            rows::append(
                conn,
                &rows::NewEvent {
                    tenant,
                    subscription: &sub,
                    res_type,
                    res_id: id,
                    version,
                    occurred: now,
                },
            )?;
        }
    }
    Ok(())
}

/// The delivery row of a Subscription a client wrote (its events and position kept).
fn set_up(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    json: &JsonObject,
    agent: Option<&Agent>,
    now: i64,
) -> Result<(), ApiError> {
    let spec = topics::read(json).map_err(ApiError::Unprocessable)?;
    let channel = Channel {
        endpoint: spec.endpoint.clone(),
        headers: spec.headers.clone(),
        content: spec.content.as_str().into(),
        heartbeat_secs: spec.heartbeat_secs,
        timeout_secs: spec
            .timeout_secs
            .unwrap_or(DEFAULT_TIMEOUT_SECS)
            .min(MAX_TIMEOUT_SECS),
        max_count: spec.max_count.unwrap_or(DEFAULT_MAX_COUNT).min(MAX_COUNT),
    };
    let status = if spec.off { rows::OFF } else { rows::REQUESTED };
    rows::set_up(
        conn,
        &rows::Setup {
            tenant,
            id,
            topic: spec.topic.code,
            status,
            channel: &channel,
            subscriber: &subscriber_of(agent),
            filters: &spec.filters,
            next_attempt: if spec.off { rows::NEVER } else { now },
        },
    )?;
    Ok(())
}

/// A deleted Subscription: its row, filters and events go.
pub fn after_delete(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    id: &str,
) -> Result<(), ApiError> {
    if res_type == "Subscription" {
        rows::remove(conn, tenant, id, true)?;
    }
    Ok(())
}
