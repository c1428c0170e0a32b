//! The referral Task of the HL7 Physical Activity IG (pa-task-for-referral-management):
//! an EHR asks the clinic to fulfil a referral. `focus` is the referral (a
//! ServiceRequest), `for` the patient, `requester` the referrer, `owner` the clinic,
//! `code` task-code `fulfill`, `intent` order. The referrer creates it `requested`; the
//! clinic and the referrer move it along the lifecycle of [`domain::referral`]; the
//! server starts it when the patient's program starts and completes it when the program
//! ends, returning the program and its adherence summary as outputs.
//!
//! The server writes `businessStatus` (BSeR Task business status) from the status, and
//! `lastModified` when the status changes.

use domain::referral::{self, Actor, Status};
use serde_json::{Map, Value, json};

use super::{canonical, session};
use crate::outcome::{Issue, IssueType};
use crate::references::{ReferenceTarget, classify_reference};
use crate::resource_types::is_valid_id;

/// Canonical URL of the Physical Activity IG's referral Task profile.
pub const PROFILE: &str =
    "http://hl7.org/fhir/us/physical-activity/StructureDefinition/pa-task-for-referral-management";

/// The BSeR STU1 Task business status code system.
pub const BSER_SYSTEM: &str = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS";

/// The Task code of a referral: (system, code).
pub const FULFILL: (&str, &str) = ("http://hl7.org/fhir/CodeSystem/task-code", "fulfill");

/// The code system of what the clinic returns for a referral (Task.output types).
pub fn output_system() -> String {
    canonical("CodeSystem", "referral-output")
}

/// Output types of the referral-output code system: (code, display).
pub const OUTPUT_CODES: &[(&str, &str)] = &[
    ("care-plan", "Home exercise program"),
    ("adherence-summary", "Adherence summary"),
];

/// Whether a resource claims the referral Task profile (`meta.profile`).
pub fn claims_profile(json: &Map<String, Value>) -> bool {
    super::claims(json, PROFILE)
}

/// Whether `reference` points at a `kind` resource: `Kind/id` (optionally
/// `/_history/v`) or an absolute URL whose path ends with `/Kind/id`.
fn refers_to(reference: &str, kind: &str) -> bool {
    match classify_reference(reference) {
        ReferenceTarget::Local { resource_type, .. } => resource_type == kind,
        ReferenceTarget::External(url) => {
            let Some(rest) = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
            else {
                return false;
            };
            let path = rest.split(['?', '#']).next().unwrap_or(rest);
            let path = path.split_once("/_history/").map_or(path, |(head, _)| head);
            // host, then at least the type and the id
            let segments: Vec<&str> = path.split('/').collect();
            matches!(segments.as_slice(), [_, .., k, id] if *k == kind && is_valid_id(id))
        }
        ReferenceTarget::Contained(_) | ReferenceTarget::Invalid(_) => false,
    }
}

fn reference(v: Option<&Value>) -> Option<&str> {
    v.and_then(|v| v.get("reference")).and_then(Value::as_str)
}

/// Whether `code` (one CodeableConcept) has the coding task-code `fulfill`.
fn has_fulfill_code(json: &Map<String, Value>) -> bool {
    json.get("code")
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .is_some_and(|codings| {
            codings.iter().any(|c| {
                c.get("system").and_then(Value::as_str) == Some(FULFILL.0)
                    && c.get("code").and_then(Value::as_str) == Some(FULFILL.1)
            })
        })
}

/// `focus` when it is a ServiceRequest reference.
fn focus(json: &Map<String, Value>) -> Option<&str> {
    reference(json.get("focus")).filter(|r| refers_to(r, "ServiceRequest"))
}

/// Whether a Task is a referral Task: not an exercise session, and either claiming the
/// profile or fulfilling a ServiceRequest (`code` task-code `fulfill`, `focus`
/// `ServiceRequest/id` or an absolute URL ending so).
pub fn is_referral(json: &Map<String, Value>) -> bool {
    !session::claims_profile(json)
        && (claims_profile(json) || (has_fulfill_code(json) && focus(json).is_some()))
}

