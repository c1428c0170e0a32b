//! Topic-based Subscriptions as the R4 Subscriptions Backport IG draws them
//! (`hl7.fhir.uv.subscriptions-backport`): the topics this server offers, a
//! `Subscription` read into what delivery needs (every problem reported with its
//! FHIRPath), which topics a write triggers, the values its filters compare, and the
//! notification Bundles.

use serde_json::{Map, Value, json};

use crate::hep::canonical;
use crate::outcome::{Issue, IssueType};

const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition";

/// The extension URLs of the backport profile.
pub fn backport_extension(name: &str) -> String {
    format!("{BACKPORT}/{name}")
}

/// One topic this server offers.
#[derive(Debug, PartialEq, Eq)]
pub struct Topic {
    /// The last part of its canonical URL.
    pub code: &'static str,
    pub title: &'static str,
    /// The type of the resources that trigger it (the focus of its events).
    pub resource_type: &'static str,
    /// The filters a Subscription may set (`Type?name=value`), each a reference.
    pub filters: &'static [&'static str],
}

/// The topics.
pub const TOPICS: &[Topic] = &[
    Topic {
        code: "referral-status",
        title: "A referral Task was received or its status changed",
        resource_type: "Task",
        filters: &["patient", "owner", "requester"],
    },
    Topic {
        code: "program",
        title: "A home exercise program (CarePlan) was created or changed",
        resource_type: "CarePlan",
        filters: &["patient"],
    },
    Topic {
        code: "session-outcome",
        title: "An exercise session (Task) was completed or missed",
        resource_type: "Task",
        filters: &["patient", "careplan"],
    },
    Topic {
        code: "adherence-summary",
        title: "An adherence summary Observation was written",
        resource_type: "Observation",
        filters: &["patient", "careplan"],
    },
    Topic {
        code: "communication",
        title: "A message (Communication) was sent, or its status or time received changed (a read receipt)",
        resource_type: "Communication",
        filters: &["patient", "sender", "recipient"],
    },
    Topic {
        code: "outcome-score",
        title: "An outcome measure was answered and scored (Observation)",
        resource_type: "Observation",
        filters: &["patient", "careplan"],
    },
];

impl Topic {
    /// The canonical URL (`Subscription.criteria`).
    pub fn url(&self) -> String {
        canonical("SubscriptionTopic", self.code)
    }
}

/// The topic of a canonical URL (a `|version` suffix is ignored).
pub fn topic_by_url(url: &str) -> Option<&'static Topic> {
    let url = url.split('|').next().unwrap_or(url);
    TOPICS.iter().find(|t| t.url() == url)
}

/// How much of the focus a notification carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Empty,
    IdOnly,
    FullResource,
}

impl Content {
    pub fn as_str(self) -> &'static str {
        match self {
            Content::Empty => "empty",
            Content::IdOnly => "id-only",
            Content::FullResource => "full-resource",
        }
    }

    pub fn parse(s: &str) -> Option<Content> {
        match s {
            "empty" => Some(Content::Empty),
            "id-only" => Some(Content::IdOnly),
            "full-resource" => Some(Content::FullResource),
            _ => None,
        }
    }
}

/// A Subscription as delivery needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSpec {
    pub topic: &'static Topic,
    /// `(name, value)` pairs, all of which an event's focus must match.
    pub filters: Vec<(String, String)>,
    pub endpoint: String,
    /// `Name: value` headers sent with every notification.
    pub headers: Vec<(String, String)>,
    pub content: Content,
    pub heartbeat_secs: Option<u32>,
    pub timeout_secs: Option<u32>,
    pub max_count: Option<u32>,
    /// `off` when the client turned it off; any other status asks for (re)activation.
    pub off: bool,
}

fn extension_value<'a>(element: Option<&'a Value>, url: &str, key: &str) -> Vec<&'a Value> {
    element
        .and_then(|e| e.get("extension"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("url").and_then(Value::as_str) == Some(url))
        .filter_map(|e| e.get(key))
        .collect()
}

/// Headers a client may not set on notifications (the server's own, or hop-by-hop).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "x-hep-signature",
    "x-hep-timestamp",
];

