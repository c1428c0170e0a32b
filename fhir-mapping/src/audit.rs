//! AuditEvent resources (R4, in the spirit of the IHE Basic Audit Log Patterns) made
//! from the facts of one audit record.

use base64::Engine;
use serde_json::{Value, json};

/// What one audit record says.
#[derive(Debug, Clone)]
pub struct AuditFacts<'a> {
    pub id: &'a str,
    /// FHIR instant.
    pub recorded: &'a str,
    /// `C`, `R`, `U`, `D` or `E`.
    pub action: &'a str,
    /// A `restful-interaction` code, or `token` for a token issued or refused.
    pub subtype: &'a str,
    /// `0`, `4` or `8`.
    pub outcome: &'a str,
    /// The HTTP status answered.
    pub status: i32,
    pub client: &'a str,
    pub address: Option<&'a str>,
    /// Type, id and version acted on.
    pub entity: Option<(&'a str, &'a str, Option<i64>)>,
    pub patient: Option<&'a str>,
    pub query: Option<&'a str>,
}

/// The system of the identifiers of clients (the `sub` of their tokens).
pub const CLIENT_SYSTEM: &str = "https://hep-fhir.org/fhir/sid/client";

/// The interaction of a record of a change to a registered client (registered, new
/// keys, removed): a security configuration change.
pub const CLIENT_CHANGE: &str = "client";
/// The entity type of such a record (the client, by its identifier).
pub const CLIENT_ENTITY: &str = "client";

/// The code system of the steps of a person's sign-in that DICOM has no code for
/// (`consent`, `invitation`, `invitation-redeemed`, `revocation`, `access-revoked`).
pub const SIGN_IN_EVENTS: &str = "https://hep-fhir.org/fhir/CodeSystem/sign-in-event";
/// The interaction of a record of a change to a person's access: an account added or
/// disabled, a patient's invitation issued, a patient's access revoked (the entity is
/// the person's Patient or Practitioner).
pub const ACCOUNT_CHANGE: &str = "account";

/// The AuditEvent of a record.
pub fn audit_event(f: &AuditFacts<'_>) -> Value {
    let (event_type, subtype) = match f.subtype {
        "token" => (
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"}),
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110122", "display": "Login"}),
        ),
        // the steps of a person's sign-in: who signed in, consented, redeemed a
        // clinic's code, or revoked an app's access
        "login"
        | "consent"
        | "invitation-redeemed"
        | "invitation"
        | "revocation"
        | "access-revoked" => (
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"}),
            match f.subtype {
                "login" => {
                    json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110122", "display": "Login"})
                }
                other => json!({"system": SIGN_IN_EVENTS, "code": other}),
            },
        ),
        CLIENT_CHANGE => (
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110113", "display": "Security Alert"}),
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110129", "display": "Security Configuration"}),
        ),
        ACCOUNT_CHANGE => (
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110113", "display": "Security Alert"}),
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110137", "display": "User Security Attributes Changed"}),
        ),
        _ => (
            json!({"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"}),
            json!({"system": "http://hl7.org/fhir/restful-interaction", "code": f.subtype}),
        ),
    };
    let mut agent = json!({
        "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153", "display": "Source Role ID"}]},
        "who": {"identifier": {"system": CLIENT_SYSTEM, "value": f.client}},
        "requestor": true
    });
    if let Some(a) = f.address {
        agent["network"] = json!({"address": a, "type": "2"});
    }
    let mut entities = Vec::new();
    if let Some((CLIENT_ENTITY, id, _)) = f.entity {
        // a registered client is no FHIR resource: named by its identifier
        entities.push(json!({
            "what": {"identifier": {"system": CLIENT_SYSTEM, "value": id}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "13", "display": "Security Resource"}
        }));
    } else if let Some((t, id, version)) = f.entity {
        let reference = match version {
            Some(v) => format!("{t}/{id}/_history/{v}"),
            None => format!("{t}/{id}"),
        };
        entities.push(json!({
            "what": {"reference": reference},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}
        }));
    }
    if let Some(p) = f.patient {
        entities.push(json!({
            "what": {"reference": format!("Patient/{p}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
        }));
    }
    if let Some(q) = f.query {
        entities.push(json!({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
            "query": base64::engine::general_purpose::STANDARD.encode(q)
        }));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": f.id,
        "meta": {"lastUpdated": f.recorded},
        "type": event_type,
        "subtype": [subtype],
        "action": f.action,
        "recorded": f.recorded,
        "outcome": f.outcome,
        "outcomeDesc": format!("HTTP {}", f.status),
        "agent": [agent],
        "source": {
            "observer": {"display": "hep-server"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
        }
    });
    if !entities.is_empty() {
        event["entity"] = Value::Array(entities);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, ParseLimits, parse_resource};

    #[test]
    fn audit_events_are_valid_r4() {
        for facts in [
            AuditFacts {
                id: "01a2",
                recorded: "2026-11-27T10:00:00.000000Z",
                action: "R",
                subtype: "search-type",
                outcome: "0",
                status: 200,
                client: "ehr",
                address: Some("127.0.0.1"),
                entity: Some(("Observation", "o1", None)),
                patient: Some("p1"),
                query: Some("patient=p1&code=72514-3"),
            },
            AuditFacts {
                id: "01a3",
                recorded: "2026-11-27T10:00:00.000000Z",
                action: "E",
                subtype: "token",
                outcome: "4",
                status: 401,
                client: "unknown",
                address: None,
                entity: None,
                patient: None,
                query: None,
            },
        ] {
            let json = audit_event(&facts);
            let bytes = serde_json::to_vec(&json).unwrap_or_default();
            let parsed = parse_resource(&bytes, Format::Json, &ParseLimits::default());
            assert!(parsed.is_ok(), "{json}: {:?}", parsed.err());
        }
    }
}
