//! Content negotiation (`_format`, `Accept`, `Content-Type`), `_pretty`, `Prefer`, and
//! reading request bodies within the size limit.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use fhir_mapping::Format;
use futures_util::StreamExt;

use crate::error::{ApiError, content_type};

/// The query string as ordered pairs (percent-decoded).
pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .map_err(|_| ApiError::BadRequest("the query string is not valid form encoding".into()))
}

/// Whether a `Content-Type` names a FHIR format (or plain JSON or XML).
pub fn is_fhir_mime(mime: &str) -> bool {
    format_of_mime(mime).is_some()
}

fn format_of_mime(mime: &str) -> Option<Format> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/fhir+json"
        | "application/json"
        | "application/json+fhir"
        | "json"
        | "text/json" => Some(Format::Json),
        "application/fhir+xml"
        | "application/xml"
        | "application/xml+fhir"
        | "xml"
        | "text/xml" => Some(Format::Xml),
        _ => None,
    }
}

/// How the response should be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub format: Format,
    pub pretty: bool,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            format: Format::Json,
            pretty: false,
        }
    }
}

/// The response format: `_format` wins over `Accept`; JSON when neither says.
pub fn output(req: &HttpRequest, query: &[(String, String)]) -> Result<Output, ApiError> {
    let pretty = match query
        .iter()
        .find(|(k, _)| k == "_pretty")
        .map(|(_, v)| v.as_str())
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::BadRequest("_pretty must be true or false".into())),
    };
    if let Some((_, f)) = query.iter().find(|(k, _)| k == "_format") {
        return format_of_mime(f)
            .map(|format| Output { format, pretty })
            .ok_or_else(|| ApiError::NotAcceptable(format!("unsupported _format `{f}`")));
    }
    let Some(accept) = req.headers().get(header::ACCEPT) else {
        return Ok(Output {
            format: Format::Json,
            pretty,
        });
    };
    let accept = accept.to_str().unwrap_or("");
    for mime in media_ranges(accept) {
        if let Some(format) = format_of_mime(mime) {
            return Ok(Output { format, pretty });
        }
        if mime == "*/*" || mime == "application/*" || mime.is_empty() {
            return Ok(Output {
                format: Format::Json,
                pretty,
            });
        }
    }
    Err(ApiError::NotAcceptable(
        "this server answers application/fhir+json or application/fhir+xml".into(),
    ))
}

/// The media ranges of an `Accept` header, best first: by quality, then in the order
/// written; ranges with `q=0` are left out.
pub fn media_ranges(accept: &str) -> Vec<&str> {
    let mut ranges: Vec<(f32, &str)> = accept
        .split(',')
        .map(|r| {
            let mut parts = r.split(';');
            let mime = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (q, mime)
        })
        .filter(|(q, _)| *q > 0.0)
        .collect();
    // A stable sort keeps the written order among equal qualities.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.into_iter().map(|(_, m)| m).collect()
}

/// The best output for an error response: the request's format when it has a valid one.
pub fn error_output(req: &HttpRequest) -> Output {
    query_pairs(req)
        .ok()
        .and_then(|q| output(req, &q).ok())
        .unwrap_or_default()
}

/// The format of the request body, from `Content-Type`.
pub fn input_format(req: &HttpRequest) -> Result<Format, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "a Content-Type of application/fhir+json or application/fhir+xml is required"
                    .into(),
            )
        })?;
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "json" || essence == "xml" {
        return Err(ApiError::UnsupportedMediaType(format!(
            "unsupported Content-Type `{ct}`"
        )));
    }
    format_of_mime(ct)
        .ok_or_else(|| ApiError::UnsupportedMediaType(format!("unsupported Content-Type `{ct}`")))
}

/// What the client asked to get back after a write (`Prefer: return=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    Representation,
    OperationOutcome,
}

/// The `Prefer` header's `return` preference (representation when absent).
pub fn prefer_return(req: &HttpRequest) -> Return {
    prefer_return_given(req).unwrap_or(Return::Representation)
}

/// The `Prefer` header's `return` preference, when it states one.
pub fn prefer_return_given(req: &HttpRequest) -> Option<Return> {
    for value in req.headers().get_all("Prefer") {
        for token in value.to_str().unwrap_or("").split([',', ';']) {
            match token.trim() {
                "return=minimal" => return Some(Return::Minimal),
                "return=representation" => return Some(Return::Representation),
                "return=OperationOutcome" => return Some(Return::OperationOutcome),
                _ => {}
            }
        }
    }
    None
}

/// Whether the `Prefer` header asks for lenient handling of search parameters
/// (`handling=lenient`; strict is the default).
pub fn prefer_lenient(req: &HttpRequest) -> bool {
    req.headers().get_all("Prefer").any(|value| {
        value
            .to_str()
            .unwrap_or("")
            .split([',', ';'])
            .any(|t| t.trim() == "handling=lenient")
    })
}

/// Reads the request body, refusing more than `limit` bytes (413) before reading them
/// when `Content-Length` says so, and while reading otherwise; a body that does not
/// arrive within `--body-timeout-secs` is a 408 (`deadline`).
pub async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let body = read_body_or_nothing(req, payload, limit).await?;
    if body.is_empty() {
        return Err(ApiError::BadRequest("the request has no body".into()));
    }
    Ok(body)
}

/// [`read_body`] for a request whose body may be empty.
pub async fn read_body_or_nothing(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match super::deadline::timed_out(&e) {
            Some(secs) => ApiError::RequestTimeout(secs),
            None => ApiError::BadRequest("the request body could not be read".into()),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The `Idempotency-Key` of a POST, PUT or PATCH, with the fingerprint of the request (method, path
/// and body): visible ASCII, 1 to 255 characters.
pub fn idempotency(
    req: &HttpRequest,
    body: &[u8],
) -> Result<Option<crate::service::Idempotency>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Idempotency-Key is 1 to 255 visible ASCII characters (a UUID is a good key)"
                    .into(),
            )
        })?;
    let mut request = format!("{} {}\n", req.method(), req.path()).into_bytes();
    request.extend_from_slice(body);
    Ok(Some(crate::service::Idempotency {
        key: key.to_string(),
        fingerprint: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, &request).to_string(),
    }))
}

/// Turns a handler result into the response, rendering errors as OperationOutcome in the
/// request's format.
pub fn finish(req: &HttpRequest, result: Result<HttpResponse, ApiError>) -> HttpResponse {
    match result {
        Ok(r) => r,
        Err(e) => {
            let out = error_output(req);
            e.to_response(out.format, out.pretty)
        }
    }
}

/// Renders FHIR JSON in the negotiated output.
pub fn render(out: Output, json: &[u8]) -> Result<Vec<u8>, ApiError> {
    fhir_mapping::render(json, out.format, out.pretty)
        .map_err(|e| ApiError::internal_from("rendering failed", e))
}

/// A response with a FHIR body in the negotiated output.
pub fn fhir_response(
    status: StatusCode,
    out: Output,
    json: &[u8],
) -> Result<HttpResponse, ApiError> {
    let body = render(out, json)?;
    Ok(HttpResponse::build(status)
        .content_type(content_type(out.format))
        .body(body))
}