/// A referral read from its Task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralView {
    pub status: Status,
    /// Whether `statusReason` is given.
    pub reason: bool,
    /// The referral: `ServiceRequest/id` or an absolute URL.
    pub focus: String,
    /// The clinic (required by the profile, absent from a Task that does not claim it).
    pub owner: Option<String>,
    /// The referrer.
    pub requester: Option<String>,
}

/// Reads a referral Task, reporting every problem: the status is one of the PA Task
/// Fulfillment Status value set, `intent` is order, `focus` a ServiceRequest; a Task
/// that claims the profile also has `code` fulfill, `for` the patient, `authoredOn`,
/// `owner`, and a text for a `businessStatus` the server does not write.
pub fn read(json: &Map<String, Value>) -> Result<ReferralView, Vec<Issue>> {
    let mut issues = Vec::new();
    let mut need = |ok: bool, at: &str, code: IssueType, msg: &str| {
        if !ok {
            issues.push(Issue::error(code, msg).at(format!("Task.{at}")));
        }
    };
    let status = json
        .get("status")
        .and_then(Value::as_str)
        .and_then(Status::from_code);
    need(
        status.is_some(),
        "status",
        IssueType::Value,
        "a referral Task's status is one of requested, accepted, rejected, in-progress, on-hold, failed, completed, cancelled or entered-in-error (PA Task Fulfillment Status)",
    );
    let intent = json.get("intent").and_then(Value::as_str);
    need(
        intent == Some("order"),
        "intent",
        if intent.is_none() {
            IssueType::Required
        } else {
            IssueType::Value
        },
        "a referral Task's intent is order",
    );
    let focus = focus(json);
    need(
        focus.is_some(),
        "focus",
        IssueType::Required,
        "focus is the referral: a ServiceRequest reference (ServiceRequest/id or an absolute URL)",
    );
    if claims_profile(json) {
        need(
            has_fulfill_code(json),
            "code",
            IssueType::Value,
            "a referral Task's code is task-code fulfill",
        );
        need(
            reference(json.get("for")).is_some_and(|r| refers_to(r, "Patient")),
            "for",
            IssueType::Required,
            "for is the patient (a Patient reference)",
        );
        need(
            json.get("authoredOn").and_then(Value::as_str).is_some(),
            "authoredOn",
            IssueType::Required,
            "authoredOn says when the referral was made",
        );
        need(
            reference(json.get("owner")).is_some(),
            "owner",
            IssueType::Required,
            "owner is the clinic asked to fulfil the referral",
        );
        need(
            status.is_none_or(|s| referral::business_status(s).is_some())
                || json
                    .get("businessStatus")
                    .is_none_or(|b| b.get("text").and_then(Value::as_str).is_some()),
            "businessStatus.text",
            IssueType::Required,
            "a businessStatus has a text",
        );
    }
    let reason = json.get("statusReason").is_some_and(|r| !r.is_null());
    match (status, focus, issues.is_empty()) {
        (Some(status), Some(focus), true) => Ok(ReferralView {
            status,
            reason,
            focus: focus.to_string(),
            owner: reference(json.get("owner")).map(str::to_string),
            requester: reference(json.get("requester")).map(str::to_string),
        }),
        _ => Err(issues),
    }
}

/// The reason rule (pa-taskrm-1), as an issue at `Task.statusReason`.
fn check_reason(view: &ReferralView, issues: &mut Vec<Issue>) {
    if let Err(e) = referral::check_reason(view.status, view.reason) {
        issues.push(Issue::error(IssueType::BusinessRule, e.to_string()).at("Task.statusReason"));
    }
}

