//! The span of each request: method, route template, status, latency and request id,
//! logged and counted in the metrics.
//! Never a body, a query string, a resource id or anything about a patient.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

const REQUEST_ID: &str = "x-request-id";

/// A client-supplied request id is kept only when it is short and plain.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The request span middleware; echoes `X-Request-Id`.
pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(&req);
    let method = req.method().as_str().to_string();
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
        request_id = %id,
    );
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let latency = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(mut res) => {
            let route = res
                .request()
                .match_pattern()
                .map_or_else(|| "(no route)".to_string(), |p| template(&p));
            let status = res.status().as_u16();
            span.record("route", route.as_str());
            span.record("status", status);
            span.record("latency_ms", latency);
            span.in_scope(|| tracing::info!("request completed"));
            if let Some(state) = res
                .request()
                .app_data::<actix_web::web::Data<super::state::AppState>>()
            {
                state
                    .metrics
                    .request(&method, &route, status, latency / 1000.0);
            }
            if let Ok(v) = HeaderValue::from_str(&id) {
                res.headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID), v);
            }
            Ok(res)
        }
        Err(e) => {
            span.in_scope(|| tracing::warn!(latency_ms = latency, "request failed"));
            Err(e)
        }
    }
}

/// A route pattern without the expressions of its segments: `/{type}/{id}` for
/// `/{type:[A-Z]..}/{id:[A-Za-z0-9.-]..}`.
fn template(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut depth = 0usize;
    let mut skipping = false;
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push(c);
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    skipping = false;
                    out.push(c);
                }
            }
            ':' if depth == 1 => skipping = true,
            _ if skipping || depth > 1 => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_leave_out_segment_expressions() {
        assert_eq!(
            super::template("/fhir/{type:[A-Z][A-Za-z]{0,63}}/{id:[A-Za-z0-9.-]{1,64}}"),
            "/fhir/{type}/{id}"
        );
        assert_eq!(
            super::template("/fhir/{type}/_history"),
            "/fhir/{type}/_history"
        );
    }
}
