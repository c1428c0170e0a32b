//! The token endpoint of SMART Backend Services (`POST /auth/token`) and the
//! registration of clients (`POST /auth/clients`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::negotiate;
use super::negotiate::finish;
use super::state::AppState;
use crate::auth::clients::{self, Actor, Registration, TokenContext, TokenError, TokenForm};
use crate::error::ApiError;

type State = web::Data<AppState>;

/// The URL of the token endpoint as clients reach it (the `aud` of their assertions).
pub fn token_url(state: &AppState, req: &HttpRequest) -> String {
    let base = state.base_url(req);
    let origin = base.strip_suffix("/fhir").unwrap_or(&base);
    format!("{origin}/auth/token")
}

fn oauth_error(e: &TokenError) -> HttpResponse {
    let (status, body) = e.answer();
    let mut b =
        HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST));
    b.insert_header(("Cache-Control", "no-store"));
    if status == 401 {
        b.insert_header(("WWW-Authenticate", "Bearer realm=\"hep\""));
    }
    b.content_type("application/json").body(body.to_string())
}

/// `POST /auth/token`: `grant_type=client_credentials` with a signed client assertion.
pub async fn token(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let ct = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(&TokenError::InvalidRequest(
            "the token request is a form (application/x-www-form-urlencoded)".into(),
        ));
    }
    let body = match negotiate::read_body(&req, payload, 64 * 1024).await {
        Ok(b) => b,
        Err(ApiError::RequestTimeout(secs)) => {
            let mut answer = oauth_error(&TokenError::InvalidRequest(format!(
                "the form was not received within {secs} seconds"
            )));
            *answer.status_mut() = StatusCode::REQUEST_TIMEOUT;
            return answer;
        }
        Err(_) => return oauth_error(&TokenError::InvalidRequest("the form is too large".into())),
    };
    let form: TokenForm = match serde_urlencoded::from_bytes::<TokenForm>(&body) {
        Ok(f) => f,
        Err(_) => return oauth_error(&TokenError::InvalidRequest("the form is not valid".into())),
    };
    let ctx = TokenContext {
        db: &state.db,
        keys: &state.token_keys,
        cache: &state.jwks_cache,
        token_url: token_url(&state, &req),
        now: crate::clock::to_micros(state.clock.now()) / 1_000_000,
    };
    let claimed = form
        .client_assertion
        .as_deref()
        .and_then(clients::unverified_client)
        .filter(|c| c.len() <= 100);
    let address = req.peer_addr().map(|a| a.ip().to_string());
    let record = |tenant: String, client: String, status: u16| crate::db::audit::AuditRow {
        tenant,
        id: String::new(),
        recorded: crate::clock::to_micros(state.clock.now()),
        action: "E".into(),
        subtype: "token".into(),
        outcome: if status < 400 { "0" } else { "4" }.into(),
        status: i32::from(status),
        client,
        address: address.clone(),
        res_type: None,
        res_id: None,
        version: None,
        patient: None,
        query: None,
    };
    match clients::exchange(ctx, form).await {
        Ok(answer) => {
            tracing::info!(scope = %answer.scope, "access token issued");
            state.metrics.token(true);
            state
                .audit
                .record(record(answer.tenant.clone(), answer.client_id.clone(), 200))
                .await;
            HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .insert_header(("Pragma", "no-cache"))
                .json(answer)
        }
        Err(e) => {
            tracing::info!(error = ?e.answer().1["error"], "token request refused");
            state.metrics.token(false);
            let status = e.answer().0;
            let client = claimed.unwrap_or_else(|| "unknown".into());
            state
                .audit
                .record(record(state.tenant.to_string(), client, status))
                .await;
            oauth_error(&e)
        }
    }
}

