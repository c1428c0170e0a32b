//! `[type]/$validate` and `[type]/[id]/$validate` (R4 `Resource-validate`): would this
//! resource be accepted? The answer is 200 with an OperationOutcome listing every
//! problem (or that there is none); nothing is stored.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use fhir_mapping::{Format, Issue, IssueType, ParsedResource, operation_outcome, parse_resource};
use serde_json::Value;

use super::negotiate::{self, fhir_response, finish};
use super::rest::{blocking, path_id, resource_type};
use super::state::AppState;
use crate::auth::scopes::Perm;
use crate::error::ApiError;
use crate::service::{self, Trial};

type State = web::Data<AppState>;

/// The OperationDefinition of the operation.
pub const DEFINITION: &str = "http://hl7.org/fhir/OperationDefinition/Resource-validate";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
    Delete,
}

/// What the request asks: the resource (when sent), `mode` and `profile`, from the
/// query or from a Parameters body.
struct Request {
    resource: Option<Value>,
    mode: Option<String>,
    profile: Option<String>,
}

pub async fn validate(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let result = async {
        let res_type = resource_type(&req)?;
        let id = match req.match_info().get("id") {
            Some(_) => Some(path_id(&req)?),
            None => None,
        };
        let query = negotiate::query_pairs(&req)?;
        if let Some((k, _)) = query
            .iter()
            .find(|(k, _)| !matches!(k.as_str(), "_format" | "_pretty" | "mode" | "profile"))
        {
            return Err(ApiError::BadRequest(format!(
                "parameter `{k}` is not supported here"
            )));
        }
        let out = negotiate::output(&req, &query)?;
        // a delete is validated without a body
        let body =
            negotiate::read_body_or_nothing(&req, payload, state.body_limit(&res_type)).await?;
        let format = if body.is_empty() {
            Format::Json
        } else {
            negotiate::input_format(&req)?
        };
        let access = super::authn::access(&req)?;
        let st = state.clone();
        let issues = blocking(move || {
            let asked = match read_request(&body, format, &st) {
                Ok(asked) => asked,
                Err(issues) => return Ok(issues),
            };
            let from_query = |name: &str| {
                query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let mode = match asked.mode.or_else(|| from_query("mode")).as_deref() {
                None | Some("create") => Mode::Create,
                Some("update") => Mode::Update,
                Some("delete") => Mode::Delete,
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "mode `{other}` is not one of create, update, delete"
                    )));
                }
            };
            let profile = asked.profile.or_else(|| from_query("profile"));
            let perm = match mode {
                Mode::Create => Perm::Create,
                Mode::Update => Perm::Update,
                Mode::Delete => Perm::Delete,
            };
            let limits = access.require(&res_type, perm)?;
            let trial = match (mode, asked.resource, id) {
                (Mode::Delete, _, Some(id)) => Trial::Delete(res_type.clone(), id),
                (Mode::Delete, _, None) | (Mode::Update, _, None) => {
                    return Err(ApiError::BadRequest(format!(
                        "mode update and delete validate a resource that exists: use {res_type}/[id]/$validate"
                    )));
                }
                (_, None, _) => {
                    return Err(ApiError::BadRequest(
                        "send the resource to validate, as the body or as the `resource` parameter of a Parameters body".into(),
                    ));
                }
                (mode, Some(resource), id) => {
                    let parsed = match checked(&st, resource, &res_type, profile.as_deref()) {
                        Ok(parsed) => parsed,
                        Err(issues) => return Ok(issues),
                    };
                    // warnings of the values (a write keeps them; the caller is told)
                    let mut issues =
                        fhir_mapping::validate::validate(&Value::Object(parsed.json().clone()));
                    issues.extend(run(&st, &access, &limits, trial_of(mode, parsed, id)?)?);
                    return Ok(issues);
                }
            };
            run(&st, &access, &limits, trial)
        })
        .await?;
        let issues = if issues.is_empty() {
            vec![Issue::information("no issues: the resource is valid")]
        } else {
            issues
        };
        let bytes = serde_json::to_vec(&operation_outcome(&issues))
            .map_err(|e| ApiError::internal_from("serialising JSON", e))?;
        fhir_response(StatusCode::OK, out, &bytes)
    }
    .await;
    finish(&req, result)
}

