//! Handlers of the RESTful interactions (R4 http.html).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use domain::VersionId;
use fhir_mapping::bundle::{Entry, EntryRequest, EntryResponse, Link, write_bundle};
use fhir_mapping::resource_types::{is_storable, is_valid_id};
use fhir_mapping::{Format, Issue, ParsedResource, operation_outcome, parse_resource};

use super::negotiate::{self, Output, Return};
use super::negotiate::{fhir_response, finish, render};
use super::state::AppState;
use crate::auth::{Access, Limits, scopes::Perm};
use crate::clock::{http_date, instant_string};
use crate::db::store::{self, HistoryQuery, Key, VersionRow};
use crate::error::{ApiError, content_type};
use crate::search::{self, DEFAULT_COUNT, MAX_COUNT};
use crate::service::{self, WriteStatus, Written};

type State = web::Data<AppState>;

/// Runs blocking database work off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::internal_from("blocking task failed", e))?
}

pub(super) fn resource_type(req: &HttpRequest) -> Result<String, ApiError> {
    let t = req.match_info().get("type").unwrap_or_default();
    if is_storable(t) {
        Ok(t.to_string())
    } else if t == "Parameters" {
        Err(ApiError::NotFound(
            "Parameters has no RESTful endpoint in FHIR R4: it carries the inputs and outputs of operations".into(),
        ))
    } else {
        Err(ApiError::NotFound(format!(
            "`{t}` is not an R4 resource type"
        )))
    }
}

pub(super) fn path_id(req: &HttpRequest) -> Result<String, ApiError> {
    let id = req.match_info().get("id").unwrap_or_default();
    if is_valid_id(id) {
        Ok(id.to_string())
    } else {
        Err(ApiError::BadRequest(format!(
            "`{id}` is not a valid resource id"
        )))
    }
}

/// Refuses query parameters an interaction does not support.
pub(super) fn only_params(query: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    match query.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(ApiError::BadRequest(format!(
            "parameter `{k}` is not supported here"
        ))),
        None => Ok(()),
    }
}

fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    match req.headers().get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| VersionId::parse_etag(s).ok())
            .map(|v| Some(i64::from(v.get())))
            .ok_or_else(|| {
                ApiError::BadRequest("If-Match must be an entity tag like W/\"3\"".into())
            }),
    }
}

fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn with_version_headers(b: &mut HttpResponseBuilder, version: i64, last_updated: i64) {
    b.insert_header((header::ETAG, etag(version)));
    b.insert_header((header::LAST_MODIFIED, http_date(last_updated)));
}

/// Parses the body and checks it against the URL's type (CPU work: run it off the
/// async workers, with the database work). A `Binary` must hold accepted media.
fn parse_body(
    state: &AppState,
    body: &[u8],
    format: Format,
    expected_type: &str,
) -> Result<ParsedResource, ApiError> {
    let parsed = parse_resource(body, format, &state.limits)?;
    if parsed.resource_type() != expected_type {
        return Err(ApiError::BadRequest(format!(
            "the body is a {} but the URL is for {expected_type}",
            parsed.resource_type()
        )));
    }
    if expected_type == "Binary" {
        let issues = fhir_mapping::media::check_binary(parsed.json(), state.max_binary_bytes);
        if !issues.is_empty() {
            return Err(ApiError::Unprocessable(issues));
        }
    }
    Ok(parsed)
}

/// The body of a create or update and its format. For `Binary`, a body whose
/// `Content-Type` is not a FHIR format is the media itself (R4 http.html#binary): it
/// becomes a `Binary` resource with that content type (and the URL's id on update).
async fn write_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    res_type: &str,
    id: Option<&str>,
) -> Result<(web::Bytes, Format), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if res_type == "Binary" && !content_type.is_empty() && !negotiate::is_fhir_mime(content_type) {
        let media = negotiate::read_body(req, payload, state.max_binary_bytes).await?;
        let mut binary = fhir_mapping::media::binary(content_type, &media);
        if let Some(id) = id {
            binary["id"] = serde_json::Value::String(id.to_string());
        }
        let json = serde_json::to_vec(&binary)
            .map_err(|e| ApiError::internal_from("Binary could not be encoded", e))?;
        return Ok((web::Bytes::from(json), Format::Json));
    }
    let format = negotiate::input_format(req)?;
    let body = negotiate::read_body(req, payload, state.body_limit(res_type)).await?;
    Ok((body, format))
}