/// Reads a Subscription of the backport profile, reporting every problem.
pub fn read(json: &Map<String, Value>) -> Result<SubscriptionSpec, Vec<Issue>> {
    let mut issues = Vec::new();
    let mut problem = |code: IssueType, path: &str, msg: String| {
        issues.push(Issue::error(code, msg).at(path));
    };
    let criteria = json.get("criteria").and_then(Value::as_str).unwrap_or("");
    let topic = topic_by_url(criteria);
    if topic.is_none() {
        let known: Vec<String> = TOPICS.iter().map(Topic::url).collect();
        problem(
            IssueType::Value,
            "Subscription.criteria",
            format!(
                "criteria names the topic; this server offers: {}",
                known.join(", ")
            ),
        );
    }
    let mut filters = Vec::new();
    let filter_url = backport_extension("backport-filter-criteria");
    for (i, f) in extension_value(json.get("_criteria"), &filter_url, "valueString")
        .into_iter()
        .enumerate()
    {
        let path = format!("Subscription.criteria.extension[{i}]");
        let Some(f) = f.as_str() else {
            problem(IssueType::Value, &path, "a filter is a string".into());
            continue;
        };
        let Some(topic) = topic else { continue };
        let (t, query) = f.split_once('?').unwrap_or(("", f));
        if !t.is_empty() && t != topic.resource_type {
            problem(
                IssueType::Value,
                &path,
                format!(
                    "the filter `{f}` is not about {}, the topic's resource",
                    topic.resource_type
                ),
            );
            continue;
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !topic.filters.contains(&name) {
                problem(
                    IssueType::NotSupported,
                    &path,
                    format!(
                        "the topic `{}` filters by {} only, not `{name}`",
                        topic.code,
                        topic.filters.join(", ")
                    ),
                );
                continue;
            }
            let value = value.trim();
            if value.is_empty() {
                problem(IssueType::Value, &path, format!("`{name}` needs a value"));
                continue;
            }
            filters.push((name.to_string(), normalize_filter(name, value)));
        }
    }
    let channel = json.get("channel");
    let channel_type = channel
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if channel_type != "rest-hook" {
        problem(
            IssueType::NotSupported,
            "Subscription.channel.type",
            "this server delivers over `rest-hook` channels only".into(),
        );
    }
    let endpoint = channel
        .and_then(|c| c.get("endpoint"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if endpoint.is_empty() {
        problem(
            IssueType::Required,
            "Subscription.channel.endpoint",
            "a rest-hook channel needs its endpoint".into(),
        );
    }
    if let Some(payload) = channel
        .and_then(|c| c.get("payload"))
        .and_then(Value::as_str)
        && !matches!(payload, "application/fhir+json" | "application/json")
    {
        problem(
            IssueType::NotSupported,
            "Subscription.channel.payload",
            format!("notifications are sent as application/fhir+json, not `{payload}`"),
        );
    }
    let content_values = extension_value(
        channel.and_then(|c| c.get("_payload")),
        &backport_extension("backport-payload-content"),
        "valueCode",
    );
    let content = match content_values.first().and_then(|v| v.as_str()) {
        None => Content::IdOnly,
        Some(c) => Content::parse(c).unwrap_or_else(|| {
            problem(
                IssueType::Value,
                "Subscription.channel.payload.extension",
                format!("`{c}` is not a payload content (empty, id-only, full-resource)"),
            );
            Content::IdOnly
        }),
    };
    let mut headers = Vec::new();
    for (i, h) in channel
        .and_then(|c| c.get("header"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("Subscription.channel.header[{i}]");
        let parsed = h
            .as_str()
            .and_then(|h| h.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()));
        match parsed {
            Some((name, value))
                if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !value.contains(['\r', '\n']) =>
            {
                if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    problem(
                        IssueType::Value,
                        &path,
                        format!("the header `{name}` is set by the server"),
                    );
                } else {
                    headers.push((name, value));
                }
            }
            _ => problem(
                IssueType::Value,
                &path,
                "a header is written `Name: value`".into(),
            ),
        }
    }
    let number = |name: &str, key: &str, problem: &mut dyn FnMut(IssueType, &str, String)| {
        let values = extension_value(channel, &backport_extension(name), key);
        let v = values.first()?;
        match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                problem(
                    IssueType::Value,
                    "Subscription.channel.extension",
                    format!("{name} is a whole number"),
                );
                None
            }
        }
    };
    let heartbeat_secs = number(
        "backport-heartbeat-period",
        "valueUnsignedInt",
        &mut problem,
    );
    let timeout_secs = number("backport-timeout", "valueUnsignedInt", &mut problem);
    let max_count = number("backport-max-count", "valuePositiveInt", &mut problem);
    let off = json.get("status").and_then(Value::as_str) == Some("off");
    match topic {
        Some(topic) if issues.is_empty() => Ok(SubscriptionSpec {
            topic,
            filters,
            endpoint,
            headers,
            content,
            heartbeat_secs: heartbeat_secs.filter(|n| *n > 0),
            timeout_secs: timeout_secs.filter(|n| *n > 0),
            max_count: max_count.filter(|n| *n > 0),
            off,
        }),
        _ => Err(issues),
    }
}

/// A filter value as the server compares it: references as `Type/id` (a bare id of a
/// `patient` filter is a Patient's).
fn normalize_filter(name: &str, value: &str) -> String {
    if name == "patient" && !value.contains('/') {
        format!("Patient/{value}")
    } else {
        value.to_string()
    }
}