fn result(issues: Vec<Issue>) -> Result<(), Vec<Issue>> {
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

/// Checks a new referral: requested, and no reason.
pub fn check_create(view: &ReferralView) -> Result<(), Vec<Issue>> {
    let mut issues = Vec::new();
    if let Err(e) = referral::check_initial(view.status) {
        issues.push(Issue::error(IssueType::BusinessRule, e.to_string()).at("Task.status"));
    }
    check_reason(view, &mut issues);
    result(issues)
}

/// Checks a change from `from` (`None`: not known) by `actor`.
fn check_from(from: Option<Status>, new: &ReferralView, actor: Actor) -> Result<(), Vec<Issue>> {
    let mut issues = Vec::new();
    if let Some(from) = from
        && let Err(e) = referral::transition(from, new.status, actor)
    {
        issues.push(Issue::error(IssueType::BusinessRule, e.to_string()).at("Task.status"));
    }
    check_reason(new, &mut issues);
    result(issues)
}

/// Checks an update of a referral by `actor`: an allowed move (or an edit that keeps
/// the status, refused on a completed referral), and a reason exactly when the new
/// status requires one.
pub fn check_change(
    old: &ReferralView,
    new: &ReferralView,
    actor: Actor,
) -> Result<(), Vec<Issue>> {
    check_from(Some(old.status), new, actor)
}

/// [`check_change`] against the stored JSON of a referral, which may not read as a
/// view (stored before the rules applied to it): its status alone decides the move,
/// and a status outside the referral lifecycle leaves only the reason rule.
pub fn check_update(
    stored: &Map<String, Value>,
    new: &ReferralView,
    actor: Actor,
) -> Result<(), Vec<Issue>> {
    check_from(status_of(stored), new, actor)
}

fn status_of(json: &Map<String, Value>) -> Option<Status> {
    json.get("status")
        .and_then(Value::as_str)
        .and_then(Status::from_code)
}

/// The BSeR business status of `status`, when it has one.
fn business_status_json(status: Status) -> Option<Value> {
    referral::business_status(status).map(|(code, display)| {
        json!({"coding": [{"system": BSER_SYSTEM, "code": code, "display": display}], "text": display})
    })
}

/// The server's parts of a referral written by a client. `businessStatus` is the BSeR
/// code of the status; for on-hold and entered-in-error (no code) the one sent is kept,
/// else the stored one. `lastModified` is `now` when the referral is created or its
/// status changes; otherwise the one sent is kept, else the stored one. `current` is
/// the stored version (ignored when it is not a referral).
pub fn apply_generated(
    json: &mut Map<String, Value>,
    view: &ReferralView,
    current: Option<&Map<String, Value>>,
    now: &str,
) {
    let current = current.filter(|c| is_referral(c));
    match business_status_json(view.status) {
        Some(b) => {
            json.insert("businessStatus".into(), b);
        }
        None => {
            if !json.contains_key("businessStatus")
                && let Some(b) = current.and_then(|c| c.get("businessStatus"))
            {
                json.insert("businessStatus".into(), b.clone());
            }
        }
    }
    if current.and_then(status_of) != Some(view.status) {
        json.insert("lastModified".into(), json!(now));
    } else if !json.contains_key("lastModified")
        && let Some(t) = current.and_then(|c| c.get("lastModified"))
    {
        json.insert("lastModified".into(), t.clone());
    }
}

/// A move by the server: the Task at `to`, without a reason, with its business status
/// and `lastModified`; `None` when the Task is not a referral, is already at `to` or
/// may not move there.
fn server_move(task: &Map<String, Value>, to: Status, now: &str) -> Option<Map<String, Value>> {
    if !is_referral(task) {
        return None;
    }
    let from = status_of(task)?;
    if from == to {
        return None;
    }
    referral::transition(from, to, Actor::Server).ok()?;
    let mut next = task.clone();
    next.insert("status".into(), json!(to.code()));
    next.remove("statusReason");
    if let Some(b) = business_status_json(to) {
        next.insert("businessStatus".into(), b);
    }
    next.insert("lastModified".into(), json!(now));
    Some(next)
}

/// The referral started by the server (its program started): in-progress from
/// requested, accepted or on-hold. `None` when it is not allowed or already started.
/// The caller stores the result as a new version.
pub fn start(task: &Map<String, Value>, now: &str) -> Option<Map<String, Value>> {
    server_move(task, Status::InProgress, now)
}

/// The referral completed by the server (its program ended): completed from accepted,
/// in-progress or on-hold, with the program (`CarePlan/id`) and, when given, its
/// adherence summary as outputs (an output already there is not repeated). `None` when
/// it is not allowed or already completed. The caller stores the result as a new
/// version.
pub fn complete(
    task: &Map<String, Value>,
    care_plan_ref: &str,
    summary_ref: Option<&str>,
    now: &str,
) -> Option<Map<String, Value>> {
    let mut next = server_move(task, Status::Completed, now)?;
    let system = output_system();
    let mut outputs: Vec<Value> = next
        .get("output")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let parts = [
        Some((OUTPUT_CODES[0], care_plan_ref)),
        summary_ref.map(|r| (OUTPUT_CODES[1], r)),
    ];
    for ((code, display), r) in parts.into_iter().flatten() {
        let present = outputs.iter().any(|o| {
            reference(o.get("valueReference")) == Some(r)
                && o.get("type")
                    .and_then(|t| t.get("coding"))
                    .and_then(Value::as_array)
                    .is_some_and(|c| {
                        c.iter().any(|c| {
                            c.get("system").and_then(Value::as_str) == Some(&system)
                                && c.get("code").and_then(Value::as_str) == Some(code)
                        })
                    })
        });
        if !present {
            outputs.push(json!({
                "type": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
                "valueReference": {"reference": r}
            }));
        }
    }
    next.insert("output".into(), Value::Array(outputs));
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-03-05T14:00:00Z";

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// A referral as an EHR sends it.
    fn referral() -> Map<String, Value> {
        obj(json!({
            "resourceType": "Task",
            "meta": {"profile": [PROFILE]},
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "REF-2026-0042"}],
            "status": "requested",
            "intent": "order",
            "priority": "routine",
            "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill", "display": "Fulfill the focal request"}]},
            "focus": {"reference": "ServiceRequest/ref-1", "display": "Physical therapy: knee osteoarthritis"},
            "for": {"reference": "Patient/p1"},
            "authoredOn": "2026-03-01T09:30:00-05:00",
            "requester": {"reference": "Organization/ehr"},
            "owner": {"reference": "Organization/clinic"},
            "reasonCode": {"text": "Home exercise program after knee arthroscopy"}
        }))
    }

    fn with(mut task: Map<String, Value>, changes: Value) -> Map<String, Value> {
        for (k, v) in obj(changes) {
            if v.is_null() {
                task.remove(&k);
            } else {
                task.insert(k, v);
            }
        }
        task
    }

    fn at(issues: &[Issue]) -> Vec<&str> {
        issues
            .iter()
            .filter_map(|i| i.expression.as_deref())
            .collect()
    }

    /// A stored referral at `status` (with a reason when it needs one), as the server
    /// wrote it.
    fn stored(status: Status) -> Map<String, Value> {
        let mut t = with(referral(), json!({"status": status.code()}));
        if referral::requires_reason(status) {
            t.insert("statusReason".into(), json!({"text": "stored reason"}));
        }
        let view = read(&t).expect("valid");
        apply_generated(&mut t, &view, None, "2026-03-02T10:00:00Z");
        t
    }

    /// The rules a write goes through, as the server runs them.
    fn write(
        json: &mut Map<String, Value>,
        current: Option<&Map<String, Value>>,
    ) -> Result<(), Vec<Issue>> {
        assert!(crate::hep::claims_a_profile("Task", json));
        crate::hep::apply_rules("Task", json, current, &mut |_| None, NOW, Actor::Unknown)
    }

    #[test]
    fn referrals_are_told_apart_from_other_tasks() {
        assert!(is_referral(&referral()));
        let mut unclaimed = referral();
        unclaimed.remove("meta");
        assert!(
            is_referral(&unclaimed),
            "code fulfill and focus ServiceRequest"
        );
        for focus in [
            "https://ehr.example.org/fhir/ServiceRequest/ref-1",
            "http://ehr.example.org/ServiceRequest/ref-1/_history/3",
            "ServiceRequest/ref-1/_history/2",
        ] {
            let t = with(unclaimed.clone(), json!({"focus": {"reference": focus}}));
            assert!(is_referral(&t), "{focus}");
        }
        for focus in [
            "Patient/p1",
            "urn:uuid:4f1c6a1e-0d2b-4e55-9d3e-1b2f8a6c7d90",
            "https://ehr.example.org/fhir/ServiceRequest",
            "https://ehr.example.org/fhir/Patient/p1",
            "#sr",
        ] {
            let t = with(unclaimed.clone(), json!({"focus": {"reference": focus}}));
            assert!(!is_referral(&t), "{focus}");
        }
        assert!(!is_referral(&with(
            unclaimed.clone(),
            json!({"code": null})
        )));
        // an exercise session fulfils a ServiceRequest too, but is not a referral
        let session = with(
            unclaimed,
            json!({"meta": {"profile": [session::profile_url()]}}),
        );
        assert!(!is_referral(&session));
        assert!(!crate::hep::claims_a_profile(
            "Task",
            &obj(json!({"resourceType": "Task", "status": "requested", "intent": "order"}))
        ));
    }

    #[test]
    fn a_referral_reads_and_every_problem_is_located() {
        let v = read(&referral()).expect("valid");
        assert_eq!(
            v,
            ReferralView {
                status: Status::Requested,
                reason: false,
                focus: "ServiceRequest/ref-1".into(),
                owner: Some("Organization/clinic".into()),
                requester: Some("Organization/ehr".into()),
            }
        );
        let bad = with(
            referral(),
            json!({"status": "received", "intent": null, "focus": {"reference": "Patient/p1"},
                   "for": {"reference": "Group/g"}, "owner": null, "authoredOn": null}),
        );
        let issues = read(&bad).expect_err("invalid");
        assert_eq!(
            at(&issues),
            [
                "Task.status",
                "Task.intent",
                "Task.focus",
                "Task.for",
                "Task.authoredOn",
                "Task.owner"
            ]
        );
        assert_eq!(issues[1].code, IssueType::Required);
        let plan = read(&with(referral(), json!({"intent": "plan"}))).expect_err("plan");
        assert_eq!(
            (at(&plan), plan[0].code),
            (vec!["Task.intent"], IssueType::Value)
        );
        // a Task that does not claim the profile is held to the referral rules only
        let mut unclaimed = with(referral(), json!({"owner": null, "for": null}));
        unclaimed.remove("meta");
        assert_eq!(read(&unclaimed).map(|v| v.owner), Ok(None));
        // on hold, the business status is the client's: it needs a text
        let held = with(
            stored(Status::OnHold),
            json!({"businessStatus": {"coding": [{"system": BSER_SYSTEM, "code": "5.x"}]}}),
        );
        assert_eq!(
            at(&read(&held).expect_err("no text")),
            ["Task.businessStatus.text"]
        );
    }

    #[test]
    fn a_new_referral_is_requested_and_gets_its_business_status() {
        let mut t = referral();
        assert_eq!(write(&mut t, None), Ok(()));
        assert_eq!(t["businessStatus"]["coding"][0]["system"], BSER_SYSTEM);
        assert_eq!(t["businessStatus"]["coding"][0]["code"], "2.0");
        assert_eq!(t["businessStatus"]["text"], "Service Request Created");
        assert_eq!(t["lastModified"], NOW);

        let mut accepted = with(referral(), json!({"status": "accepted"}));
        let issues = write(&mut accepted, None).expect_err("accepted at creation");
        assert_eq!(at(&issues), ["Task.status"]);
        assert_eq!(issues[0].code, IssueType::BusinessRule);
        assert_eq!(
            issues[0].diagnostics,
            "a new referral Task is requested, not accepted"
        );

        let mut with_reason = with(referral(), json!({"statusReason": {"text": "urgent"}}));
        let issues = write(&mut with_reason, None).expect_err("reason");
        assert_eq!(at(&issues), ["Task.statusReason"]);
    }

    /// (stored status, status sent, statusReason sent, where it is refused).
    const CHANGES: &[(Status, Status, bool, Option<&str>)] = {
        use Status::*;
        &[
            (Requested, Accepted, false, None),
            (Requested, Rejected, true, None),
            (Requested, Rejected, false, Some("Task.statusReason")),
            (Requested, Accepted, true, Some("Task.statusReason")),
            (Requested, Cancelled, true, None),
            (Requested, InProgress, false, Some("Task.status")),
            (Accepted, InProgress, false, None),
            (Accepted, OnHold, true, None),
            (Accepted, OnHold, false, Some("Task.statusReason")),
            (InProgress, Failed, true, None),
            (InProgress, Completed, false, None),
            (InProgress, EnteredInError, false, None),
            (OnHold, InProgress, false, None),
            (OnHold, InProgress, true, Some("Task.statusReason")),
            (OnHold, Completed, false, Some("Task.status")),
            (Accepted, Requested, false, Some("Task.status")),
            (Rejected, Accepted, false, Some("Task.status")),
            (Cancelled, Cancelled, true, None),
            (Completed, Completed, false, Some("Task.status")),
            (Completed, InProgress, false, Some("Task.status")),
        ]
    };

    #[test]
    fn changes_follow_the_lifecycle_and_the_reason_rule() {
        for &(from, to, reason, refused) in CHANGES {
            let old = stored(from);
            let mut new = with(
                old.clone(),
                json!({"status": to.code(), "statusReason": if reason { json!({"text": "why"}) } else { Value::Null }}),
            );
            let result = write(&mut new, Some(&old));
            let case = format!("{from:?} -> {to:?}, reason {reason}");
            match refused {
                None => assert_eq!(result, Ok(()), "{case}"),
                Some(location) => {
                    let issues = result.expect_err(&case);
                    assert_eq!(at(&issues), [location], "{case}");
                    assert_eq!(issues[0].code, IssueType::BusinessRule, "{case}");
                }
            }
        }
    }

    #[test]
    fn reason_issues_say_which_statuses_need_one() {
        let old = stored(Status::Requested);
        let mut rejected = with(old.clone(), json!({"status": "rejected"}));
        let issues = write(&mut rejected, Some(&old)).expect_err("no reason");
        assert!(
            issues[0]
                .diagnostics
                .contains("required when rejected, on-hold, failed or cancelled"),
            "{}",
            issues[0].diagnostics
        );
        let mut accepted = with(
            old.clone(),
            json!({"status": "accepted", "statusReason": {"text": "ok"}}),
        );
        let issues = write(&mut accepted, Some(&old)).expect_err("reason");
        assert!(
            issues[0]
                .diagnostics
                .contains("not permitted with status accepted"),
            "{}",
            issues[0].diagnostics
        );
    }

    #[test]
    fn acceptance_sets_the_business_status_and_a_completed_referral_is_frozen() {
        let old = stored(Status::Requested);
        assert_eq!(old["businessStatus"]["coding"][0]["code"], "2.0");
        let mut accepted = with(old.clone(), json!({"status": "accepted"}));
        assert_eq!(write(&mut accepted, Some(&old)), Ok(()));
        assert_eq!(accepted["businessStatus"]["coding"][0]["code"], "3.0");
        assert_eq!(
            accepted["businessStatus"]["text"],
            "Service Request Accepted"
        );
        assert_eq!(accepted["lastModified"], NOW);

        // an edit that keeps the status keeps lastModified
        let mut edited = with(
            accepted.clone(),
            json!({"priority": "urgent", "lastModified": null}),
        );
        assert_eq!(write(&mut edited, Some(&accepted)), Ok(()));
        assert_eq!(edited["lastModified"], NOW);
        let mut edited_later = with(edited.clone(), json!({"lastModified": null}));
        let older = with(
            edited.clone(),
            json!({"lastModified": "2026-03-03T08:00:00Z"}),
        );
        assert_eq!(write(&mut edited_later, Some(&older)), Ok(()));
        assert_eq!(edited_later["lastModified"], "2026-03-03T08:00:00Z");

        let done = stored(Status::Completed);
        let mut note = with(done.clone(), json!({"note": [{"text": "one more thing"}]}));
        let issues = write(&mut note, Some(&done)).expect_err("frozen");
        assert_eq!(at(&issues), ["Task.status"]);
        assert_eq!(
            issues[0].diagnostics,
            "a completed referral Task is final; further work needs a new Task"
        );
    }

    #[test]
    fn on_hold_keeps_the_business_status_it_had() {
        let running = start(&stored(Status::Accepted), NOW).expect("started");
        let mut held = with(
            running.clone(),
            json!({"status": "on-hold", "statusReason": {"text": "patient in hospital"}, "businessStatus": null}),
        );
        assert_eq!(write(&mut held, Some(&running)), Ok(()));
        assert_eq!(held["businessStatus"], running["businessStatus"]);
        assert_eq!(held["businessStatus"]["coding"][0]["code"], "5.x");
        // one sent by the client is kept
        let mine = json!({"coding": [{"system": BSER_SYSTEM, "code": "5.4"}], "text": "Cancellation requested"});
        let mut held = with(
            running.clone(),
            json!({"status": "on-hold", "statusReason": {"text": "away"}, "businessStatus": mine}),
        );
        assert_eq!(write(&mut held, Some(&running)), Ok(()));
        assert_eq!(held["businessStatus"], mine);
    }

    #[test]
    fn the_server_starts_a_referral_once() {
        let accepted = stored(Status::Accepted);
        let started = start(&accepted, NOW).expect("accepted -> in-progress");
        assert_eq!(started["status"], "in-progress");
        assert_eq!(started["businessStatus"]["coding"][0]["code"], "5.x");
        assert_eq!(started["lastModified"], NOW);
        assert_eq!(started["focus"], accepted["focus"]);
        assert_eq!(read(&started).map(|v| v.status), Ok(Status::InProgress));
        assert_eq!(start(&started, NOW), None, "already in progress");
        // an unanswered referral is accepted by starting it; one on hold resumes
        assert!(start(&stored(Status::Requested), NOW).is_some());
        let resumed = start(&stored(Status::OnHold), NOW).expect("resumed");
        assert!(!resumed.contains_key("statusReason"));
        for closed in [
            Status::Rejected,
            Status::Failed,
            Status::Cancelled,
            Status::EnteredInError,
            Status::Completed,
        ] {
            assert_eq!(start(&stored(closed), NOW), None, "{closed:?}");
        }
        let mut not_a_referral = stored(Status::Accepted);
        not_a_referral.remove("meta");
        not_a_referral.remove("code");
        assert_eq!(start(&not_a_referral, NOW), None);
    }

    #[test]
    fn the_server_completes_a_referral_with_its_outputs() {
        let running = start(&stored(Status::Requested), NOW).expect("started");
        let done = complete(&running, "CarePlan/cp1", Some("Observation/w1"), NOW)
            .expect("in-progress -> completed");
        assert_eq!(done["status"], "completed");
        assert_eq!(done["businessStatus"]["coding"][0]["code"], "7.0");
        assert_eq!(
            done["businessStatus"]["text"],
            "Service Request Fulfillment Completed"
        );
        let system = output_system();
        assert_eq!(
            done["output"],
            json!([
                {"type": {"coding": [{"system": system, "code": "care-plan", "display": "Home exercise program"}], "text": "Home exercise program"},
                 "valueReference": {"reference": "CarePlan/cp1"}},
                {"type": {"coding": [{"system": system, "code": "adherence-summary", "display": "Adherence summary"}], "text": "Adherence summary"},
                 "valueReference": {"reference": "Observation/w1"}}
            ])
        );
        assert_eq!(read(&done).map(|v| v.status), Ok(Status::Completed));
        assert_eq!(complete(&done, "CarePlan/cp1", None, NOW), None, "final");
        // from on hold, without a summary: the reason goes, an output is not repeated
        let mut held = stored(Status::OnHold);
        held.insert(
            "output".into(),
            json!([{"type": {"coding": [{"system": system, "code": "care-plan"}]}, "valueReference": {"reference": "CarePlan/cp1"}}]),
        );
        let done = complete(&held, "CarePlan/cp1", None, NOW).expect("on-hold -> completed");
        assert!(!done.contains_key("statusReason"));
        assert_eq!(done["output"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            complete(&stored(Status::Requested), "CarePlan/cp1", None, NOW),
            None
        );
        assert_eq!(
            complete(&stored(Status::Cancelled), "CarePlan/cp1", None, NOW),
            None
        );
    }
}