/// The answer to a write, honouring `Prefer: return=`.
pub(super) fn write_response(
    req: &HttpRequest,
    state: &AppState,
    out: Output,
    w: &Written,
) -> Result<HttpResponse, ApiError> {
    let status = match w.status {
        WriteStatus::Created => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let mut b = HttpResponse::build(status);
    with_version_headers(&mut b, w.version, w.last_updated);
    if w.status == WriteStatus::Created {
        b.insert_header((
            header::LOCATION,
            format!(
                "{}/{}/{}/_history/{}",
                state.base_url(req),
                w.res_type,
                w.id,
                w.version
            ),
        ));
    }
    match negotiate::prefer_return(req) {
        Return::Minimal => Ok(b.finish()),
        Return::OperationOutcome => {
            let message = match w.status {
                WriteStatus::Created => "created",
                WriteStatus::Existing => "a matching resource exists; nothing was created",
                _ => "updated",
            };
            let oo = operation_outcome(&[Issue::information(format!(
                "{}/{}: {message}",
                w.res_type, w.id
            ))]);
            let bytes = serde_json::to_vec(&oo)
                .map_err(|e| ApiError::internal_from("serialising JSON", e))?;
            Ok(b.content_type(content_type(out.format))
                .body(render(out, &bytes)?))
        }
        Return::Representation => match &w.body {
            Some(json) => Ok(b
                .content_type(content_type(out.format))
                .body(render(out, json.as_bytes())?)),
            None => Ok(b.finish()),
        },
    }
}

/// The response to a write that an idempotency key may have replayed.
fn answer_write(
    req: &HttpRequest,
    state: &AppState,
    out: Output,
    (written, replayed): &(Written, bool),
) -> Result<HttpResponse, ApiError> {
    let mut response = write_response(req, state, out, written)?;
    if *replayed {
        mark_replayed(&mut response);
    }
    Ok(response)
}

/// Marks the answer to a request sent again with the same `Idempotency-Key`.
pub(super) fn mark_replayed(response: &mut HttpResponse) {
    response.headers_mut().insert(
        header::HeaderName::from_static("idempotent-replayed"),
        header::HeaderValue::from_static("true"),
    );
}

/// `GET /fhir/.well-known/smart-configuration` (SMART App Launch 2): how clients get
/// tokens and what this server accepts.
pub async fn smart_configuration(req: HttpRequest, state: State) -> HttpResponse {
    let base = state.base_url(&req);
    let origin = base.strip_suffix("/fhir").unwrap_or(&base).to_string();
    let body = serde_json::json!({
        "issuer": origin,
        "jwks_uri": format!("{origin}/auth/jwks"),
        "authorization_endpoint": format!("{origin}/auth/authorize"),
        "token_endpoint": format!("{origin}/auth/token"),
        "introspection_endpoint": format!("{origin}/auth/introspect"),
        "revocation_endpoint": format!("{origin}/auth/revoke"),
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient", "offline_access",
            "online_access", "patient/*.cruds", "patient/*.rs", "user/*.cruds", "user/*.rs",
            "system/*.cruds", "system/*.rs", "patient/*.read", "patient/*.write", "user/*.read",
            "user/*.write", "system/*.read", "system/*.write"],
        "capabilities": ["launch-standalone", "launch-ehr", "client-public",
            "client-confidential-symmetric", "client-confidential-asymmetric",
            "context-standalone-patient", "context-ehr-patient", "sso-openid-connect",
            "permission-patient", "permission-user", "permission-offline", "permission-online",
            "permission-v1", "permission-v2", "authorize-post"]
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_string())
}

pub async fn metadata(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let query = negotiate::query_pairs(&req)?;
        only_params(&query, &["_format", "_pretty", "mode"])?;
        let out = negotiate::output(&req, &query)?;
        let mut cs = state.capability.clone();
        let base = state.base_url(&req);
        cs["implementation"]["url"] = base.clone().into();
        let origin = base.strip_suffix("/fhir").unwrap_or(&base);
        cs["rest"][0]["security"] = serde_json::json!({
            "extension": [{
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": "token", "valueUri": format!("{origin}/auth/token")},
                    {"url": "authorize", "valueUri": format!("{origin}/auth/authorize")},
                    {"url": "introspect", "valueUri": format!("{origin}/auth/introspect")},
                    {"url": "revoke", "valueUri": format!("{origin}/auth/revoke")}
                ]
            }],
            "cors": state.cors_enabled,
            "service": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "SMART-on-FHIR"
            }]}],
            "description": "Every request needs a bearer access token: SMART App Launch (standalone and EHR launch, authorization code with PKCE S256, public and confidential apps, refresh tokens, OpenID Connect ID tokens) for patients and clinic staff signing in, SMART Backend Services (client_credentials with a private_key_jwt assertion, RS384 or ES384) for systems, or a token of the configured OpenID Connect provider. SMART v1 and v2 scopes are enforced per type and interaction; patient scopes open the token's patient only. See /fhir/.well-known/smart-configuration."
        });
        let bytes = serde_json::to_vec(&cs).map_err(|e| ApiError::internal_from("serialising JSON", e))?;
        fhir_response(StatusCode::OK, out, &bytes)
    }
    .await;
    finish(&req, result)
}

