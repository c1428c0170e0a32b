//! Bundles built around stored resource bytes, without re-parsing them.

use serde_json::{Map, Value};

/// `Bundle.entry.request`.
#[derive(Debug, Clone)]
pub struct EntryRequest {
    pub method: &'static str,
    pub url: String,
}

/// `Bundle.entry.response`.
#[derive(Debug, Clone)]
pub struct EntryResponse {
    pub status: String,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// `response.outcome`: an OperationOutcome (a failed batch entry, warnings).
    pub outcome: Option<Value>,
}

/// One entry; `resource` is canonical JSON of a resource.
#[derive(Debug, Clone, Default)]
pub struct Entry<'a> {
    pub full_url: Option<String>,
    pub resource: Option<&'a [u8]>,
    pub search_mode: Option<&'static str>,
    pub request: Option<EntryRequest>,
    pub response: Option<EntryResponse>,
}

/// A link of the bundle (`self`, `next`, `previous`).
#[derive(Debug, Clone)]
pub struct Link {
    pub relation: &'static str,
    pub url: String,
}

fn push_value(out: &mut Vec<u8>, v: &Value) {
    // Writing JSON values into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn push_field(out: &mut Vec<u8>, first: &mut bool, key: &str, v: &Value) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    push_value(out, &Value::String(key.to_string()));
    out.push(b':');
    push_value(out, v);
}

/// Writes a Bundle of the given `type` as compact JSON, the stored resources spliced in.
/// `last_updated` becomes `meta.lastUpdated`.
pub fn write_bundle(
    bundle_type: &str,
    id: Option<&str>,
    last_updated: Option<&str>,
    timestamp: Option<&str>,
    total: Option<u64>,
    links: &[Link],
    entries: &[Entry<'_>],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        256 + entries
            .iter()
            .map(|e| e.resource.map_or(0, <[u8]>::len) + 200)
            .sum::<usize>(),
    );
    out.extend_from_slice(b"{\"resourceType\":\"Bundle\"");
    let mut first = false;
    if let Some(id) = id {
        push_field(&mut out, &mut first, "id", &Value::String(id.into()));
    }
    if let Some(lu) = last_updated {
        let mut meta = Map::new();
        meta.insert("lastUpdated".into(), Value::String(lu.into()));
        push_field(&mut out, &mut first, "meta", &Value::Object(meta));
    }
    push_field(
        &mut out,
        &mut first,
        "type",
        &Value::String(bundle_type.into()),
    );
    if let Some(ts) = timestamp {
        push_field(&mut out, &mut first, "timestamp", &Value::String(ts.into()));
    }
    if let Some(total) = total {
        push_field(&mut out, &mut first, "total", &Value::from(total));
    }
    if !links.is_empty() {
        let links: Vec<Value> = links
            .iter()
            .map(|l| {
                let mut m = Map::new();
                m.insert("relation".into(), l.relation.into());
                m.insert("url".into(), l.url.clone().into());
                Value::Object(m)
            })
            .collect();
        push_field(&mut out, &mut first, "link", &Value::Array(links));
    }
    if !entries.is_empty() {
        out.extend_from_slice(b",\"entry\":[");
        for (i, entry) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_entry(&mut out, entry);
        }
        out.push(b']');
    }
    out.push(b'}');
    out
}

fn write_entry(out: &mut Vec<u8>, entry: &Entry<'_>) {
    out.push(b'{');
    let mut first = true;
    if let Some(url) = &entry.full_url {
        push_field(out, &mut first, "fullUrl", &Value::String(url.clone()));
    }
    if let Some(resource) = entry.resource {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(b"\"resource\":");
        out.extend_from_slice(resource);
    }
    if let Some(mode) = entry.search_mode {
        let mut m = Map::new();
        m.insert("mode".into(), mode.into());
        push_field(out, &mut first, "search", &Value::Object(m));
    }
    if let Some(req) = &entry.request {
        let mut m = Map::new();
        m.insert("method".into(), req.method.into());
        m.insert("url".into(), req.url.clone().into());
        push_field(out, &mut first, "request", &Value::Object(m));
    }
    if let Some(resp) = &entry.response {
        let mut m = Map::new();
        m.insert("status".into(), resp.status.clone().into());
        if let Some(l) = &resp.location {
            m.insert("location".into(), l.clone().into());
        }
        if let Some(e) = &resp.etag {
            m.insert("etag".into(), e.clone().into());
        }
        if let Some(lm) = &resp.last_modified {
            m.insert("lastModified".into(), lm.clone().into());
        }
        if let Some(o) = &resp.outcome {
            m.insert("outcome".into(), o.clone());
        }
        push_field(out, &mut first, "response", &Value::Object(m));
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_resources_in_canonical_order() {
        let r = br#"{"resourceType":"Patient","id":"1"}"#;
        let bytes = write_bundle(
            "history",
            None,
            Some("2026-01-01T00:00:00Z"),
            None,
            Some(2),
            &[Link {
                relation: "self",
                url: "http://x/fhir/_history".into(),
            }],
            &[
                Entry {
                    full_url: Some("http://x/fhir/Patient/1".into()),
                    resource: Some(r),
                    request: Some(EntryRequest {
                        method: "PUT",
                        url: "Patient/1".into(),
                    }),
                    response: Some(EntryResponse {
                        status: "200 OK".into(),
                        location: None,
                        etag: Some("W/\"2\"".into()),
                        last_modified: None,
                        outcome: None,
                    }),
                    ..Default::default()
                },
                Entry {
                    request: Some(EntryRequest {
                        method: "DELETE",
                        url: "Patient/2".into(),
                    }),
                    ..Default::default()
                },
            ],
        );
        let v: Value = serde_json::from_slice(&bytes).expect("valid json");
        assert_eq!(v["total"], 2);
        assert_eq!(v["entry"][0]["resource"]["id"], "1");
        assert_eq!(v["entry"][0]["response"]["etag"], "W/\"2\"");
        assert_eq!(v["entry"][1]["request"]["method"], "DELETE");
        let keys: Vec<&String> = v
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            ["resourceType", "meta", "type", "total", "link", "entry"]
        );
        assert_eq!(v["meta"]["lastUpdated"], "2026-01-01T00:00:00Z");
    }
}