/// Sets the status the server keeps (`requested`, `active`, `error`, `off`).
pub fn set_status(json: &mut Map<String, Value>, status: &str) {
    json.insert("status".into(), Value::String(status.into()));
}

fn status_of(json: Option<&Map<String, Value>>) -> Option<&str> {
    json.and_then(|j| j.get("status")).and_then(Value::as_str)
}

fn is_summary(json: &Map<String, Value>) -> bool {
    let system = crate::hep::adherence::measure_system();
    json.get("code")
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c.get("system").and_then(Value::as_str) == Some(system.as_str()))
}

/// The topics a write triggers: `before` is the version replaced (none for a create),
/// `after` the new one (none for a delete, which triggers nothing).
pub fn triggered(
    resource_type: &str,
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
) -> Vec<&'static Topic> {
    let Some(after) = after else {
        return Vec::new();
    };
    let changed = status_of(before) != status_of(Some(after));
    let topic = |code: &str| TOPICS.iter().find(|t| t.code == code);
    let hit = match resource_type {
        "CarePlan" => topic("program"),
        "Task" if crate::hep::session::claims_profile(after) => {
            let done = matches!(status_of(Some(after)), Some("completed" | "failed"));
            if done && changed {
                topic("session-outcome")
            } else {
                None
            }
        }
        "Task" if crate::hep::referral::is_referral(after) && (before.is_none() || changed) => {
            topic("referral-status")
        }
        "Observation" if is_summary(after) => topic("adherence-summary"),
        "Observation"
            if crate::hep::claims(
                after,
                &crate::hep::canonical("StructureDefinition", "hep-outcome-score"),
            ) =>
        {
            topic("outcome-score")
        }
        "Communication" => {
            let received =
                |j: Option<&Map<String, Value>>| j.and_then(|j| j.get("received")).cloned();
            (before.is_none() || changed || received(before) != received(Some(after)))
                .then(|| topic("communication"))
                .flatten()
        }
        _ => None,
    };
    hit.into_iter().collect()
}

fn references_at<'a>(json: &'a Map<String, Value>, key: &str) -> Vec<&'a str> {
    match json.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|r| r.get("reference").and_then(Value::as_str))
            .collect(),
        Some(r) => r
            .get("reference")
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
        None => Vec::new(),
    }
}

/// The values of a topic's filters for a resource: `(name, Type/id)`.
pub fn filter_values(
    topic: &Topic,
    resource_type: &str,
    id: &str,
    json: &Map<String, Value>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for name in topic.filters {
        match *name {
            "patient" => {
                if let Some(p) = crate::search_params::patient_of(resource_type, id, json) {
                    out.push((*name, format!("Patient/{p}")));
                }
            }
            "careplan" => out.extend(
                references_at(json, "basedOn")
                    .into_iter()
                    .filter(|r| r.starts_with("CarePlan/"))
                    .map(|r| (*name, r.to_string())),
            ),
            other => out.extend(
                references_at(json, other)
                    .into_iter()
                    .map(|r| (*name, r.to_string())),
            ),
        }
    }
    out
}

/// One event of a notification.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub number: i64,
    pub timestamp: &'a str,
    /// `Type/id` of the focus.
    pub focus: &'a str,
    /// The focus as stored (full-resource content), if it may be sent.
    pub resource: Option<&'a Value>,
}

/// What kind of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationType {
    Handshake,
    Heartbeat,
    EventNotification,
    QueryStatus,
    QueryEvent,
}

impl NotificationType {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationType::Handshake => "handshake",
            NotificationType::Heartbeat => "heartbeat",
            NotificationType::EventNotification => "event-notification",
            NotificationType::QueryStatus => "query-status",
            NotificationType::QueryEvent => "query-event",
        }
    }
}

/// The state of a subscription a notification reports.
#[derive(Debug, Clone)]
pub struct Status<'a> {
    /// Its full URL.
    pub subscription: &'a str,
    pub topic: &'a Topic,
    pub status: &'a str,
    pub kind: NotificationType,
    pub events_since_start: i64,
    /// An error to report (`error` parameter), such as the last delivery failure.
    pub error: Option<&'a str>,
}