pub async fn create(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let result = async {
        let res_type = resource_type(&req)?;
        let access = super::authn::access(&req)?;
        let limits = access.require(&res_type, Perm::Create)?;
        let query = negotiate::query_pairs(&req)?;
        only_params(&query, &["_format", "_pretty"])?;
        let out = negotiate::output(&req, &query)?;
        let (body, format) = write_body(&req, payload, &state, &res_type, None).await?;
        let criteria = match req.headers().get("If-None-Exist") {
            None => None,
            Some(v) => {
                let text = v
                    .to_str()
                    .map_err(|_| ApiError::BadRequest("If-None-Exist is not valid text".into()))?;
                let text = text.split_once('?').map_or(text, |(_, q)| q);
                let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text)
                    .map_err(|_| ApiError::BadRequest("If-None-Exist is not a query".into()))?;
                Some(search::parse(&res_type, &pairs)?)
            }
        };
        let idempotency = negotiate::idempotency(&req, &body)?;
        let id = crate::db::new_id();
        let st = state.clone();
        let (written, replayed) = blocking(move || {
            let parsed = parse_body(&st, &body, format, &res_type)?;
            service::create(
                &st.db,
                st.scope_for(&access, &limits),
                parsed,
                id,
                criteria,
                idempotency,
            )
        })
        .await?;
        let mut response = write_response(&req, &state, out, &written)?;
        if replayed {
            mark_replayed(&mut response);
        }
        Ok(response)
    }
    .await;
    finish(&req, result)
}

pub async fn update(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let result = async {
        let res_type = resource_type(&req)?;
        let id = path_id(&req)?;
        let access = super::authn::access(&req)?;
        let limits = access.require(&res_type, Perm::Update)?;
        let query = negotiate::query_pairs(&req)?;
        only_params(&query, &["_format", "_pretty"])?;
        let out = negotiate::output(&req, &query)?;
        let if_match = if_match(&req)?;
        let (body, format) = write_body(&req, payload, &state, &res_type, Some(&id)).await?;
        let idempotency = negotiate::idempotency(&req, &body)?;
        let st = state.clone();
        let written = blocking(move || {
            let parsed = parse_body(&st, &body, format, &res_type)?;
            match parsed.id() {
                None => {
                    return Err(ApiError::BadRequest(
                        "the resource must have an id that matches the URL".into(),
                    ));
                }
                Some(body_id) if body_id != id => {
                    return Err(ApiError::BadRequest(format!(
                        "the resource id `{body_id}` does not match the id `{id}` in the URL"
                    )));
                }
                Some(_) => {}
            }
            service::update(
                &st.db,
                st.scope_for(&access, &limits),
                parsed,
                id,
                if_match,
                idempotency,
            )
        })
        .await?;
        answer_write(&req, &state, out, &written)
    }
    .await;
    finish(&req, result)
}

