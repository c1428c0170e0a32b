//! `GET /health/live` and `GET /health/ready`: no token, no clinic or patient data, the
//! state of each check as `application/health+json`, never cached by a proxy.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::state::AppState;

const HEALTH_JSON: &str = "application/health+json";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
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
