//! Transaction and batch Bundles (R4 http.html#transaction), read into a plan: what
//! each entry asks for, in what order a transaction processes them, and how the
//! references between its entries are rewritten to the ids the server gives. No IO:
//! the server executes the plan.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::codec::ParsedResource;
use crate::outcome::{Issue, IssueType};
use crate::references::is_bundle_entries;
use crate::resource_types::{is_storable, is_valid_id};

/// Whether the entries succeed or fail together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// All or nothing, in one database transaction.
    Transaction,
    /// Each entry on its own.
    Batch,
}

impl Kind {
    /// `Bundle.type` of the answer.
    pub fn response_type(self) -> &'static str {
        match self {
            Kind::Transaction => "transaction-response",
            Kind::Batch => "batch-response",
        }
    }
}

/// `Bundle.entry.request.method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    Delete,
    Post,
    Put,
    Patch,
    Get,
    Head,
}

impl Method {
    fn from_code(code: &str) -> Option<Method> {
        Some(match code {
            "DELETE" => Method::Delete,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            _ => return None,
        })
    }

    pub fn code(self) -> &'static str {
        match self {
            Method::Delete => "DELETE",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }

    /// The processing order of a transaction: DELETE, POST, PUT and PATCH, GET and HEAD.
    fn rank(self) -> u8 {
        match self {
            Method::Delete => 0,
            Method::Post => 1,
            Method::Put | Method::Patch => 2,
            Method::Get | Method::Head => 3,
        }
    }
}

/// What the URL of an entry's request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `Patient`
    Type(String),
    /// `Patient/1`
    Instance(String, String),
    /// `Patient/1/_history/2`
    Version(String, String, String),
    /// `Patient?identifier=...` (the query, undecoded)
    Search(String, String),
}

impl Target {
    pub fn resource_type(&self) -> &str {
        match self {
            Target::Type(t)
            | Target::Instance(t, _)
            | Target::Version(t, _, _)
            | Target::Search(t, _) => t,
        }
    }
}

/// Reads a request URL relative to the server's base (`base` is stripped when the URL
/// is absolute). `None` when it names nothing this server has.
pub fn parse_url(url: &str, base: &str) -> Option<Target> {
    let base = base.trim_end_matches('/');
    let relative = url
        .strip_prefix(base)
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or(url)
        .trim_start_matches('/');
    let (path, query) = match relative.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (relative, None),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let target = match (parts.as_slice(), query) {
        ([t], Some(q)) | ([t, "_search"], Some(q)) => Target::Search((*t).into(), q.into()),
        ([t], None) => Target::Type((*t).into()),
        ([t, id], None) if is_valid_id(id) => Target::Instance((*t).into(), (*id).into()),
        ([t, id, "_history", v], None) if is_valid_id(id) && is_valid_id(v) => {
            Target::Version((*t).into(), (*id).into(), (*v).into())
        }
        _ => return None,
    };
    is_storable(target.resource_type()).then_some(target)
}

/// One entry of a request Bundle, read.
#[derive(Debug, Clone)]
pub struct RequestEntry {
    /// Position in `Bundle.entry`.
    pub index: usize,
    pub full_url: Option<String>,
    pub method: Method,
    /// `request.url` as sent.
    pub url: String,
    pub resource: Option<ParsedResource>,
    pub if_none_exist: Option<String>,
    pub if_match: Option<String>,
}

impl RequestEntry {
    /// Where the entry is, for messages: `Bundle.entry[3] (POST Patient)`.
    pub fn label(&self) -> String {
        format!(
            "Bundle.entry[{}] ({} {})",
            self.index,
            self.method.code(),
            self.url
        )
    }
}

/// A request Bundle, read: its kind and, per entry, the request or why it cannot be
/// carried out.
#[derive(Debug)]
pub struct RequestBundle {
    pub kind: Kind,
    pub entries: Vec<Result<RequestEntry, Vec<Issue>>>,
}