/// `PATCH [type]/[id]` with a JSON Patch document (RFC 6902, R4 http.html#patch): the
/// patched resource is checked and written like an update. Without `If-Match`, a
/// concurrent change makes the patch apply again to the new version; with it, 412.
pub async fn patch(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let result = async {
        let res_type = resource_type(&req)?;
        let id = path_id(&req)?;
        let access = super::authn::access(&req)?;
        let limits = access.require(&res_type, Perm::Update)?;
        let query = negotiate::query_pairs(&req)?;
        only_params(&query, &["_format", "_pretty"])?;
        let out = negotiate::output(&req, &query)?;
        let if_match = if_match(&req)?;
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if fhir_mapping::media::essence(content_type) != "application/json-patch+json" {
            return Err(ApiError::UnsupportedMediaType(
                "PATCH takes a JSON Patch document (Content-Type: application/json-patch+json)"
                    .into(),
            ));
        }
        let body = negotiate::read_body(&req, payload, state.max_body_bytes).await?;
        let idempotency = negotiate::idempotency(&req, &body)?;
        let ops = std::sync::Arc::new(crate::patch::parse(&body, state.max_patch_operations)?);
        let max_bytes = state.body_limit(&res_type);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let current = current_of(&state, &access, &limits, &res_type, &id).await?;
            if let Some(idem) = idempotency.clone().filter(|_| attempts == 1) {
                // a retry of a patch already made gets its first answer, though the
                // resource has moved on since (its If-Match would fail now)
                let scope = state.scope_for(&access, &limits);
                let key = idem.clone();
                let earlier = state
                    .db
                    .read(move |conn| Ok(service::earlier_answer(conn, scope.ctx(false), &key)?))
                    .await?;
                if let Some(stored) = earlier {
                    let stored = service::same_request(stored, &idem)?;
                    let written = service::written_of(stored, service::WriteStatus::Updated);
                    return answer_write(&req, &state, out, &(written, true));
                }
            }
            let Some(stored) = current.body.filter(|_| !current.deleted) else {
                return Err(ApiError::Gone(format!("{res_type}/{id} was deleted")));
            };
            if let Some(v) = if_match
                && v != current.version
            {
                return Err(ApiError::PreconditionFailed(format!(
                    "If-Match names version {v} but the current version is {}",
                    current.version
                )));
            }
            let st = state.clone();
            let (t, i, version) = (res_type.clone(), id.clone(), current.version);
            let scope = st.scope_for(&access, &limits);
            let ops = ops.clone();
            let idem = idempotency.clone();
            let written = blocking(move || {
                // CPU work bounded by the body limit: see `crate::patch`
                let patched = crate::patch::apply(&stored, &ops, max_bytes)?;
                let parsed = parse_body(&st, &patched, Format::Json, &t)?;
                if parsed.id() != Some(i.as_str()) {
                    return Err(ApiError::Unprocessable(vec![
                        Issue::error(
                            fhir_mapping::IssueType::BusinessRule,
                            "a patch cannot change the resource's id",
                        )
                        .at(format!("{t}.id")),
                    ]));
                }
                service::update(&st.db, scope, parsed, i, Some(version), idem)
            })
            .await;
            match written {
                // someone wrote in between: apply the patch to the new version
                Err(ApiError::PreconditionFailed(_)) if if_match.is_none() && attempts < 5 => {
                    continue;
                }
                Err(ApiError::PreconditionFailed(_)) if if_match.is_none() => {
                    return Err(ApiError::Retry);
                }
                other => return answer_write(&req, &state, out, &other?),
            }
        }
    }
    .await;
    finish(&req, result)
}

