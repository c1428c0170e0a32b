//! The referral Task follows the program made for it: when a program (CarePlan) is
//! created from a referral (`CarePlan.basedOn` the referral ServiceRequest), the
//! referral Task moves to in-progress; when the program is completed, the Task is
//! completed with outputs that reference the program and its adherence summary. The
//! moves are the server's own (`Actor::Server`), written in the transaction of the
//! program's write. Blocking.

use fhir_mapping::hep::{program, referral};

use crate::clock::instant_string;
use crate::db::AnyConnection;
use crate::db::store;
use crate::error::ApiError;
use crate::sessions::{self, SessionSettings};

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// At most this many referral Tasks follow one referral ServiceRequest.
const MAX_TASKS: i64 = 20;

/// `ServiceRequest/...` references of `CarePlan.basedOn`.
fn referrals_of(plan: Option<&JsonObject>) -> Vec<String> {
    plan.and_then(|p| p.get("basedOn"))
        .and_then(serde_json::Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("reference").and_then(serde_json::Value::as_str))
                .filter(|r| r.starts_with("ServiceRequest/"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The live referral Tasks whose focus is `service_request` (`ServiceRequest/x`).
fn tasks_for(
    conn: &mut AnyConnection,
    tenant: &str,
    service_request: &str,
) -> Result<Vec<(String, i64, JsonObject)>, ApiError> {
    let search = crate::search::parsing::parse(
        "Task",
        &[("focus".to_string(), service_request.to_string())],
    )?;
    let rows = store::search(
        conn,
        &store::SearchQuery::new(tenant, "Task", &search.conditions, MAX_TASKS),
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let json: JsonObject = serde_json::from_str(r.body.as_deref()?).ok()?;
            referral::is_referral(&json).then_some((r.res_id, r.version, json))
        })
        .collect())
}

/// After a write of a program: moves the referral Tasks of the referrals it is based on.
pub fn after_program_write(
    conn: &mut AnyConnection,
    tenant: &str,
    care_plan_id: &str,
    before: Option<&JsonObject>,
    after: Option<&JsonObject>,
    settings: &SessionSettings,
    now: i64,
) -> Result<(), ApiError> {
    let Some(after) = after.filter(|a| program::claims_profile(a)) else {
        return Ok(());
    };
    fn status(j: Option<&JsonObject>) -> Option<&str> {
        j.and_then(|j| j.get("status")).and_then(|s| s.as_str())
    }
    let completed_now =
        status(Some(after)) == Some("completed") && status(before) != Some("completed");
    let before_refs = referrals_of(before);
    let now_text = instant_string(now);
    let plan = format!("CarePlan/{care_plan_id}");
    let mut summary: Option<Option<String>> = None;
    for service_request in referrals_of(Some(after)) {
        let newly_based = !before_refs.contains(&service_request);
        if !newly_based && !completed_now {
            continue;
        }
        for (id, version, task) in tasks_for(conn, tenant, &service_request)? {
            let mut moved = if newly_based {
                referral::start(&task, &now_text)
            } else {
                None
            };
            if completed_now {
                let current = moved.clone().unwrap_or_else(|| task.clone());
                if summary.is_none() {
                    summary = Some(sessions::program_summary(
                        conn,
                        tenant,
                        care_plan_id,
                        settings,
                        now,
                    )?);
                }
                let summary_ref = summary.clone().flatten();
                if let Some(done) =
                    referral::complete(&current, &plan, summary_ref.as_deref(), &now_text)
                {
                    moved = Some(done);
                }
            }
            if let Some(mut json) = moved {
                crate::commit::commit_built(
                    conn,
                    tenant,
                    "Task",
                    &id,
                    Some(version),
                    &mut json,
                    now,
                )?;
            }
        }
    }
    Ok(())
}