/// `POST /auth/clients` (a token of the clinic with the `hep-admin` scope): registers a
/// client of that clinic. The body: `{"name": .., "scope": .., "jwks": {..}}` or
/// `"jwks_url": ".."`. Answers 201 with the client's id.
pub async fn register_client(
    req: HttpRequest,
    payload: web::Payload,
    state: State,
) -> HttpResponse {
    let result = async {
        let access = admin(&req, &state, "registering clients").await?;
        let body = negotiate::read_body(&req, payload, 256 * 1024).await?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let registration = Registration {
            tenant: access.tenant.clone(),
            name: text("name").unwrap_or_default(),
            scope: text("scope").unwrap_or_default(),
            jwks: v
                .get("jwks")
                .filter(|j| j.is_object())
                .map(Value::to_string),
            jwks_url: text("jwks_url"),
        };
        let now = crate::clock::to_micros(state.clock.now());
        let row = state.db.write(move |conn| {
            let row = clients::register(conn, &registration, now)?;
            clients::record_change(conn, &Actor::of(&access), "C", &row.client_id, 201, now)?;
            Ok::<_, ApiError>(row)
        })?;
        Ok(HttpResponse::Created().json(serde_json::json!({
            "client_id": row.client_id,
            "name": row.name,
            "scope": row.scope,
            "tenant": row.tenant,
            "token_endpoint": token_url(&state, &req),
        })))
    }
    .await;
    finish(&req, result)
}

/// The access of an administrator of the clinic (the `hep-admin` scope), or a 401/403.
pub(super) async fn admin(
    req: &HttpRequest,
    state: &State,
    what: &str,
) -> Result<crate::auth::Access, ApiError> {
    let mut access = crate::http::authn::verify(req.headers(), state).await?;
    access.address = req.peer_addr().map(|a| a.ip().to_string());
    if !access.admin {
        return Err(ApiError::Forbidden(format!(
            "{what} needs the `{}` scope",
            crate::auth::ADMIN_SCOPE
        )));
    }
    Ok(access)
}

/// `GET /auth/clients`: the clinic's registered clients.
pub async fn list_clients(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let access = admin(&req, &state, "listing clients").await?;
        let tenant = access.tenant.clone();
        let rows = state
            .db
            .read(move |conn| Ok(crate::db::clients::list(conn, &tenant)?))
            .await?;
        let list: Vec<Value> = rows.iter().map(clients::describe).collect();
        Ok(HttpResponse::Ok().json(serde_json::json!({ "clients": list })))
    }
    .await;
    finish(&req, result)
}

/// `PUT /auth/clients/{id}/keys` with `{"jwks": {...}}` or `{"jwks_url": "..."}`: new
/// keys for a client (rotation).
pub async fn rotate_client_keys(
    req: HttpRequest,
    payload: web::Payload,
    state: State,
) -> HttpResponse {
    let result = async {
        let access = admin(&req, &state, "changing a client's keys").await?;
        let id = req.match_info().get("id").unwrap_or_default().to_string();
        let body = negotiate::read_body(&req, payload, 256 * 1024).await?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
        let jwks = v
            .get("jwks")
            .filter(|j| j.is_object())
            .map(Value::to_string);
        let jwks_url = v
            .get("jwks_url")
            .and_then(Value::as_str)
            .map(str::to_string);
        let tenant = access.tenant.clone();
        let now = crate::clock::to_micros(state.clock.now());
        let row = state.db.write(move |conn| {
            clients::rotate_keys(conn, &tenant, &id, jwks.as_deref(), jwks_url.as_deref())?;
            let row = crate::db::clients::list(conn, &tenant)?
                .into_iter()
                .find(|c| c.client_id == id)
                .ok_or_else(|| ApiError::NotFound(format!("there is no client {id}")))?;
            clients::record_change(conn, &Actor::of(&access), "U", &id, 200, now)?;
            Ok::<_, ApiError>(row)
        })?;
        Ok(HttpResponse::Ok().json(clients::describe(&row)))
    }
    .await;
    finish(&req, result)
}

/// `DELETE /auth/clients/{id}`: removes a client.
pub async fn remove_client(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let access = admin(&req, &state, "removing a client").await?;
        let id = req.match_info().get("id").unwrap_or_default().to_string();
        let tenant = access.tenant.clone();
        let now = crate::clock::to_micros(state.clock.now());
        state.db.write(move |conn| {
            clients::remove(conn, &tenant, &id)?;
            clients::record_change(conn, &Actor::of(&access), "D", &id, 204, now)
        })?;
        Ok(HttpResponse::NoContent().finish())
    }
    .await;
    finish(&req, result)
}