pub async fn conditional_update(
    req: HttpRequest,
    payload: web::Payload,
    state: State,
) -> HttpResponse {
    let result = async {
        let res_type = resource_type(&req)?;
        let access = super::authn::access(&req)?;
        let limits = access.require(&res_type, Perm::Update)?;
        access.require(&res_type, Perm::Search)?;
        let query = negotiate::query_pairs(&req)?;
        let out = negotiate::output(&req, &query)?;
        let criteria: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k != "_format" && k != "_pretty")
            .cloned()
            .collect();
        let search = search::parse(&res_type, &criteria)?;
        let if_match = if_match(&req)?;
        let format = negotiate::input_format(&req)?;
        let body = negotiate::read_body(&req, payload, state.body_limit(&res_type)).await?;
        let new_id = crate::db::new_id();
        let st = state.clone();
        let written = blocking(move || {
            let parsed = parse_body(&st, &body, format, &res_type)?;
            service::conditional_update(
                &st.db,
                st.scope_for(&access, &limits),
                parsed,
                new_id,
                search,
                if_match,
            )
        })
        .await?;
        write_response(&req, &state, out, &written)
    }
    .await;
    finish(&req, result)
}

pub async fn delete(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let res_type = resource_type(&req)?;
        let id = path_id(&req)?;
        let access = super::authn::access(&req)?;
        let limits = access.require(&res_type, Perm::Delete)?;
        let query = negotiate::query_pairs(&req)?;
        only_params(&query, &["_format", "_pretty"])?;
        let if_match = if_match(&req)?;
        let st = state.clone();
        let scope = st.scope_for(&access, &limits);
        let written =
            blocking(move || service::delete(&st.db, scope, res_type, id, if_match)).await?;
        let mut b = HttpResponse::NoContent();
        b.insert_header((header::ETAG, etag(written.version)));
        Ok(b.finish())
    }
    .await;
    finish(&req, result)
}

/// The current row of a resource (deleted or not) in the request's tenant; 404 when it
/// never existed, or when the access's limits (a patient's compartment, a scope's
/// restriction) leave it out.
async fn current_of(
    state: &State,
    access: &Access,
    limits: &Limits,
    res_type: &str,
    id: &str,
) -> Result<store::CurrentRow, ApiError> {
    let (t, i) = (res_type.to_string(), id.to_string());
    let (tenant, limits) = (access.tenant.clone(), limits.clone());
    state
        .db
        .read(move |conn| {
            if !crate::auth::visibility::visible(conn, &tenant, &t, &i, &limits)? {
                return Ok(None);
            }
            Ok(store::current(
                conn,
                Key {
                    tenant: &tenant,
                    res_type: &t,
                    res_id: &i,
                },
            )?)
        })
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{res_type}/{id} does not exist")))
}

pub async fn read(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let res_type = resource_type(&req)?;
        let id = req.match_info().get("id").unwrap_or_default().to_string();
        let query = negotiate::query_pairs(&req)?;
        only_params(&query, &["_format", "_pretty"])?;
        let media = media_accept(&req, &query, &res_type);
        let out = match media {
            Some(_) => Output::default(),
            None => negotiate::output(&req, &query)?,
        };
        if !is_valid_id(&id) {
            return Err(ApiError::NotFound(format!(
                "{res_type}/{id} does not exist"
            )));
        }
        let access = super::authn::access(&req)?;
        let limits = access.require(&res_type, Perm::Read)?;
        if res_type == "AuditEvent" {
            let event = crate::audit::read_event(&state.db, access.tenant.clone(), id).await?;
            let bytes = serde_json::to_vec(&event)
                .map_err(|e| ApiError::internal_from("serialising JSON", e))?;
            return fhir_response(StatusCode::OK, out, &bytes);
        }
        let current = current_of(&state, &access, &limits, &res_type, &id).await?;
        let Some(body) = current.body.filter(|_| !current.deleted) else {
            return Err(ApiError::Gone(format!(
                "{res_type}/{id} was deleted (version {})",
                current.version
            )));
        };
        if let Some(ranges) = media {
            return binary_response(&ranges, &body, current.version, current.last_updated);
        }
        let mut b = HttpResponse::Ok();
        with_version_headers(&mut b, current.version, current.last_updated);
        b.content_type(content_type(out.format));
        Ok(b.body(render_stored(out, body)?))
    }
    .await;
    finish(&req, result)
}

