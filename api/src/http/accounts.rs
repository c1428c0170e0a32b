//! People's accounts over HTTP: a patient's invitation (`Patient/[id]/$invite`) and the
//! end of their access (`Patient/[id]/$revoke-access`), and the clinic's staff accounts
//! for administrators (`/auth/users`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::negotiate::{self, finish};
use super::rest::{blocking, path_id};
use super::state::AppState;
use crate::auth::accounts::{self, Role};
use crate::auth::scopes::Perm;
use crate::clock::to_micros;
use crate::error::ApiError;

type State = web::Data<AppState>;

/// The Patient of the path, if the request's token may write it and see it: its
/// tenant and id, and the limits its lookups keep to.
fn writer_of_patient(
    req: &HttpRequest,
    what: &str,
) -> Result<(crate::auth::Access, crate::auth::Limits, String), ApiError> {
    let id = path_id(req)?;
    let access = super::authn::access(req)?;
    access.require_beyond_patient(what)?;
    let limits = access.require("Patient", Perm::Update)?;
    Ok((access, limits, id))
}

/// A 404 unless the clinic's Patient `id` is live and within `limits`.
fn check_patient(
    conn: &mut crate::db::AnyConnection,
    tenant: &str,
    id: &str,
    limits: &crate::auth::Limits,
) -> Result<(), ApiError> {
    let key = crate::db::store::Key {
        tenant,
        res_type: "Patient",
        res_id: id,
    };
    if crate::db::store::exists(conn, key)?
        && crate::auth::visibility::visible(conn, tenant, "Patient", id, limits)?
    {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("Patient/{id} does not exist")))
    }
}

/// `POST Patient/[id]/$invite`: a new one-time code with which the patient creates
/// their account (or replaces its username and password); earlier codes are void.
/// Answers `Parameters` with `code`, `expires` and `url` (the page where it is typed).
pub async fn invite(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let (access, limits, id) = writer_of_patient(&req, "$invite")?;
        let out = negotiate::output(&req, &negotiate::query_pairs(&req)?)?;
        let now_micros = to_micros(state.clock.now());
        let st = state.clone();
        let (tenant, patient) = (access.tenant.clone(), id.clone());
        let invitation = blocking(move || {
            st.db.write(move |conn| {
                check_patient(conn, &tenant, &patient, &limits)?;
                accounts::invite(
                    conn,
                    &tenant,
                    &patient,
                    now_micros / 1_000_000,
                    accounts::INVITATION_SECONDS,
                )
            })
        })
        .await?;
        record(&state, &access, "C", &id, 200, now_micros).await;
        let base = state.base_url(&req);
        let origin = base.strip_suffix("/fhir").unwrap_or(&base);
        let body = json!({
            "resourceType": "Parameters",
            "parameter": [
                {"name": "code", "valueString": invitation.code},
                {"name": "expires", "valueInstant": seconds_instant(invitation.expires)},
                {"name": "url", "valueUri": format!("{origin}/auth/redeem")}
            ]
        });
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal_from("serialising JSON", e))?;
        let mut answer = negotiate::fhir_response(StatusCode::OK, out, &bytes)?;
        answer.headers_mut().insert(
            actix_web::http::header::CACHE_CONTROL,
            actix_web::http::header::HeaderValue::from_static("no-store"),
        );
        Ok(answer)
    }
    .await;
    finish(&req, result)
}

/// `POST Patient/[id]/$revoke-access`: the patient's invitations are void and their
/// account is disabled, every grant void, until a new invitation is redeemed. 204.
pub async fn revoke_access(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let (access, limits, id) = writer_of_patient(&req, "$revoke-access")?;
        let now_micros = to_micros(state.clock.now());
        let st = state.clone();
        let (tenant, patient) = (access.tenant.clone(), id.clone());
        blocking(move || {
            st.db.write(move |conn| {
                check_patient(conn, &tenant, &patient, &limits)?;
                accounts::revoke_patient(conn, &tenant, &patient, now_micros / 1_000_000)
            })
        })
        .await?;
        record(&state, &access, "D", &id, 204, now_micros).await;
        Ok(HttpResponse::NoContent().finish())
    }
    .await;
    finish(&req, result)
}

