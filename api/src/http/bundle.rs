//! `POST /fhir` with a transaction or batch Bundle, and `$process-message` for referral
//! messages.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use fhir_mapping::transaction::{self, RequestBundle};
use fhir_mapping::{MappingError, ParsedResource, parse_resource};

use super::negotiate::{self, Return};
use super::negotiate::{fhir_response, finish};
use super::rest::{blocking, mark_replayed, only_params};
use super::state::AppState;
use crate::auth::{self, Access, scopes::Perm};
use crate::error::ApiError;
use crate::transaction::{Settings, process};

type State = web::Data<AppState>;

/// What the entries of the response carry: `Prefer: return=` when given, else only the
/// `response` of each entry.
fn returns(req: &HttpRequest) -> crate::transaction::Return {
    match negotiate::prefer_return_given(req) {
        Some(Return::Representation) => crate::transaction::Return::Representation,
        Some(Return::OperationOutcome) => crate::transaction::Return::OperationOutcome,
        Some(Return::Minimal) | None => crate::transaction::Return::Minimal,
    }
}

/// The request Bundle read, within the configured limits.
fn read_bundle(
    state: &AppState,
    body: &[u8],
    format: fhir_mapping::Format,
) -> Result<ParsedResource, ApiError> {
    let parsed = parse_resource(body, format, &state.limits)?;
    if parsed.resource_type() != "Bundle" {
        return Err(ApiError::BadRequest(format!(
            "the base URL takes a Bundle, not a {}",
            parsed.resource_type()
        )));
    }
    let entries = parsed
        .json()
        .get("entry")
        .and_then(serde_json::Value::as_array)
        .map_or(0, Vec::len);
    if entries > state.max_bundle_entries {
        return Err(ApiError::TooLarge(format!(
            "the Bundle has {entries} entries; this server takes at most {} per Bundle (split it, or raise --max-bundle-entries)",
            state.max_bundle_entries
        )));
    }
    Ok(parsed)
}

/// A 403 unless the access allows every entry of the Bundle, without limits: a Bundle
/// takes user or system scopes (patient apps write one resource at a time), and its
/// entries are checked before any of them runs.
fn authorize_entries(access: &Access, request: &RequestBundle) -> Result<(), ApiError> {
    access.require_beyond_patient("a transaction or batch Bundle")?;
    for e in request.entries.iter().flatten() {
        let Some(target) = transaction::parse_url(&e.url, "") else {
            continue;
        };
        let perm = match (e.method, &target) {
            (transaction::Method::Post, _) => Perm::Create,
            (transaction::Method::Put | transaction::Method::Patch, _) => Perm::Update,
            (transaction::Method::Delete, _) => Perm::Delete,
            (_, transaction::Target::Type(_) | transaction::Target::Search(..)) => Perm::Search,
            _ => Perm::Read,
        };
        let limits = access
            .require(target.resource_type(), perm)
            .map_err(|err| err.in_entry(e.index, e.label()))?;
        if !limits.is_open() {
            return Err(ApiError::Forbidden(format!(
                "{}: a scope restricts {}; Bundles take unrestricted scopes",
                e.label(),
                target.resource_type()
            )));
        }
    }
    Ok(())
}

/// How the server processes Bundles (the answer: only each entry's `response`).
fn settings(state: &AppState, base: String) -> Settings {
    Settings {
        base,
        limits: state.limits,
        max_body_bytes: state.max_body_bytes,
        max_binary_bytes: state.max_binary_bytes,
        max_patch_operations: state.max_patch_operations,
        answer: state.bundle_answer,
        returns: crate::transaction::Return::Minimal,
    }
}

fn invalid(issues: Vec<fhir_mapping::Issue>) -> ApiError {
    ApiError::Invalid(MappingError { issues })
}

/// `POST [base]` with a `transaction` or `batch` Bundle (R4 http.html#transaction).
pub async fn transaction(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let result = async {
        let access = super::authn::access(&req)?;
        access.require_beyond_patient("a transaction or batch Bundle")?;
        let query = negotiate::query_pairs(&req)?;
        only_params(&query, &["_format", "_pretty"])?;
        let out = negotiate::output(&req, &query)?;
        let format = negotiate::input_format(&req)?;
        let body = negotiate::read_body(&req, payload, state.max_bundle_bytes).await?;
        let idempotency = negotiate::idempotency(&req, &body)?;
        let settings = Settings {
            returns: returns(&req),
            ..settings(&state, state.base_url(&req))
        };
        let st = state.clone();
        let (bundle, replayed) = blocking(move || {
            let parsed = read_bundle(&st, &body, format)?;
            let request: RequestBundle = transaction::read_request(parsed).map_err(invalid)?;
            authorize_entries(&access, &request)?;
            let scope = st.scope_for(&access, &auth::Limits::default());
            process(&st.db, scope, request, settings, idempotency)
        })
        .await?;
        let mut response = fhir_response(StatusCode::OK, out, &bundle)?;
        if replayed {
            mark_replayed(&mut response);
        }
        Ok(response)
    }
    .await;
    finish(&req, result)
}

/// `POST [base]/$process-message` with a referral message (BSeR style: MessageHeader
/// event `v2-0003#I12`, focus the referral Task): its resources are stored as one
/// transaction (conditional creates on their identifiers, so a message sent again
/// changes nothing) and the answer is a response message.
pub async fn process_message(
    req: HttpRequest,
    payload: web::Payload,
    state: State,
) -> HttpResponse {
    let result = async {
        super::authn::access(&req)?.require_beyond_patient("$process-message")?;
        let query = negotiate::query_pairs(&req)?;
        only_params(&query, &["_format", "_pretty", "async"])?;
        if query.iter().any(|(k, v)| k == "async" && v == "true") {
            return Err(ApiError::BadRequest(
                "messages are processed synchronously here (async=false)".into(),
            ));
        }
        let out = negotiate::output(&req, &query)?;
        let format = negotiate::input_format(&req)?;
        let body = negotiate::read_body(&req, payload, state.max_bundle_bytes).await?;
        let base = state.base_url(&req);
        let access = super::authn::access(&req)?;
        let st = state.clone();
        let response = blocking(move || {
            let parsed = read_bundle(&st, &body, format)?;
            let message = transaction::read_message(parsed).map_err(invalid)?;
            // the same message (Bundle identity) sent again gets the same answer
            let idempotency = message.key.clone().map(|key| crate::service::Idempotency {
                fingerprint: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, &body).to_string(),
                key: format!("message:{key}"),
            });
            let settings = Settings {
                returns: crate::transaction::Return::Representation,
                ..settings(&st, base.clone())
            };
            let (header, focus) = (message.header.clone(), message.focus.clone());
            let request = RequestBundle {
                kind: transaction::Kind::Transaction,
                entries: message.entries.into_iter().map(Ok).collect(),
            };
            authorize_entries(&access, &request)?;
            let scope = st.scope_for(&access, &auth::Limits::default());
            let (bundle, _) = process(&st.db, scope, request, settings, idempotency)?;
            let answered: serde_json::Value = serde_json::from_slice(&bundle)
                .map_err(|e| ApiError::internal_from("response Bundle", e))?;
            Ok(transaction::response_message(
                &header,
                &focus,
                &answered,
                &base,
                &uuid::Uuid::new_v4().to_string(),
                &crate::clock::instant_string(crate::clock::to_micros(st.clock.now())),
            ))
        })
        .await?;
        let bytes = serde_json::to_vec(&response)
            .map_err(|e| ApiError::internal_from("serialising JSON", e))?;
        fhir_response(StatusCode::OK, out, &bytes)
    }
    .await;
    finish(&req, result)
}
