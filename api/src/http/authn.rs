//! Authentication of requests: the bearer token of every request under `/fhir` (but
//! the open routes), its rate, and the [`Access`] it gives, stored in the request.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};

use crate::auth::{Access, MISSING};
use crate::error::ApiError;

/// The access of a request (set by [`authenticate`]).
pub fn access(req: &HttpRequest) -> Result<Access, ApiError> {
    req.extensions()
        .get::<Access>()
        .cloned()
        .ok_or_else(|| ApiError::Unauthorized(MISSING.into()))
}

/// Routes that answer without a token.
fn is_open(req: &ServiceRequest) -> bool {
    let path = req.path().trim_end_matches('/');
    req.method() == actix_web::http::Method::GET
        && (path.ends_with("/fhir/metadata")
            || path.ends_with("/fhir/.well-known/smart-configuration"))
}

/// Middleware: checks the bearer token of every request under `/fhir` (but the open
/// routes) and stores its [`Access`] in the request.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    if is_open(&req) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let verified = match req.app_data::<web::Data<super::state::AppState>>() {
        Some(state) => verify(req.headers(), state).await.and_then(|mut access| {
            access.address = req.peer_addr().map(|a| a.ip().to_string());
            if let Some(limit) = &state.rate_limit {
                limit.check(&format!("{}/{}", access.tenant, access.client))?;
            }
            Ok(access)
        }),
        None => Err(ApiError::internal("no application state")),
    };
    // a clinic's first request sets it up (its definitions and starter library)
    let verified = match (
        verified,
        req.app_data::<web::Data<super::state::AppState>>(),
    ) {
        (Ok(access), Some(state)) => state.clinics.ensure(&access.tenant).await.map(|()| access),
        (other, _) => other,
    };
    match verified {
        Ok(access) => {
            // the reads of this request take turns within its client's share of the
            // database readers
            let client: std::sync::Arc<str> = format!("{}/{}", access.tenant, access.client).into();
            req.extensions_mut().insert(access);
            crate::db::as_client(client, next.call(req))
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(e) => {
            let out = super::negotiate::error_output(req.request());
            let response = e.to_response(out.format, out.pretty);
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// The access of the bearer token in `headers`.
pub async fn verify(
    headers: &actix_web::http::header::HeaderMap,
    state: &super::state::AppState,
) -> Result<Access, ApiError> {
    let header = headers
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized(MISSING.into()))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| {
            let (scheme, token) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })?;
    let now = crate::clock::to_micros(state.clock.now()) / 1_000_000;
    crate::auth::bearer::verify(
        token,
        now,
        &state.token_cache,
        &state.token_keys,
        state.oidc.as_deref(),
        &state.db,
    )
    .await
}