/// The media ranges of a read that asks for a `Binary`'s content itself rather than
/// FHIR (R4 http.html#binary): `Accept` names no FHIR format and there is no `_format`.
fn media_accept(
    req: &HttpRequest,
    query: &[(String, String)],
    res_type: &str,
) -> Option<Vec<String>> {
    if res_type != "Binary" || query.iter().any(|(k, _)| k == "_format") {
        return None;
    }
    let accept = req.headers().get(header::ACCEPT)?.to_str().ok()?;
    let ranges = negotiate::media_ranges(accept);
    let specific = ranges.iter().any(|r| *r != "*/*" && !r.is_empty());
    (specific && !ranges.iter().any(|r| negotiate::is_fhir_mime(r)))
        .then(|| ranges.into_iter().map(str::to_ascii_lowercase).collect())
}

/// A stored `Binary` answered as its media, when one of `ranges` accepts its type.
fn binary_response(
    ranges: &[String],
    body: &str,
    version: i64,
    last_updated: i64,
) -> Result<HttpResponse, ApiError> {
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(body)
        .map_err(|e| ApiError::internal_from("stored Binary is not JSON", e))?;
    let Some((content_type, bytes)) = fhir_mapping::media::content(&json) else {
        return Err(ApiError::NotAcceptable(
            "this Binary has no content; ask for application/fhir+json".into(),
        ));
    };
    let essence = fhir_mapping::media::essence(&content_type);
    let family = essence.split('/').next().unwrap_or("");
    let accepted = ranges
        .iter()
        .any(|r| *r == essence || *r == "*/*" || r.strip_suffix("/*").is_some_and(|f| f == family));
    if !accepted {
        return Err(ApiError::NotAcceptable(format!(
            "this Binary holds {essence}; ask for it or for application/fhir+json"
        )));
    }
    let mut b = HttpResponse::Ok();
    with_version_headers(&mut b, version, last_updated);
    Ok(b.content_type(essence)
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", "sandbox"))
        .body(bytes))
}

/// Stored JSON is served as it is when no conversion is asked for.
fn render_stored(out: Output, body: String) -> Result<Vec<u8>, ApiError> {
    if out == Output::default() {
        Ok(body.into_bytes())
    } else {
        render(out, body.as_bytes())
    }
}

pub async fn vread(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let res_type = resource_type(&req)?;
        let id = req.match_info().get("id").unwrap_or_default().to_string();
        let vid = req.match_info().get("vid").unwrap_or_default().to_string();
        let query = negotiate::query_pairs(&req)?;
        only_params(&query, &["_format", "_pretty"])?;
        let media = media_accept(&req, &query, &res_type);
        let out = match media {
            Some(_) => Output::default(),
            None => negotiate::output(&req, &query)?,
        };
        let not_found =
            || ApiError::NotFound(format!("{res_type}/{id}/_history/{vid} does not exist"));
        let version = VersionId::parse(&vid).map_err(|_| not_found())?;
        if !is_valid_id(&id) {
            return Err(not_found());
        }
        let access = super::authn::access(&req)?;
        let limits = access.require(&res_type, Perm::Read)?;
        let (t, i) = (res_type.clone(), id.clone());
        let tenant = access.tenant.clone();
        let row = state
            .db
            .read(move |conn| {
                if !crate::auth::visibility::visible(conn, &tenant, &t, &i, &limits)? {
                    return Ok(None);
                }
                Ok(store::version(
                    conn,
                    Key {
                        tenant: &tenant,
                        res_type: &t,
                        res_id: &i,
                    },
                    i64::from(version.get()),
                )?)
            })
            .await?
            .ok_or_else(not_found)?;
        let Some(body) = row.body else {
            return Err(ApiError::Gone(format!(
                "version {vid} of {res_type}/{id} is a deletion"
            )));
        };
        if let Some(ranges) = media {
            return binary_response(&ranges, &body, row.version, row.last_updated);
        }
        let mut b = HttpResponse::Ok();
        with_version_headers(&mut b, row.version, row.last_updated);
        b.content_type(content_type(out.format));
        Ok(b.body(render_stored(out, body)?))
    }
    .await;
    finish(&req, result)
}