/// Queues the audit record of a patient's invitation (`C`) or revoked access (`D`).
async fn record(
    state: &AppState,
    access: &crate::auth::Access,
    action: &str,
    patient: &str,
    status: u16,
    now_micros: i64,
) {
    let mut row = accounts::change_row(
        &access.tenant,
        &access.client,
        access.address.as_deref(),
        action,
        &format!("Patient/{patient}"),
        status,
        now_micros,
    );
    // given by the audit writer, in order
    row.id = String::new();
    state.audit.record(row).await;
}

/// An instant in seconds as a FHIR `instant`.
fn seconds_instant(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// `POST /auth/users` (the clinic's `hep-admin` scope), body `{"practitioner":
/// "Practitioner/x", "username": "..", "role": "therapist" | "admin"}`: a staff account
/// and its one-time set-up code. 201 `{"user_id", "username", "setup_code", "expires"}`.
pub async fn add_user(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let result = async {
        let access = super::token::admin(&req, &state, "adding accounts").await?;
        let body = negotiate::read_body(&req, payload, 16 * 1024).await?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (practitioner, username) = (text("practitioner"), text("username"));
        let role = match Role::parse(&text("role")) {
            Some(r @ (Role::Therapist | Role::Admin)) => r,
            _ => {
                return Err(ApiError::BadRequest(
                    "role is `therapist` or `admin`".into(),
                ));
            }
        };
        let now_micros = to_micros(state.clock.now());
        let st = state.clone();
        let (tenant, client, address) = (
            access.tenant.clone(),
            access.client.clone(),
            access.address.clone(),
        );
        let name = username.clone();
        let setup = blocking(move || {
            st.db.write(move |conn| {
                let setup = accounts::add_staff(
                    conn,
                    &tenant,
                    &practitioner,
                    &name,
                    role,
                    now_micros / 1_000_000,
                )?;
                accounts::record_change(
                    conn,
                    &tenant,
                    &client,
                    address.as_deref(),
                    "C",
                    &practitioner,
                    201,
                    now_micros,
                )?;
                Ok(setup)
            })
        })
        .await?;
        Ok(HttpResponse::Created()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({
                "user_id": setup.user_id,
                "username": accounts::normalize_username(&username).unwrap_or(username),
                "setup_code": setup.code,
                "expires": seconds_instant(setup.expires),
            })))
    }
    .await;
    finish(&req, result)
}

/// `GET /auth/users`: the clinic's accounts (no hash, no code).
pub async fn list_users(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let access = super::token::admin(&req, &state, "listing accounts").await?;
        let tenant = access.tenant.clone();
        let rows = state
            .db
            .read(move |conn| Ok(crate::db::accounts::list(conn, &tenant)?))
            .await?;
        let list: Vec<Value> = rows.iter().map(accounts::describe).collect();
        Ok(HttpResponse::Ok().json(json!({ "users": list })))
    }
    .await;
    finish(&req, result)
}

/// `DELETE /auth/users/{id}`: disables an account and voids its grants. 204.
pub async fn remove_user(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let access = super::token::admin(&req, &state, "disabling accounts").await?;
        let id = req.match_info().get("id").unwrap_or_default().to_string();
        let now_micros = to_micros(state.clock.now());
        let st = state.clone();
        blocking(move || {
            st.db.write(move |conn| {
                let row = crate::db::accounts::by_id(conn, &access.tenant, &id)?
                    .ok_or_else(|| ApiError::NotFound(format!("there is no account {id}")))?;
                accounts::disable(conn, &access.tenant, &id, now_micros / 1_000_000)?;
                accounts::record_change(
                    conn,
                    &access.tenant,
                    &access.client,
                    access.address.as_deref(),
                    "D",
                    &row.fhir_user,
                    204,
                    now_micros,
                )
            })
        })
        .await?;
        Ok(HttpResponse::NoContent().finish())
    }
    .await;
    finish(&req, result)
}
