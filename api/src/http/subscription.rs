//! `Subscription/[id]/$status` and `Subscription/[id]/$events` (Subscriptions Backport).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use fhir_mapping::subscriptions::{self as topics, Content, Event, NotificationType};

use super::negotiate;
use super::negotiate::finish;
use super::state::AppState;
use crate::auth::scopes::Perm;
use crate::clock::{instant_string, to_micros};
use crate::db::subscriptions::{self as rows, SubscriptionRow};
use crate::error::ApiError;

type State = web::Data<AppState>;

/// Events one `$events` answer holds at most.
const MAX_EVENTS: i64 = 1000;

/// The row of the path's Subscription, if the token may read it.
async fn visible_row(req: &HttpRequest, state: &State) -> Result<SubscriptionRow, ApiError> {
    let id = req.match_info().get("id").unwrap_or_default().to_string();
    let access = super::authn::access(req)?;
    let limits = access.require("Subscription", Perm::Read)?;
    let (tenant, key) = (access.tenant.clone(), id.clone());
    let row = state
        .db
        .read(move |c| {
            if !crate::auth::visibility::visible(c, &tenant, "Subscription", &key, &limits)? {
                return Ok(None);
            }
            Ok(rows::get(c, &tenant, &key)?)
        })
        .await?;
    row.ok_or_else(|| ApiError::NotFound(format!("Subscription/{id} does not exist")))
}

fn status_of<'a>(
    row: &'a SubscriptionRow,
    subscription: &'a str,
    kind: NotificationType,
) -> Result<topics::Status<'a>, ApiError> {
    let topic = topics::TOPICS
        .iter()
        .find(|t| t.code == row.topic)
        .ok_or_else(|| ApiError::internal("a subscription of an unknown topic"))?;
    Ok(topics::Status {
        subscription,
        topic,
        status: &row.status,
        kind,
        events_since_start: row.events,
        error: row.last_error.as_deref(),
    })
}

/// `GET Subscription/[id]/$status`: a `searchset` Bundle of its status (a Parameters
/// of the backport profile, type `query-status`).
pub async fn status(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let query = negotiate::query_pairs(&req)?;
        let out = negotiate::output(&req, &query)?;
        let row = visible_row(&req, &state).await?;
        let base = state.base_url(&req);
        let subscription = format!("{base}/Subscription/{}", row.id);
        let status = status_of(&row, &subscription, NotificationType::QueryStatus)?;
        let params = topics::status_parameters(&status, &[], Content::Empty);
        let bundle = serde_json::json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": 1,
            "link": [{"relation": "self", "url": format!("{subscription}/$status")}],
            "entry": [{"fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                "resource": params, "search": {"mode": "match"}}]
        });
        let bytes = serde_json::to_vec(&bundle)
            .map_err(|e| ApiError::internal_from("serialising JSON", e))?;
        super::negotiate::fhir_response(StatusCode::OK, out, &bytes)
    }
    .await;
    finish(&req, result)
}

/// `GET Subscription/[id]/$events?eventsSinceNumber=&eventsUntilNumber=&content=`: the
/// events kept for the subscription, as a notification Bundle (`query-event`). The
/// focus of each is sent only when the caller's token may read it.
pub async fn events(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let query = negotiate::query_pairs(&req)?;
        let out = negotiate::output(&req, &query)?;
        let number = |name: &str| -> Result<Option<i64>, ApiError> {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| {
                    v.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        ApiError::BadRequest(format!("{name} is an event number (1, 2, ...)"))
                    })
                })
                .transpose()
        };
        let since = number("eventsSinceNumber")?;
        let until = number("eventsUntilNumber")?;
        let content = match query.iter().find(|(k, _)| k == "content") {
            Some((_, c)) => Some(Content::parse(c).ok_or_else(|| {
                ApiError::BadRequest("content is empty, id-only or full-resource".into())
            })?),
            None => None,
        };
        for (k, _) in &query {
            if !matches!(
                k.as_str(),
                "eventsSinceNumber" | "eventsUntilNumber" | "content" | "_format" | "_pretty"
            ) && !negotiate::prefer_lenient(&req)
            {
                return Err(ApiError::BadRequest(format!(
                    "$events does not support the parameter `{k}`"
                )));
            }
        }
        let row = visible_row(&req, &state).await?;
        let access = super::authn::access(&req)?;
        let topic = topics::TOPICS
            .iter()
            .find(|t| t.code == row.topic)
            .ok_or_else(|| ApiError::internal("a subscription of an unknown topic"))?;
        let stored = row
            .channel()
            .and_then(|c| Content::parse(&c.content))
            .unwrap_or(Content::IdOnly);
        let content = content.unwrap_or(stored);
        let limits = access.require(topic.resource_type, Perm::Read).ok();
        let from = since.unwrap_or(1);
        let to = until.unwrap_or(row.events).min(row.events);
        let (tenant, id) = (access.tenant.clone(), row.id.clone());
        let res_type = topic.resource_type;
        let loaded = state
            .db
            .read(move |c| {
                let events = rows::events(c, &tenant, &id, from, to, MAX_EVENTS)?;
                let mut out = Vec::new();
                for e in events {
                    let readable = match &limits {
                        Some(l) => {
                            crate::auth::visibility::visible(c, &tenant, res_type, &e.res_id, l)?
                        }
                        None => false,
                    };
                    let body = if readable && content == Content::FullResource {
                        crate::db::store::version(
                            c,
                            crate::db::store::Key {
                                tenant: &tenant,
                                res_type: &e.res_type,
                                res_id: &e.res_id,
                            },
                            e.version,
                        )?
                        .and_then(|v| v.body)
                        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                    } else {
                        None
                    };
                    out.push((e, readable, body));
                }
                Ok(out)
            })
            .await?;
        let base = state.base_url(&req);
        let subscription = format!("{base}/Subscription/{}", row.id);
        let status = status_of(&row, &subscription, NotificationType::QueryEvent)?;
        let stamps: Vec<String> = loaded
            .iter()
            .map(|(e, ..)| instant_string(e.occurred))
            .collect();
        let foci: Vec<String> = loaded
            .iter()
            .map(|(e, ..)| format!("{}/{}", e.res_type, e.res_id))
            .collect();
        // a focus the caller may not read is reported without its reference
        let readable_all = loaded.iter().all(|(_, r, _)| *r);
        let shown = if readable_all {
            content
        } else {
            Content::Empty
        };
        let list: Vec<Event<'_>> = loaded
            .iter()
            .zip(stamps.iter().zip(&foci))
            .map(|((e, _, body), (t, f))| Event {
                number: e.number,
                timestamp: t,
                focus: f,
                resource: body.as_ref(),
            })
            .collect();
        let bundle = topics::notification(
            &base,
            &uuid::Uuid::new_v4().to_string(),
            &instant_string(to_micros(state.clock.now())),
            &status,
            &list,
            shown,
        );
        let bytes = serde_json::to_vec(&bundle)
            .map_err(|e| ApiError::internal_from("serialising JSON", e))?;
        super::negotiate::fhir_response(StatusCode::OK, out, &bytes)
    }
    .await;
    finish(&req, result)
}