/// The SubscriptionStatus of R4 (a `Parameters` resource of the backport profile).
pub fn status_parameters(s: &Status<'_>, events: &[Event<'_>], content: Content) -> Value {
    let mut params = vec![
        json!({"name": "subscription", "valueReference": {"reference": s.subscription}}),
        json!({"name": "topic", "valueCanonical": s.topic.url()}),
        json!({"name": "status", "valueCode": s.status}),
        json!({"name": "type", "valueCode": s.kind.as_str()}),
        json!({"name": "events-since-subscription-start", "valueString": s.events_since_start.to_string()}),
    ];
    for e in events {
        let mut parts = vec![
            json!({"name": "event-number", "valueString": e.number.to_string()}),
            json!({"name": "timestamp", "valueInstant": e.timestamp}),
        ];
        if content != Content::Empty {
            parts.push(json!({"name": "focus", "valueReference": {"reference": e.focus}}));
        }
        params.push(json!({"name": "notification-event", "part": parts}));
    }
    if let Some(err) = s.error {
        params.push(json!({"name": "error", "valueCodeableConcept": {"text": err}}));
    }
    json!({
        "resourceType": "Parameters",
        "meta": {"profile": [format!("{BACKPORT}/backport-subscription-status-r4")]},
        "parameter": params
    })
}

/// A notification Bundle (`history`): the status first, then, by content, each event's
/// focus (its URL only for `id-only`, the resource for `full-resource`).
pub fn notification(
    base: &str,
    status_id: &str,
    timestamp: &str,
    s: &Status<'_>,
    events: &[Event<'_>],
    content: Content,
) -> Value {
    let mut status = status_parameters(s, events, content);
    status["id"] = Value::String(status_id.to_string());
    let mut entries = vec![json!({
        "fullUrl": format!("urn:uuid:{status_id}"),
        "resource": status,
        "request": {"method": "GET", "url": format!("{}/$status", s.subscription)},
        "response": {"status": "200"}
    })];
    if content != Content::Empty {
        for e in events {
            let mut entry = json!({"fullUrl": format!("{base}/{}", e.focus)});
            match (content, e.resource) {
                (Content::FullResource, Some(r)) => {
                    entry["resource"] = r.clone();
                    entry["request"] = json!({"method": "PUT", "url": e.focus});
                    entry["response"] = json!({"status": "200"});
                }
                _ => {
                    entry["request"] = json!({"method": "PUT", "url": e.focus});
                    entry["response"] = json!({"status": "200"});
                }
            }
            entries.push(entry);
        }
    }
    json!({
        "resourceType": "Bundle",
        "meta": {"profile": [format!("{BACKPORT}/backport-subscription-notification-r4")]},
        "type": "history",
        "timestamp": timestamp,
        "entry": entries
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(filter: &str) -> Map<String, Value> {
        let v = json!({
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "adherence for the EHR",
            "criteria": TOPICS[2].url(),
            "_criteria": {"extension": [{"url": backport_extension("backport-filter-criteria"), "valueString": filter}]},
            "channel": {
                "type": "rest-hook",
                "endpoint": "https://ehr.example.org/hooks",
                "payload": "application/fhir+json",
                "_payload": {"extension": [{"url": backport_extension("backport-payload-content"), "valueCode": "full-resource"}]},
                "header": ["Authorization: Bearer abc"],
                "extension": [{"url": backport_extension("backport-heartbeat-period"), "valueUnsignedInt": 60}]
            }
        });
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_backport_subscription_is_read() {
        let spec = read(&subscription("Task?patient=p1&careplan=CarePlan/c1")).expect("valid");
        assert_eq!(spec.topic.code, "session-outcome");
        assert_eq!(
            spec.filters,
            vec![
                ("patient".to_string(), "Patient/p1".to_string()),
                ("careplan".to_string(), "CarePlan/c1".to_string())
            ]
        );
        assert_eq!(spec.content, Content::FullResource);
        assert_eq!(spec.heartbeat_secs, Some(60));
        assert_eq!(
            spec.headers,
            vec![("Authorization".to_string(), "Bearer abc".to_string())]
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let mut s = subscription("Observation?status=final");
        s["channel"]["type"] = json!("websocket");
        s["channel"]["header"] = json!(["Host: evil"]);
        let issues = read(&s).expect_err("invalid");
        assert_eq!(issues.len(), 3, "{issues:?}");
        let mut s = subscription("");
        s.insert("criteria".into(), json!("http://example.org/topic"));
        assert!(read(&s).is_err());
    }

    #[test]
    fn writes_trigger_their_topics() {
        let session = |status: &str| {
            json!({"resourceType": "Task", "status": status,
                "meta": {"profile": [crate::hep::session::profile_url()]},
                "for": {"reference": "Patient/p1"},
                "basedOn": [{"reference": "CarePlan/c1"}]})
            .as_object()
            .cloned()
            .unwrap_or_default()
        };
        let (requested, completed) = (session("requested"), session("completed"));
        let t = triggered("Task", Some(&requested), Some(&completed));
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].code, "session-outcome");
        assert!(triggered("Task", Some(&completed), Some(&completed)).is_empty());
        assert!(triggered("Task", None, Some(&requested)).is_empty());
        let values = filter_values(t[0], "Task", "t1", &completed);
        assert!(values.contains(&("careplan", "CarePlan/c1".to_string())));
    }
}