/// Reads a `transaction` or `batch` Bundle that passed structural validation.
pub fn read_request(bundle: ParsedResource) -> Result<RequestBundle, Vec<Issue>> {
    let mut json = bundle.json;
    let kind = match json.get("type").and_then(Value::as_str) {
        Some("transaction") => Kind::Transaction,
        Some("batch") => Kind::Batch,
        other => {
            return Err(vec![
                Issue::error(
                    IssueType::NotSupported,
                    format!(
                        "the base URL takes a Bundle of type transaction or batch, not {}",
                        other.unwrap_or("(none)")
                    ),
                )
                .at("Bundle.type"),
            ]);
        }
    };
    let entries = match json.remove("entry") {
        Some(Value::Array(e)) => e,
        _ => Vec::new(),
    };
    let entries = entries
        .into_iter()
        .enumerate()
        .map(|(index, e)| read_entry(index, e))
        .collect();
    Ok(RequestBundle { kind, entries })
}

fn read_entry(index: usize, entry: Value) -> Result<RequestEntry, Vec<Issue>> {
    let at = |p: &str| format!("Bundle.entry[{index}]{p}");
    let Value::Object(mut entry) = entry else {
        return Err(vec![
            Issue::error(IssueType::Structure, "an entry is an object").at(at("")),
        ]);
    };
    let request = match entry.remove("request") {
        Some(Value::Object(r)) => Some(r),
        _ => None,
    };
    let request = request.as_ref();
    let text = |k: &str| {
        request
            .and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let Some(method) = text("method") else {
        return Err(vec![
            Issue::error(
                IssueType::Required,
                "every entry of a transaction or batch has a request with a method",
            )
            .at(at(".request.method")),
        ]);
    };
    let Some(method) = Method::from_code(&method) else {
        return Err(vec![
            Issue::error(
                IssueType::Value,
                format!("`{method}` is not a request method"),
            )
            .at(at(".request.method")),
        ]);
    };
    let Some(url) = text("url") else {
        return Err(vec![
            Issue::error(IssueType::Required, "the request has no url").at(at(".request.url")),
        ]);
    };
    let resource = match entry.remove("resource") {
        Some(Value::Object(json)) => {
            let resource_type = json
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Some(ParsedResource {
                resource_type,
                json,
            })
        }
        _ => None,
    };
    let needs_resource = matches!(method, Method::Post | Method::Put | Method::Patch);
    if needs_resource && resource.is_none() {
        return Err(vec![
            Issue::error(
                IssueType::Required,
                format!("a {} entry carries a resource", method.code()),
            )
            .at(at(".resource")),
        ]);
    }
    Ok(RequestEntry {
        index,
        full_url: entry
            .get("fullUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        method,
        url,
        resource,
        if_none_exist: text("ifNoneExist"),
        if_match: text("ifMatch"),
    })
}

/// The order in which a transaction processes its entries (indexes into `entries`):
/// DELETE, then POST, then PUT and PATCH, then GET and HEAD. Within one method, an entry
/// comes after the entries whose `fullUrl` it references (so that a program's
/// prescriptions are stored before the program that lists them), otherwise in Bundle
/// order.
pub fn processing_order(entries: &[RequestEntry]) -> Vec<usize> {
    let by_full_url: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.full_url.as_deref().map(|u| (u, i)))
        .collect();
    let mut order = Vec::with_capacity(entries.len());
    let mut placed = vec![false; entries.len()];
    let mut visiting = vec![false; entries.len()];
    let mut ranked: Vec<usize> = (0..entries.len()).collect();
    ranked.sort_by_key(|&i| (entries[i].method.rank(), i));
    // depth-first: what an entry references (same rank) goes first; a cycle keeps order
    fn visit(
        i: usize,
        entries: &[RequestEntry],
        by_full_url: &HashMap<&str, usize>,
        placed: &mut [bool],
        visiting: &mut [bool],
        order: &mut Vec<usize>,
    ) {
        if placed[i] || visiting[i] {
            return;
        }
        visiting[i] = true;
        if let Some(r) = &entries[i].resource {
            let mut targets = Vec::new();
            collect_strings(r.json(), &mut |s| {
                if let Some(&j) = by_full_url.get(s)
                    && j != i
                    && entries[j].method.rank() == entries[i].method.rank()
                {
                    targets.push(j);
                }
            });
            targets.sort_unstable();
            targets.dedup();
            for j in targets {
                visit(j, entries, by_full_url, placed, visiting, order);
            }
        }
        visiting[i] = false;
        placed[i] = true;
        order.push(i);
    }
    for i in ranked {
        visit(
            i,
            entries,
            &by_full_url,
            &mut placed,
            &mut visiting,
            &mut order,
        );
    }
    order
}

fn collect_strings(obj: &Map<String, Value>, f: &mut dyn FnMut(&str)) {
    for (key, value) in obj {
        if is_bundle_entries(obj, key) {
            continue;
        }
        if key == "reference" {
            if let Value::String(s) = value {
                f(s);
            }
            continue;
        }
        match value {
            Value::Object(o) => collect_strings(o, f),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(o) = item {
                        collect_strings(o, f);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Business identifiers are kept as sent, even when their value is a URN that names an
/// entry of the Bundle.
const IDENTIFIER_KEYS: &[&str] = &["identifier", "masterIdentifier"];

/// Replaces, in a resource, every value that is the `fullUrl` of an entry of the same
/// Bundle (a key of `ids`) by the new local reference (`Patient/123`): references,
/// `uri`/`url`-typed values and links of the narrative, not business identifiers.
pub fn rewrite_references(json: &mut Map<String, Value>, ids: &HashMap<String, String>) {
    if ids.is_empty() {
        return;
    }
    rewrite_object(json, ids);
}

fn rewrite_object(obj: &mut Map<String, Value>, ids: &HashMap<String, String>) {
    let bundle = is_bundle_entries(obj, "entry");
    for (key, value) in obj.iter_mut() {
        if IDENTIFIER_KEYS.contains(&key.as_str()) || (bundle && key == "entry") {
            continue;
        }
        if key == "div"
            && let Value::String(div) = value
        {
            rewrite_narrative(div, ids);
            continue;
        }
        rewrite_value(value, ids);
    }
}

fn rewrite_value(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(new) = ids.get(s.as_str()) {
                *s = new.clone();
            }
        }
        Value::Object(o) => rewrite_object(o, ids),
        Value::Array(items) => {
            for item in items {
                rewrite_value(item, ids);
            }
        }
        _ => {}
    }
}

/// Links of the narrative (`href="urn:uuid:..."`, `src="..."`).
fn rewrite_narrative(div: &mut String, ids: &HashMap<String, String>) {
    if !div.contains("urn:") && !div.contains("://") {
        return;
    }
    for (old, new) in ids {
        for quote in ['"', '\''] {
            let from = format!("{quote}{old}{quote}");
            if div.contains(&from) {
                *div = div.replace(&from, &format!("{quote}{new}{quote}"));
            }
        }
    }
}

/// A conditional reference (`Patient?identifier=http://sys|123`): the type and the
/// query, resolved by a search when the transaction is processed.
pub fn conditional_reference(reference: &str) -> Option<(&str, &str)> {
    let (t, q) = reference.split_once('?')?;
    (is_storable(t) && !q.is_empty()).then_some((t, q))
}

/// Every conditional reference in a resource.
pub fn conditional_references(json: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    collect_strings(json, &mut |s| {
        if conditional_reference(s).is_some() {
            out.push(s.to_string());
        }
    });
    out.sort();
    out.dedup();
    out
}

/// The JSON Patch document a PATCH entry carries: a `Binary` whose content type is
/// `application/json-patch+json` (R4 http.html#patch). `None` when it is not one.
pub fn json_patch_of(resource: &ParsedResource) -> Option<Vec<u8>> {
    if resource.resource_type() != "Binary" {
        return None;
    }
    let json = resource.json();
    let content_type = json.get("contentType").and_then(Value::as_str)?;
    if crate::media::essence(content_type) != "application/json-patch+json" {
        return None;
    }
    let data = json.get("data").and_then(Value::as_str)?;
    crate::media::decode_base64(data).ok()
}

/// The event of a referral message (HL7 v2 event I12, "patient referral").
pub const REFERRAL_EVENT: (&str, &str) = ("http://terminology.hl7.org/CodeSystem/v2-0003", "I12");

/// A referral message, read: its header, the key that identifies the message (to
/// answer it again without storing twice), and its resources as transaction entries.
#[derive(Debug, Clone)]
pub struct Message {
    pub header: Map<String, Value>,
    /// `Bundle.identifier` (`system|value`), else `Bundle.id`.
    pub key: Option<String>,
    /// Every resource but the header, as conditional creates on its first identifier.
    pub entries: Vec<RequestEntry>,
    /// Positions in `entries` of the header's focus.
    pub focus: Vec<usize>,
}

/// Reads a message Bundle whose MessageHeader announces a referral (`v2-0003#I12`) and
/// focuses on the referral Task.
pub fn read_message(bundle: ParsedResource) -> Result<Message, Vec<Issue>> {
    let mut json = bundle.json;
    if json.get("type").and_then(Value::as_str) != Some("message") {
        return Err(vec![
            Issue::error(
                IssueType::Value,
                "$process-message takes a Bundle of type message",
            )
            .at("Bundle.type"),
        ]);
    }
    let key = match json.get("identifier") {
        Some(i) => i.get("value").and_then(Value::as_str).map(|v| {
            format!(
                "{}|{v}",
                i.get("system").and_then(Value::as_str).unwrap_or("")
            )
        }),
        None => json.get("id").and_then(Value::as_str).map(str::to_string),
    };
    let mut entries = match json.remove("entry") {
        Some(Value::Array(e)) => e,
        _ => Vec::new(),
    };
    if entries.is_empty() {
        return Err(vec![
            Issue::error(
                IssueType::Required,
                "a message starts with its MessageHeader",
            )
            .at("Bundle.entry"),
        ]);
    }
    let first = entries.remove(0);
    let header = match first.get("resource") {
        Some(Value::Object(h))
            if h.get("resourceType").and_then(Value::as_str) == Some("MessageHeader") =>
        {
            h.clone()
        }
        _ => {
            return Err(vec![
                Issue::error(
                    IssueType::Structure,
                    "the first entry of a message is its MessageHeader",
                )
                .at("Bundle.entry[0].resource"),
            ]);
        }
    };
    let mut issues = Vec::new();
    let event = header.get("eventCoding");
    let event_ok = event.and_then(|e| e.get("system")).and_then(Value::as_str)
        == Some(REFERRAL_EVENT.0)
        && event.and_then(|e| e.get("code")).and_then(Value::as_str) == Some(REFERRAL_EVENT.1);
    if !event_ok {
        issues.push(
            Issue::error(
                IssueType::NotSupported,
                format!(
                    "this server processes referral messages: eventCoding {}#{}",
                    REFERRAL_EVENT.0, REFERRAL_EVENT.1
                ),
            )
            .at("Bundle.entry[0].resource.eventCoding"),
        );
    }
    if header.get("id").and_then(Value::as_str).is_none() {
        issues.push(
            Issue::error(
                IssueType::Required,
                "the MessageHeader has an id, which the response message names",
            )
            .at("Bundle.entry[0].resource.id"),
        );
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let index = i + 1;
        let Value::Object(mut entry) = entry else {
            continue;
        };
        let Some(Value::Object(resource)) = entry.remove("resource") else {
            issues.push(
                Issue::error(
                    IssueType::Required,
                    "every entry of a message carries a resource",
                )
                .at(format!("Bundle.entry[{index}].resource")),
            );
            continue;
        };
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let if_none_exist = crate::references::identifiers(&resource)
            .into_iter()
            .find(|(system, _)| !system.is_empty())
            .map(|(system, value)| {
                format!("identifier={}", query_escape(&format!("{system}|{value}")))
            });
        out.push(RequestEntry {
            index,
            full_url: entry
                .get("fullUrl")
                .and_then(Value::as_str)
                .map(str::to_string),
            method: Method::Post,
            url: resource_type.clone(),
            resource: Some(ParsedResource {
                resource_type,
                json: resource,
            }),
            if_none_exist,
            if_match: None,
        });
    }
    let focus_refs: Vec<&str> = header
        .get("focus")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|r| r.get("reference").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let focus: Vec<usize> = focus_refs
        .iter()
        .filter_map(|r| out.iter().position(|e| e.full_url.as_deref() == Some(*r)))
        .collect();
    let task_focus = focus.iter().any(|&p| {
        out[p]
            .resource
            .as_ref()
            .is_some_and(|r| r.resource_type() == "Task")
    });
    if !task_focus {
        issues.push(
            Issue::error(
                IssueType::Required,
                "the MessageHeader's focus is the referral Task, an entry of the message",
            )
            .at("Bundle.entry[0].resource.focus"),
        );
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(Message {
        header,
        key,
        entries: out,
        focus,
    })
}

/// Percent-encodes a query value (everything but unreserved characters).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The response message to a processed referral message: a MessageHeader that answers
/// `header` (`response.code` ok) and focuses on the stored Task, and that Task. `stored`
/// is the transaction-response of the message's entries (with their resources), in
/// the order of `Message.entries`; `focus` are the positions of the header's focus.
pub fn response_message(
    header: &Map<String, Value>,
    focus: &[usize],
    stored: &Value,
    base: &str,
    id: &str,
    now: &str,
) -> Value {
    let entries = stored.get("entry").and_then(Value::as_array);
    let focused: Vec<&Value> = focus
        .iter()
        .filter_map(|&p| entries.and_then(|e| e.get(p)))
        .collect();
    let mut response_header = Map::new();
    response_header.insert("resourceType".into(), "MessageHeader".into());
    response_header.insert("id".into(), Value::String(format!("{id}-header")));
    if let Some(event) = header.get("eventCoding") {
        response_header.insert("eventCoding".into(), event.clone());
    }
    if let Some(source) = header.get("source").and_then(|s| s.get("endpoint")) {
        response_header.insert(
            "destination".into(),
            serde_json::json!([{"endpoint": source}]),
        );
    }
    response_header.insert("source".into(), serde_json::json!({"endpoint": base}));
    response_header.insert(
        "response".into(),
        serde_json::json!({"identifier": header.get("id").cloned().unwrap_or(Value::Null), "code": "ok"}),
    );
    let focus_refs: Vec<Value> = focused
        .iter()
        .filter_map(|e| e.get("fullUrl").and_then(Value::as_str))
        .map(|u| serde_json::json!({"reference": u}))
        .collect();
    if !focus_refs.is_empty() {
        response_header.insert("focus".into(), Value::Array(focus_refs));
    }
    let mut out_entries = vec![serde_json::json!({
        "fullUrl": format!("urn:uuid:{id}"),
        "resource": Value::Object(response_header)
    })];
    for e in focused {
        if let (Some(url), Some(resource)) = (e.get("fullUrl"), e.get("resource")) {
            out_entries.push(serde_json::json!({"fullUrl": url, "resource": resource}));
        }
    }
    serde_json::json!({
        "resourceType": "Bundle",
        "id": id,
        "type": "message",
        "timestamp": now,
        "entry": out_entries
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(v: Value) -> ParsedResource {
        let Value::Object(json) = v else {
            panic!("fixture is an object")
        };
        let resource_type = json["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        ParsedResource {
            resource_type,
            json,
        }
    }

    fn referral() -> ParsedResource {
        parsed(json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"fullUrl": "urn:uuid:task", "resource": {"resourceType": "Task", "status": "requested", "intent": "order",
                    "focus": {"reference": "urn:uuid:sr"}, "for": {"reference": "urn:uuid:pat"}},
                 "request": {"method": "POST", "url": "Task"}},
                {"fullUrl": "urn:uuid:sr", "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                    "subject": {"reference": "urn:uuid:pat"}},
                 "request": {"method": "POST", "url": "ServiceRequest"}},
                {"request": {"method": "GET", "url": "Patient?identifier=x|1"}},
                {"fullUrl": "urn:uuid:pat", "resource": {"resourceType": "Patient",
                    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:pat"}]},
                 "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=x|1"}},
                {"request": {"method": "DELETE", "url": "Observation/old"}}
            ]
        }))
    }

    fn entries(b: RequestBundle) -> Vec<RequestEntry> {
        b.entries
            .into_iter()
            .map(|e| e.expect("entry reads"))
            .collect()
    }

    #[test]
    fn reads_entries_and_orders_them() {
        let b = read_request(referral()).expect("reads");
        assert_eq!(b.kind, Kind::Transaction);
        let e = entries(b);
        assert_eq!(e[3].if_none_exist.as_deref(), Some("identifier=x|1"));
        // DELETE first; POSTs with what they reference first; GET last
        assert_eq!(processing_order(&e), vec![4, 3, 1, 0, 2]);
    }

    #[test]
    fn a_cycle_keeps_bundle_order() {
        let b = parsed(
            json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"fullUrl": "urn:uuid:a", "resource": {"resourceType": "Basic", "subject": {"reference": "urn:uuid:b"}}, "request": {"method": "POST", "url": "Basic"}},
                {"fullUrl": "urn:uuid:b", "resource": {"resourceType": "Basic", "subject": {"reference": "urn:uuid:a"}}, "request": {"method": "POST", "url": "Basic"}}
            ]}),
        );
        let e = entries(read_request(b).expect("reads"));
        assert_eq!(processing_order(&e), vec![1, 0]);
    }

    #[test]
    fn rewrites_references_not_identifiers() {
        let mut e = entries(read_request(referral()).expect("reads"));
        let ids: HashMap<String, String> = [
            ("urn:uuid:pat".to_string(), "Patient/p1".to_string()),
            ("urn:uuid:sr".to_string(), "ServiceRequest/s1".to_string()),
        ]
        .into();
        let mut task = e.remove(0).resource.expect("task").json;
        task.insert(
            "text".into(),
            json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"urn:uuid:pat\">patient</a></div>"}),
        );
        rewrite_references(&mut task, &ids);
        assert_eq!(task["focus"]["reference"], "ServiceRequest/s1");
        assert_eq!(task["for"]["reference"], "Patient/p1");
        assert!(
            task["text"]["div"]
                .as_str()
                .is_some_and(|d| d.contains("href=\"Patient/p1\""))
        );
        let mut patient = e.remove(2).resource.expect("patient").json;
        rewrite_references(&mut patient, &ids);
        assert_eq!(patient["identifier"][0]["value"], "urn:uuid:pat");
    }

    #[test]
    fn refuses_other_bundle_types_and_entries_without_method() {
        let b = parsed(json!({"resourceType": "Bundle", "type": "collection"}));
        let issues = read_request(b).expect_err("refused");
        assert_eq!(issues[0].expression.as_deref(), Some("Bundle.type"));
        let b = parsed(json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Basic"}, "request": {"url": "Basic"}},
            {"request": {"method": "PUT", "url": "Basic/1"}}
        ]}));
        let read = read_request(b).expect("reads");
        let errors: Vec<String> = read
            .entries
            .iter()
            .map(|e| {
                e.as_ref()
                    .expect_err("entry refused")
                    .first()
                    .and_then(|i| i.expression.clone())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            errors,
            ["Bundle.entry[0].request.method", "Bundle.entry[1].resource"]
        );
    }

    #[test]
    fn parses_request_urls() {
        let base = "https://hep.example.org/fhir";
        assert_eq!(
            parse_url("Patient", base),
            Some(Target::Type("Patient".into()))
        );
        assert_eq!(
            parse_url("https://hep.example.org/fhir/Patient/1", base),
            Some(Target::Instance("Patient".into(), "1".into()))
        );
        assert_eq!(
            parse_url("Patient/1/_history/2", base),
            Some(Target::Version("Patient".into(), "1".into(), "2".into()))
        );
        assert_eq!(
            parse_url("Patient?identifier=a|b", base),
            Some(Target::Search("Patient".into(), "identifier=a|b".into()))
        );
        assert_eq!(parse_url("Nope/1", base), None);
        assert_eq!(parse_url("Patient/1/x", base), None);
        assert_eq!(
            conditional_reference("Patient?identifier=a|b"),
            Some(("Patient", "identifier=a|b"))
        );
        assert_eq!(conditional_reference("Patient/1"), None);
    }
}
