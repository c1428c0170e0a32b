//! `GET /health/live` and `GET /health/ready`: no token, no clinic or patient data, the
//! state of each check as `application/health+json`, never cached by a proxy. And
//! `GET /metrics`, for the `hep-admin` scope.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::state::AppState;
use crate::auth::ADMIN_SCOPE;
use crate::error::ApiError;

const HEALTH_JSON: &str = "application/health+json";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}

/// `GET /metrics`: the Prometheus / OpenMetrics text, for a token with the `hep-admin`
/// scope of the server's own clinic (`Authorization: Bearer`, as a Prometheus scrape job
/// sends it): the figures count every clinic's requests.
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let access = match super::authn::verify(req.headers(), &state).await {
        Ok(a) => a,
        Err(e) => return e.to_response(fhir_mapping::Format::Json, false),
    };
    // the figures are the whole server's: only the operator's own clinic reads them
    if !access.admin || access.tenant != state.tenant.as_str() {
        return ApiError::Forbidden(format!(
            "the metrics are read with the `{ADMIN_SCOPE}` scope of the server's own clinic (`{}`)",
            state.tenant.as_str()
        ))
        .to_response(fhir_mapping::Format::Json, false);
    }
    let now = crate::clock::to_micros(state.clock.now());
    let horizon_end = crate::clock::to_micros(state.clock.now() + state.sessions.horizon);
    let backlog = match state
        .db
        .read(move |conn| Ok(crate::db::backlog::read(conn, now, horizon_end)?))
        .await
    {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).to_response(fhir_mapping::Format::Json, false),
    };
    let text = state.metrics.scrape(
        &state.db,
        &state.audit,
        &crate::metrics::ScrapedBacklog {
            backlog,
            now,
            horizon_end,
        },
    );
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(text)
}

/// The process serves requests.
async fn live() -> HttpResponse {
    answer(
        StatusCode::OK,
        json!({"status": "pass", "description": "hep-server liveness"}),
    )
}

/// The process can do its work: 200 when every check passes, else 503 with the checks.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let report = state.readiness.report().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    answer(status, report.body)
}

fn answer(status: StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(HEALTH_JSON)
        .insert_header(("Cache-Control", "no-store"))
        .body(body.to_string())
}