async fn history(
    req: HttpRequest,
    state: State,
    res_type: Option<String>,
    id: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let safe_point = crate::clock::to_micros(state.clock.now()) - crate::clock::POLL_LAG_MICROS;
    let query = negotiate::query_pairs(&req)?;
    only_params(
        &query,
        &["_format", "_pretty", "_count", "_since", "_cursor"],
    )?;
    let out = negotiate::output(&req, &query)?;
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let count = match get("_count") {
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::BadRequest("_count must be a positive whole number".into()))?
            .min(MAX_COUNT),
        None => DEFAULT_COUNT,
    };
    let since = match get("_since") {
        Some(s) => Some(
            s.parse::<jiff::Timestamp>()
                .map_err(|_| {
                    ApiError::BadRequest("_since must be an instant with a time zone".into())
                })?
                .as_microsecond(),
        ),
        None => None,
    };
    let cursor = match get("_cursor") {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::BadRequest("invalid _cursor".into()))?,
        ),
        None => None,
    };
    let access = super::authn::access(&req)?;
    let limits = match &res_type {
        Some(t) => access.require(t, Perm::Read)?,
        None => access.require_every_type(Perm::Read)?,
    };
    if id.is_none() && !limits.is_open() {
        return Err(ApiError::Forbidden(
            "the history of a type or of the server needs user or system scopes without a restriction"
                .into(),
        ));
    }
    let (t, i) = (res_type.clone(), id.clone());
    let tenant = access.tenant.clone();
    let rows: Vec<VersionRow> = state
        .db
        .read(move |conn| {
            if let (Some(t), Some(i)) = (&t, &i)
                && !crate::auth::visibility::visible(conn, &tenant, t, i, &limits)?
            {
                return Ok(Vec::new());
            }
            Ok(store::history(
                conn,
                HistoryQuery {
                    tenant: &tenant,
                    res_type: t.as_deref(),
                    res_id: i.as_deref(),
                    since,
                    before_seq: cursor,
                    limit: count,
                },
            )?)
        })
        .await?;
    if let (Some(t), Some(i)) = (&res_type, &id)
        && rows.is_empty()
        && cursor.is_none()
        && since.is_none()
    {
        return Err(ApiError::NotFound(format!("{t}/{i} does not exist")));
    }
    let base = state.base_url(&req);
    let path = match (&res_type, &id) {
        (Some(t), Some(i)) => format!("/{t}/{i}/_history"),
        (Some(t), None) => format!("/{t}/_history"),
        _ => "/_history".to_string(),
    };
    let mut kept: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k == "_since" || k == "_count")
        .cloned()
        .collect();
    let mut links = vec![Link {
        relation: "self",
        url: search::link_url(
            &base,
            &path,
            &query
                .iter()
                .filter(|(k, _)| k != "_format" && k != "_pretty")
                .cloned()
                .collect::<Vec<_>>(),
        ),
    }];
    if rows.len() as i64 == count
        && let Some(last) = rows.last()
    {
        kept.push(("_cursor".into(), last.seq.to_string()));
        links.push(Link {
            relation: "next",
            url: search::link_url(&base, &path, &kept),
        });
    }
    let entries: Vec<Entry<'_>> = rows
        .iter()
        .map(|r| {
            let (method, url, status) = match r.method.as_str() {
                "POST" => ("POST", r.res_type.clone(), "201 Created"),
                "DELETE" => (
                    "DELETE",
                    format!("{}/{}", r.res_type, r.res_id),
                    "204 No Content",
                ),
                _ if r.version == 1 => {
                    ("PUT", format!("{}/{}", r.res_type, r.res_id), "201 Created")
                }
                _ => ("PUT", format!("{}/{}", r.res_type, r.res_id), "200 OK"),
            };
            Entry {
                full_url: Some(format!("{base}/{}/{}", r.res_type, r.res_id)),
                resource: r.body.as_deref().map(str::as_bytes),
                request: Some(EntryRequest { method, url }),
                response: Some(EntryResponse {
                    status: status.into(),
                    location: None,
                    etag: Some(etag(r.version)),
                    last_modified: Some(instant_string(r.last_updated)),
                    outcome: None,
                }),
                ..Default::default()
            }
        })
        .collect();
    let bundle = write_bundle(
        "history",
        None,
        Some(&instant_string(safe_point)),
        None,
        None,
        &links,
        &entries,
    );
    fhir_response(StatusCode::OK, out, &bundle)
}

