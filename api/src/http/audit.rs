//! The audit trail's middleware: every request under `/fhir` but the open routes and
//! the changes already recorded in their transaction, queued for the audit writer
//! (`crate::audit`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use crate::auth::Access;
use crate::db::audit::AuditRow;

/// What a request did, from its method and route: (action, interaction, type, id).
fn interaction(
    method: &actix_web::http::Method,
    path: &str,
) -> (&'static str, &'static str, Option<String>, Option<String>) {
    let rest = path
        .split_once("/fhir")
        .map_or("", |(_, r)| r)
        .trim_matches('/');
    let parts: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    let is_type = |s: &str| fhir_mapping::resource_types::is_storable(s);
    // an export's status and files belong to its `$export`
    let op = parts.iter().any(|p| p.starts_with('$')) || parts.first() == Some(&"_export");
    let t = parts.first().filter(|t| is_type(t)).map(|t| t.to_string());
    let id = parts
        .get(1)
        .filter(|p| !p.starts_with('$') && !p.starts_with('_'))
        .map(|p| p.to_string());
    let m = method.as_str();
    let (action, subtype) = match (m, parts.as_slice()) {
        (_, _) if op => ("E", "operation"),
        ("POST", []) => ("E", "transaction"),
        ("GET", ["_history"]) => ("R", "history-system"),
        ("GET", [_, "_history"]) => ("R", "history-type"),
        ("GET", [_, _, "_history"]) => ("R", "history-instance"),
        ("GET", [_, _, "_history", _]) => ("R", "vread"),
        ("GET", [_]) | ("POST", [_, "_search"]) => ("R", "search-type"),
        ("GET", [_, _]) => ("R", "read"),
        ("POST", [_]) => ("C", "create"),
        ("PUT", _) => ("U", "update"),
        ("PATCH", _) => ("U", "patch"),
        ("DELETE", _) => ("D", "delete"),
        _ => ("E", "operation"),
    };
    (action, subtype, t, id)
}

/// The patient a request is about, when it says: a patient token's, the Patient read,
/// or the `patient` / `subject` of a search.
fn patient_of(
    access: Option<&Access>,
    res_type: Option<&str>,
    id: Option<&str>,
    query: &str,
) -> Option<String> {
    if let Some(p) = access.and_then(|a| a.patient.clone()) {
        return Some(p);
    }
    if res_type == Some("Patient") {
        return id.map(str::to_string);
    }
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "patient" || k == "subject" || k == "subject:Patient")
        .map(|(_, v)| v.strip_prefix("Patient/").unwrap_or(&v).to_string())
        .filter(|p| fhir_mapping::resource_types::is_valid_id(p))
}

/// Middleware around `/fhir`: records every request but those of the open routes and
/// the changes already recorded in their transaction (a successful write).
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = req.method().clone();
    let path = req.path().to_string();
    let query = req.query_string().to_string();
    let address = req.peer_addr().map(|a| a.ip().to_string());
    let res = next.call(req).await?;
    let status = res.status();
    let open = path.ends_with("/metadata") || path.ends_with("/smart-configuration");
    let changed = matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
        && status.is_success()
        && !path.contains('$')
        && !path.ends_with("/_search");
    if open || changed {
        return Ok(res);
    }
    let Some(state) = res
        .request()
        .app_data::<web::Data<super::state::AppState>>()
        .cloned()
    else {
        return Ok(res);
    };
    let access = res.request().extensions().get::<Access>().cloned();
    let (action, subtype, res_type, id) = interaction(&method, &path);
    let outcome = match status.as_u16() {
        s if s < 400 => "0",
        s if s < 500 => "4",
        _ => "8",
    };
    let row = AuditRow {
        // given by the writer
        id: String::new(),
        tenant: access
            .as_ref()
            .map_or_else(|| state.tenant.to_string(), |a| a.tenant.clone()),
        recorded: crate::clock::to_micros(state.clock.now()),
        action: action.into(),
        subtype: subtype.into(),
        outcome: outcome.into(),
        status: i32::from(status.as_u16()),
        client: access
            .as_ref()
            .map_or_else(|| "unauthenticated".to_string(), |a| a.client.clone()),
        address,
        patient: patient_of(access.as_ref(), res_type.as_deref(), id.as_deref(), &query),
        res_type,
        res_id: id,
        version: None,
        query: (!query.is_empty()).then_some(query),
    };
    state.audit.record(row).await;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    #[test]
    fn routes_are_named_as_interactions() {
        let cases = [
            (Method::GET, "/fhir/Patient/1", ("R", "read")),
            (Method::GET, "/fhir/Patient", ("R", "search-type")),
            (Method::POST, "/fhir/Patient/_search", ("R", "search-type")),
            (Method::GET, "/fhir/Patient/1/_history/2", ("R", "vread")),
            (
                Method::GET,
                "/fhir/Patient/1/_history",
                ("R", "history-instance"),
            ),
            (Method::GET, "/fhir/_history", ("R", "history-system")),
            (
                Method::GET,
                "/fhir/CarePlan/1/$adherence",
                ("E", "operation"),
            ),
            (Method::POST, "/fhir", ("E", "transaction")),
            (Method::DELETE, "/fhir/Patient/1", ("D", "delete")),
        ];
        for (m, path, (action, subtype)) in cases {
            let (a, s, _, _) = interaction(&m, path);
            assert_eq!((a, s), (action, subtype), "{path}");
        }
        let (_, _, t, id) = interaction(&Method::GET, "/fhir/Patient/1");
        assert_eq!((t.as_deref(), id.as_deref()), (Some("Patient"), Some("1")));
        assert_eq!(
            patient_of(
                None,
                Some("Observation"),
                None,
                "subject=Patient%2Fp9&code=x"
            ),
            Some("p9".into())
        );
    }
}