fn trial_of(mode: Mode, parsed: ParsedResource, id: Option<String>) -> Result<Trial, ApiError> {
    match (mode, id) {
        (Mode::Update, Some(id)) => {
            if parsed.id().is_some_and(|i| i != id) {
                return Err(ApiError::BadRequest(format!(
                    "the resource's id is {} but the URL's is {id}",
                    parsed.id().unwrap_or_default()
                )));
            }
            Ok(Trial::Update(parsed, id))
        }
        _ => Ok(Trial::Create(parsed)),
    }
}

fn run(
    st: &AppState,
    access: &crate::auth::Access,
    limits: &crate::auth::Limits,
    trial: Trial,
) -> Result<Vec<Issue>, ApiError> {
    service::validate_write(&st.db, st.scope_for(access, limits), trial)
}

/// The body: the resource itself, or a Parameters with `resource`, `mode` and `profile`.
/// A body that is not FHIR at all is the answer's issues.
fn read_request(body: &[u8], format: Format, st: &AppState) -> Result<Request, Vec<Issue>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Request {
            resource: None,
            mode: None,
            profile: None,
        });
    }
    let document: Value = match format {
        // JSON is read as it was sent, so that a Parameters' resource is located in it
        Format::Json => serde_json::from_slice(body).map_err(|_| {
            match parse_resource(body, format, &st.limits) {
                Err(e) => e.issues,
                Ok(_) => vec![Issue::error(IssueType::Structure, "malformed JSON")],
            }
        })?,
        Format::Xml => match parse_resource(body, format, &st.limits) {
            Ok(parsed) => Value::Object(parsed.json().clone()),
            Err(e) => return Err(e.issues),
        },
    };
    if document.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Ok(Request {
            resource: Some(document),
            mode: None,
            profile: None,
        });
    }
    let parameters = document
        .get("parameter")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let named = |name: &str| {
        parameters
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
    };
    let text = |name: &str, value: &str| {
        named(name)
            .and_then(|p| p.get(value))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(Request {
        resource: named("resource").and_then(|p| p.get("resource")).cloned(),
        mode: text("mode", "valueCode"),
        profile: text("profile", "valueUri").or_else(|| text("profile", "valueCanonical")),
    })
}

/// The resource read and checked as a write would read it (every value, the type of
/// the URL, a Binary's media, a profile asked for): the problems found, or the resource.
fn checked(
    st: &AppState,
    mut resource: Value,
    res_type: &str,
    profile: Option<&str>,
) -> Result<ParsedResource, Vec<Issue>> {
    if let Some(profile) = profile {
        let base = format!("http://hl7.org/fhir/StructureDefinition/{res_type}");
        let own = fhir_mapping::hep::profiles()
            .into_iter()
            .any(|(t, url)| t == res_type && url == profile);
        if own {
            add_profile(&mut resource, profile);
        } else if profile != base {
            let ours: Vec<String> = fhir_mapping::hep::profiles()
                .into_iter()
                .filter(|(t, _)| *t == res_type)
                .map(|(_, url)| url)
                .collect();
            let which = if ours.is_empty() {
                format!("only the base definition {base}")
            } else {
                format!("{base} and {}", ours.join(", "))
            };
            return Err(vec![Issue::error(
                IssueType::NotSupported,
                format!(
                    "the profile {profile} is not one this server checks; for {res_type} it checks {which}"
                ),
            )]);
        }
    }
    let bytes = serde_json::to_vec(&resource).unwrap_or_default();
    let parsed = parse_resource(&bytes, Format::Json, &st.limits).map_err(|e| e.issues)?;
    if parsed.resource_type() != res_type {
        return Err(vec![
            Issue::error(
                IssueType::Invalid,
                format!(
                    "the resource is a {} but the URL is for {res_type}",
                    parsed.resource_type()
                ),
            )
            .at("resourceType"),
        ]);
    }
    if res_type == "Binary" {
        let issues = fhir_mapping::media::check_binary(parsed.json(), st.max_binary_bytes);
        if !issues.is_empty() {
            return Err(issues);
        }
    }
    Ok(parsed)
}

/// Adds `profile` to `meta.profile` when the resource does not claim it yet.
fn add_profile(resource: &mut Value, profile: &str) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("meta")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let profiles = meta
        .entry("profile")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = profiles
        && !items.iter().any(|p| p.as_str() == Some(profile))
    {
        items.push(Value::String(profile.to_string()));
    }
}