pub async fn history_system(req: HttpRequest, state: State) -> HttpResponse {
    let r = history(req.clone(), state, None, None).await;
    finish(&req, r)
}

pub async fn history_type(req: HttpRequest, state: State) -> HttpResponse {
    let r = async {
        let t = resource_type(&req)?;
        history(req.clone(), state, Some(t), None).await
    }
    .await;
    finish(&req, r)
}

pub async fn history_instance(req: HttpRequest, state: State) -> HttpResponse {
    let r = async {
        let t = resource_type(&req)?;
        let id = path_id(&req)?;
        history(req.clone(), state, Some(t), Some(id)).await
    }
    .await;
    finish(&req, r)
}

async fn run_search(
    req: &HttpRequest,
    state: State,
    query: Vec<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let res_type = resource_type(req)?;
    let safe_point = crate::clock::to_micros(state.clock.now()) - crate::clock::POLL_LAG_MICROS;
    let out = negotiate::output(req, &query)?;
    let options = search::Options {
        lenient: negotiate::prefer_lenient(req),
        now: crate::clock::to_micros(state.clock.now()),
    };
    let parsed = search::parse_with(&res_type, &query, options)?;
    let access = super::authn::access(req)?;
    let limited = search::limit(&access, &res_type, &parsed)?;
    if res_type == "AuditEvent" {
        let bundle = crate::audit::search_events(
            &state.db,
            access.tenant.clone(),
            &query,
            &state.base_url(req),
        )
        .await?;
        return fhir_response(StatusCode::OK, out, &bundle);
    }
    let count = parsed.count.unwrap_or(DEFAULT_COUNT);
    let t = res_type.clone();
    let found = state
        .db
        .read(move |conn| search::execute(conn, &access.tenant, &t, &limited, count, Some(&access)))
        .await?;
    let bundle = search::searchset(
        &state.base_url(req),
        &res_type,
        &parsed,
        count,
        &found,
        safe_point,
    );
    fhir_response(StatusCode::OK, out, &bundle)
}

pub async fn search(req: HttpRequest, state: State) -> HttpResponse {
    let r = async {
        let query = negotiate::query_pairs(&req)?;
        run_search(&req, state, query).await
    }
    .await;
    finish(&req, r)
}

pub async fn search_post(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let r = async {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return Err(ApiError::UnsupportedMediaType(
                "_search takes an application/x-www-form-urlencoded body".into(),
            ));
        }
        let mut query = negotiate::query_pairs(&req)?;
        let body = match negotiate::read_body(&req, payload, state.max_body_bytes).await {
            Ok(b) => b,
            Err(ApiError::BadRequest(_)) => web::Bytes::new(),
            Err(e) => return Err(e),
        };
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|_| ApiError::BadRequest("the form body is not valid".into()))?;
        query.extend(form);
        run_search(&req, state, query).await
    }
    .await;
    finish(&req, r)
}
