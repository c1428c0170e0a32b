//! CapabilityStatement construction from a description of what the server implements.

use serde_json::{Value, json};

use crate::search_params::{ParamType, params_for, single_target};

/// What the server implements for every stored resource type.
#[derive(Debug, Clone)]
pub struct ServerDescription<'a> {
    pub software_name: &'a str,
    pub software_version: &'a str,
    pub base_url: &'a str,
    /// The instant the statement describes (the server start), as a FHIR dateTime.
    pub date: &'a str,
    pub resource_types: &'a [&'a str],
    /// Type-level and instance-level interaction codes (R4 `TypeRestfulInteraction`).
    pub type_interactions: &'a [&'a str],
    /// System-level interaction codes (R4 `SystemRestfulInteraction`).
    pub system_interactions: &'a [&'a str],
    pub formats: &'a [&'a str],
    pub conditional_create: bool,
    pub conditional_update: bool,
    /// Profiles the server checks, per resource type.
    pub supported_profiles: &'a [(&'a str, String)],
    /// Operations per resource type: (type, name, OperationDefinition canonical); an
    /// empty type is a system-level operation (on the base URL), `*` one of every type.
    pub operations: &'a [(&'a str, &'a str, &'a str)],
}

/// Builds the CapabilityStatement (kind `instance`).
pub fn capability_statement(d: &ServerDescription<'_>) -> Value {
    let resources: Vec<Value> = d
        .resource_types
        .iter()
        .map(|t| {
            // the audit trail is written by the server only
            let read_only = *t == "AuditEvent";
            let interactions: Vec<Value> = d
                .type_interactions
                .iter()
                .filter(|code| !read_only || matches!(**code, "read" | "search-type"))
                .map(|code| json!({ "code": code }))
                .collect();
            let params: Vec<Value> = params_for(t)
                .iter()
                .map(|p| json!({"name": p.name, "definition": p.definition, "type": p.kind.as_str()}))
                .collect();
            // `_include` of each reference parameter; `_revinclude` of every reference
            // parameter of a stored type that can point to this one
            let includes: Vec<String> = params_for(t)
                .iter()
                .filter(|p| p.kind == ParamType::Reference)
                .map(|p| format!("{t}:{}", p.name))
                .collect();
            let revincludes: Vec<String> = d
                .resource_types
                .iter()
                .filter(|source| **source != "AuditEvent")
                .flat_map(|source| {
                    params_for(source)
                        .into_iter()
                        .filter(|p| p.kind == ParamType::Reference)
                        .filter(|p| single_target(source, p.name).is_none_or(|to| to == *t))
                        .map(move |p| format!("{source}:{}", p.name))
                })
                .collect();
            let profiles: Vec<&str> = d
                .supported_profiles
                .iter()
                .filter(|(pt, _)| pt == t)
                .map(|(_, url)| url.as_str())
                .collect();
            let mut r = json!({
                "type": t,
                "interaction": interactions,
                "versioning": if read_only { "no-version" } else { "versioned-update" },
                "readHistory": !read_only,
                "updateCreate": !read_only,
                "conditionalCreate": d.conditional_create && !read_only,
                "conditionalUpdate": d.conditional_update && !read_only,
                "conditionalDelete": "not-supported",
                "searchParam": params
            });
            if !includes.is_empty() && !read_only {
                r["searchInclude"] = json!(includes);
            }
            if !revincludes.is_empty() {
                r["searchRevInclude"] = json!(revincludes);
            }
            if !profiles.is_empty() {
                r["supportedProfile"] = json!(profiles);
            }
            let ops: Vec<Value> = d
                .operations
                .iter()
                .filter(|(ot, _, _)| ot == t || *ot == "*")
                .map(|(_, name, def)| json!({"name": name, "definition": def}))
                .collect();
            if !ops.is_empty() {
                r["operation"] = Value::Array(ops);
            }
            r
        })
        .collect();
    let system: Vec<Value> = d
        .system_interactions
        .iter()
        .map(|code| json!({ "code": code }))
        .collect();
    let system_operations: Vec<Value> = d
        .operations
        .iter()
        .filter(|(t, _, _)| t.is_empty())
        .map(|(_, name, def)| json!({"name": name, "definition": def}))
        .collect();
    let mut statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": d.date,
        "publisher": "HEP FHIR backend",
        "kind": "instance",
        "software": { "name": d.software_name, "version": d.software_version },
        "implementation": { "description": "Home exercise program FHIR server", "url": d.base_url },
        "fhirVersion": "4.0.1",
        "format": d.formats,
        // JSON Patch is what PATCH and transaction PATCH entries accept (R4 http.html#patch)
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": system
        }]
    });
    if !system_operations.is_empty() {
        statement["rest"][0]["operation"] = Value::Array(system_operations);
    }
    if d.operations.iter().any(|(_, name, _)| *name == "export") {
        // the server is a Bulk Data Access server
        statement["instantiates"] =
            json!(["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]);
    }
    statement
}
