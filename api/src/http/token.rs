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

/// The id and secret of `Authorization: Basic` (each form-encoded, RFC 6749 §2.3.1),
/// when the request has one.
pub(super) fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, TokenError> {
    use base64::Engine;
    let Some(header) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad =
        || TokenError::InvalidClient("the Authorization header is not Basic id:secret".into());
    let text = header.to_str().map_err(|_| bad())?;
    let Some((scheme, value)) = text.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unform = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    Ok(Some((unform(id)?, unform(secret)?)))
}

/// `POST /auth/token`: `client_credentials` (a backend service's signed assertion),
/// `authorization_code` and `refresh_token` (apps of people's sign-in).
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
    let basic = match basic_credentials(&req) {
        Ok(b) => b,
        Err(e) => return oauth_error(&e),
    };
    let ctx = TokenContext {
        db: &state.db,
        keys: &state.token_keys,
        cache: &state.jwks_cache,
        token_url: token_url(&state, &req),
        now: crate::clock::to_micros(state.clock.now()) / 1_000_000,
        id_key: &state.id_key,
        origin: state.origin(&req),
        fhir_base: state.base_url(&req),
        basic,
    };
    let claimed = form
        .client_assertion
        .as_deref()
        .and_then(clients::unverified_client)
        .or_else(|| form.client_id.clone())
        .or_else(|| ctx.basic.as_ref().map(|(id, _)| id.clone()))
        .filter(|c| c.len() <= 100);
    let address = req.peer_addr().map(|a| a.ip().to_string());
    let record = |tenant: String, client: String, status: u16, patient: Option<String>| {
        crate::db::audit::AuditRow {
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
            patient,
            query: None,
        }
    };
    match clients::exchange(ctx, form).await {
        Ok(answer) => {
            tracing::info!(scope = %answer.scope, "access token issued");
            state.metrics.token(true);
            state
                .audit
                .record(record(
                    answer.tenant.clone(),
                    answer.client_id.clone(),
                    200,
                    answer.patient.clone(),
                ))
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
                .record(record(state.tenant.to_string(), client, status, None))
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
            kind: text("kind").unwrap_or_else(|| "backend".into()),
            redirect_uris: v
                .get("redirect_uris")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        };
        let now = crate::clock::to_micros(state.clock.now());
        let db = state.db.clone();
        let (row, secret) = super::rest::blocking(move || {
            db.write(move |conn| {
                let (row, secret) = clients::register(conn, &registration, now)?;
                clients::record_change(conn, &Actor::of(&access), "C", &row.client_id, 201, now)?;
                Ok::<_, ApiError>((row, secret))
            })
        })
        .await?;
        let mut answer = serde_json::json!({
            "client_id": row.client_id,
            "name": row.name,
            "scope": row.scope,
            "tenant": row.tenant,
            "kind": row.kind,
            "token_endpoint": token_url(&state, &req),
        });
        if let Some(uris) = &row.redirect_uris {
            answer["redirect_uris"] = uris.split_whitespace().collect::<Vec<_>>().into();
            answer["authorization_endpoint"] =
                format!("{}/auth/authorize", state.origin(&req)).into();
        }
        if let Some(s) = secret {
            answer["client_secret"] = s.into();
        }
        Ok(HttpResponse::Created()
            .insert_header(("Cache-Control", "no-store"))
            .json(answer))
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

#[derive(Debug, Default, serde::Deserialize)]
struct TokenOnly {
    #[serde(default)]
    token: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

/// The clinic of the caller of introspection: a backend service's access token
/// (`Authorization: Bearer`, system scopes), or an app's credentials.
async fn introspection_caller(
    req: &HttpRequest,
    state: &AppState,
    form: &TokenOnly,
) -> Result<String, TokenError> {
    let bearer = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer "));
    if bearer {
        let access = super::authn::verify(req.headers(), state)
            .await
            .map_err(|_| {
                TokenError::InvalidClient("the caller's access token is not valid".into())
            })?;
        if !access
            .scopes
            .0
            .iter()
            .any(|s| s.context == crate::auth::scopes::Context::System)
        {
            return Err(TokenError::InvalidClient(
                "introspection needs a backend service's token (system scopes)".into(),
            ));
        }
        return Ok(access.tenant);
    }
    let basic = basic_credentials(req)?;
    let client = clients::authenticate_app(
        &state.db,
        basic.as_ref(),
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .await?;
    if client.kind != "confidential" {
        return Err(TokenError::InvalidClient(
            "introspection needs a backend service's token or a confidential app's secret".into(),
        ));
    }
    Ok(client.tenant)
}

async fn read_form(req: &HttpRequest, payload: web::Payload) -> Result<TokenOnly, TokenError> {
    let body = negotiate::read_body(req, payload, 16 * 1024)
        .await
        .map_err(|_| TokenError::InvalidRequest("the form is too large or too slow".into()))?;
    serde_urlencoded::from_bytes::<TokenOnly>(&body)
        .map_err(|_| TokenError::InvalidRequest("the form is not valid".into()))
}

fn json_no_store(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .content_type("application/json")
        .body(body.to_string())
}

/// `POST /auth/introspect` (RFC 7662): whether a token of the caller's clinic is
/// active, with its scopes, app, person and patient.
pub async fn introspect(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let form = match read_form(&req, payload).await {
        Ok(f) => f,
        Err(e) => return oauth_error(&e),
    };
    let tenant = match introspection_caller(&req, &state, &form).await {
        Ok(t) => t,
        Err(e) => return oauth_error(&e),
    };
    let inactive = serde_json::json!({"active": false});
    let now = crate::clock::to_micros(state.clock.now()) / 1_000_000;
    // an access token of this server: its signature, lifetime and revocation
    if let Ok(claims) = state.token_keys.verify(&form.token, now) {
        if claims.tenant != tenant {
            return json_no_store(inactive);
        }
        // the same check as a request's: the token's grant still holds
        let revoked = crate::auth::bearer::verify(
            &form.token,
            now,
            &state.token_cache,
            &state.token_keys,
            state.oidc.as_deref(),
            &state.db,
        )
        .await
        .is_err();
        if revoked {
            return json_no_store(inactive);
        }
        let mut body = serde_json::json!({
            "active": true,
            "scope": claims.scope,
            "client_id": claims.sub,
            "token_type": "Bearer",
            "exp": claims.exp,
            "iat": claims.iat,
            "iss": claims.iss,
        });
        if let Some(p) = claims.patient {
            body["patient"] = p.into();
        }
        if let Some(u) = claims.fhir_user {
            body["fhirUser"] = format!("{}/{u}", state.base_url(&req)).into();
        }
        return json_no_store(body);
    }
    // a refresh token of the clinic
    let (hash, t) = (
        crate::auth::authorize::secret_hash(&form.token),
        tenant.clone(),
    );
    let found = state
        .db
        .read(move |conn| {
            let Some((grant_id, expires, unused)) =
                crate::db::grants::refresh_grant(conn, &t, &hash)?
            else {
                return Ok(None);
            };
            let holds = crate::db::grants::grant_holds(conn, &t, &grant_id)?;
            Ok(crate::db::grants::grant(conn, &t, &grant_id)?
                .map(|g| (g, expires, unused && holds)))
        })
        .await;
    match found {
        Ok(Some((g, expires, true))) if expires > now => {
            let mut body = serde_json::json!({
                "active": true,
                "scope": g.scope,
                "client_id": g.client_id,
                "token_type": "refresh_token",
                "exp": expires,
                "iat": g.created_at,
            });
            if let Some(p) = g.patient {
                body["patient"] = p.into();
            }
            json_no_store(body)
        }
        Ok(_) => json_no_store(inactive),
        Err(_) => oauth_error(&TokenError::Server),
    }
}

/// `POST /auth/revoke` (RFC 7009): an app revokes one of its tokens; a refresh token
/// or an access token of a person's sign-in revokes the whole sign-in (its grant).
/// Answers 200 whether or not the token was known.
pub async fn revoke(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let form = match read_form(&req, payload).await {
        Ok(f) => f,
        Err(e) => return oauth_error(&e),
    };
    let basic = match basic_credentials(&req) {
        Ok(b) => b,
        Err(e) => return oauth_error(&e),
    };
    let client = match clients::authenticate_app(
        &state.db,
        basic.as_ref(),
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return oauth_error(&e),
    };
    let now = crate::clock::to_micros(state.clock.now()) / 1_000_000;
    let claims = state.token_keys.verify(&form.token, now).ok();
    let (db, tenant, cid, token) = (
        state.db.clone(),
        client.tenant.clone(),
        client.client_id.clone(),
        form.token.clone(),
    );
    let done = super::rest::blocking(move || {
        db.write(move |conn| {
            if let Some(c) = &claims {
                if c.tenant != tenant || c.sub != cid {
                    return Ok::<_, ApiError>(false);
                }
                // an app's tokens all name their grant (a backend service's tokens are
                // not an app's: they end with the client's removal)
                return Ok(match &c.sid {
                    Some(sid) => crate::db::grants::revoke_grant(conn, &tenant, sid, now)?,
                    None => false,
                });
            }
            let hash = crate::auth::authorize::secret_hash(&token);
            match crate::db::grants::refresh_grant(conn, &tenant, &hash)? {
                Some((grant_id, _, _)) => {
                    let ours = crate::db::grants::grant(conn, &tenant, &grant_id)?
                        .is_some_and(|g| g.client_id == cid);
                    Ok(ours && crate::db::grants::revoke_grant(conn, &tenant, &grant_id, now)?)
                }
                None => Ok(false),
            }
        })
    })
    .await;
    match done {
        Ok(revoked) => {
            if revoked {
                state
                    .audit
                    .record(crate::db::audit::AuditRow {
                        tenant: client.tenant.clone(),
                        id: String::new(),
                        recorded: crate::clock::to_micros(state.clock.now()),
                        action: "E".into(),
                        subtype: "revocation".into(),
                        outcome: "0".into(),
                        status: 200,
                        client: client.client_id.clone(),
                        address: req.peer_addr().map(|a| a.ip().to_string()),
                        res_type: None,
                        res_id: None,
                        version: None,
                        patient: None,
                        query: None,
                    })
                    .await;
            }
            HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        Err(_) => oauth_error(&TokenError::Server),
    }
}

#[derive(Debug, serde::Deserialize)]
struct LaunchBody {
    patient: String,
    #[serde(default)]
    encounter: Option<String>,
}

/// `POST /auth/launch` (a staff member's or a backend service's token that may read
/// the patient): an EHR launch context, `{"launch": ".."}`, single use, five minutes.
pub async fn launch(req: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let result = async {
        let access = super::authn::verify(req.headers(), &state).await?;
        let patient_person = match access.user.as_deref() {
            Some(u) => u.starts_with("Patient/"),
            None => !access.scopes.beyond_patient(),
        };
        if patient_person {
            return Err(ApiError::Forbidden(
                "a patient's token cannot start an EHR launch".into(),
            ));
        }
        let b: LaunchBody = serde_json::from_slice(&body)
            .or_else(|_| serde_urlencoded::from_bytes(&body))
            .map_err(|_| {
                ApiError::BadRequest(
                    "the body is {\"patient\": \"<Patient id>\", \"encounter\": \"<Encounter id>\"}".into(),
                )
            })?;
        let patient = b.patient.trim_start_matches("Patient/").to_string();
        if !fhir_mapping::resource_types::is_valid_id(&patient) {
            return Err(ApiError::BadRequest(format!("`{patient}` is not a Patient id")));
        }
        let limits = access.require("Patient", crate::auth::scopes::Perm::Read)?;
        let (tenant, p) = (access.tenant.clone(), patient.clone());
        let visible = state
            .db
            .read(move |conn| {
                let row = crate::db::store::current(
                    conn,
                    crate::db::store::Key { tenant: &tenant, res_type: "Patient", res_id: &p },
                )?;
                Ok(row.is_some_and(|r| !r.deleted))
            })
            .await?;
        if !visible || limits.patient.is_some() {
            return Err(ApiError::NotFound(format!("Patient/{patient} is not known")));
        }
        let value = crate::auth::authorize::random_secret()?;
        let now = crate::clock::to_micros(state.clock.now()) / 1_000_000;
        let (db, tenant, hash) = (
            state.db.clone(),
            access.tenant.clone(),
            crate::auth::authorize::secret_hash(&value),
        );
        let encounter = b.encounter.map(|e| e.trim_start_matches("Encounter/").to_string());
        super::rest::blocking(move || {
            db.write(move |conn| {
                Ok::<_, ApiError>(crate::db::grants::insert_launch(
                    conn,
                    &tenant,
                    &hash,
                    &patient,
                    encounter.as_deref(),
                    now + crate::auth::authorize::LAUNCH_SECONDS,
                )?)
            })
        })
        .await?;
        Ok(value)
    }
    .await;
    match result {
        Ok(value) => json_no_store(serde_json::json!({
            "launch": value,
            "expires_in": crate::auth::authorize::LAUNCH_SECONDS
        })),
        Err(e) => finish(&req, Err(e)),
    }
}
