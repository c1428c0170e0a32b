//! The operations on the store besides the REST interactions: `$apply` (a draft
//! prescription or program from the library), `$handout` (the take-home sheet) and the
//! members of a Group for the adherence of a clinic's cohort. Blocking: callers run
//! these on the blocking pool.

use fhir_mapping::hep::apply::{self, ApplyContext};
use fhir_mapping::hep::handout::{self, Handout, HandoutExercise};
use fhir_mapping::references::{ReferenceTarget, classify_reference};
use fhir_mapping::{Issue, IssueType};

use crate::clock::to_micros;
use crate::db::store::{self, Key, SearchQuery};
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;
use crate::service::{Scope, Written, create_own};

type JsonObject = serde_json::Map<String, serde_json::Value>;

/// The stored JSON of a live resource, or the answer for a missing or deleted one.
fn load(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    id: &str,
) -> Result<JsonObject, ApiError> {
    let key = Key {
        tenant,
        res_type,
        res_id: id,
    };
    let current = store::current(conn, key)?
        .ok_or_else(|| ApiError::NotFound(format!("{res_type}/{id} does not exist")))?;
    let body = current
        .body
        .filter(|_| !current.deleted)
        .ok_or_else(|| ApiError::Gone(format!("{res_type}/{id} was deleted")))?;
    serde_json::from_str(&body)
        .map_err(|e| ApiError::internal_from(format!("stored {res_type}/{id}"), e))
}

/// The current resource of `res_type` with this canonical (`url` or `url|version`).
fn find_canonical(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    canonical: &str,
) -> Result<Option<JsonObject>, ApiError> {
    let (url, version) = match canonical.split_once('|') {
        Some((u, v)) => (u, Some(v)),
        None => (canonical, None),
    };
    let mut conditions = vec![store::Condition::token("url", Some(""), url)];
    if let Some(v) = version {
        conditions.push(store::Condition::token("version", Some(""), v));
    }
    let rows = store::search(conn, &SearchQuery::new(tenant, res_type, &conditions, 1))?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|r| r.body)
        .and_then(|b| serde_json::from_str(&b).ok()))
}

fn check_subject(
    conn: &mut AnyConnection,
    tenant: &str,
    ctx: &ApplyContext,
) -> Result<(), ApiError> {
    let id = ctx.patient.strip_prefix("Patient/").unwrap_or_default();
    if store::exists(
        conn,
        Key {
            tenant,
            res_type: "Patient",
            res_id: id,
        },
    )? {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::NotFound,
                format!("{} does not exist", ctx.patient),
            )
            .at("subject"),
        ]))
    }
}

/// `ActivityDefinition/[id]/$apply`: a draft exercise prescription for the patient.
pub fn apply_exercise(
    db: &Db,
    scope: Scope,
    id: String,
    ctx: ApplyContext,
    limits: fhir_mapping::ParseLimits,
) -> Result<Written, ApiError> {
    let (tenant, sessions, clock) = (scope.tenant, scope.sessions, scope.clock);
    db.write(move |conn| {
        // the time of the write is taken in its transaction: see `Db::write`
        let now = to_micros(clock.now());
        check_subject(conn, &tenant, &ctx)?;
        let ad = load(conn, &tenant, "ActivityDefinition", &id)?;
        let sr = apply::prescription_from(&ad, &ctx).map_err(ApiError::Unprocessable)?;
        create_own(conn, &tenant, &sessions, &sr, &limits, now)
    })
}

/// `PlanDefinition/[id]/$apply`: a draft program for the patient, with one draft
/// prescription per exercise of the template, in one transaction.
pub fn apply_template(
    db: &Db,
    scope: Scope,
    id: String,
    ctx: ApplyContext,
    limits: fhir_mapping::ParseLimits,
) -> Result<Written, ApiError> {
    let (tenant, sessions, clock) = (scope.tenant, scope.sessions, scope.clock);
    db.write(move |conn| {
        // the time of the write is taken in its transaction: see `Db::write`
        let now = to_micros(clock.now());
        check_subject(conn, &tenant, &ctx)?;
        let pd = load(conn, &tenant, "PlanDefinition", &id)?;
        let exercises = apply::template_exercises(&pd).map_err(ApiError::Unprocessable)?;
        let mut refs = Vec::with_capacity(exercises.len());
        for (i, canonical) in exercises.iter().enumerate() {
            let ad = find_canonical(conn, &tenant, "ActivityDefinition", canonical)?.ok_or_else(
                || {
                    ApiError::Unprocessable(vec![
                        Issue::error(
                            IssueType::NotFound,
                            format!("the exercise `{canonical}` is not in the library"),
                        )
                        .at(format!("PlanDefinition.action[{i}].definitionCanonical")),
                    ])
                },
            )?;
            let sr = apply::prescription_from(&ad, &ctx).map_err(ApiError::Unprocessable)?;
            let written = create_own(conn, &tenant, &sessions, &sr, &limits, now)?;
            refs.push(format!("ServiceRequest/{}", written.id));
        }
        let cp = apply::program_from(&pd, &ctx, &refs).map_err(ApiError::Unprocessable)?;
        create_own(conn, &tenant, &sessions, &cp, &limits, now)
    })
}

/// What the take-home sheet of program `id` shows, read in one go.
pub fn handout(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    produced: String,
) -> Result<Handout, ApiError> {
    let plan = load(conn, tenant, "CarePlan", id)?;
    if !fhir_mapping::hep::program::claims_profile(&plan) {
        return Err(ApiError::Unprocessable(vec![
            Issue::error(
                IssueType::BusinessRule,
                "a take-home sheet is made from a home exercise program (hep-program profile)",
            )
            .at("CarePlan.meta.profile"),
        ]));
    }
    let local = |conn: &mut AnyConnection,
                 reference: Option<&str>|
     -> Result<Option<JsonObject>, ApiError> {
        match reference.map(classify_reference) {
            Some(ReferenceTarget::Local {
                resource_type,
                id,
                version: None,
            }) => match load(conn, tenant, &resource_type, &id) {
                Ok(j) => Ok(Some(j)),
                Err(ApiError::NotFound(_) | ApiError::Gone(_)) => Ok(None),
                Err(e) => Err(e),
            },
            _ => Ok(None),
        }
    };
    let reference = |j: &JsonObject, key: &str| -> Option<String> {
        j.get(key)
            .and_then(|v| v.get("reference"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let patient = local(conn, reference(&plan, "subject").as_deref())?;
    let author = local(conn, reference(&plan, "author").as_deref())?;
    let mut exercises = Vec::new();
    // the last day of any exercise, for a program that states no end
    let mut last_day: Option<String> = None;
    for activity in plan
        .get("activity")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
    {
        let r = activity
            .pointer("/reference/reference")
            .and_then(|v| v.as_str());
        let Some(rx) = local(conn, r)? else { continue };
        if matches!(rx.get("status").and_then(|s| s.as_str()), Some("revoked")) {
            continue;
        }
        if let Some(end) = rx
            .get("occurrenceTiming")
            .and_then(|t| t.pointer("/repeat/boundsPeriod/end"))
            .and_then(|e| e.as_str())
            && last_day.as_deref().is_none_or(|l| end > l)
        {
            last_day = Some(end.to_string());
        }
        let ad = match rx
            .get("instantiatesCanonical")
            .and_then(|c| c.get(0))
            .and_then(|c| c.as_str())
        {
            Some(c) => find_canonical(conn, tenant, "ActivityDefinition", c)?,
            None => None,
        };
        let name = rx
            .get("code")
            .and_then(|c| c.get("text"))
            .and_then(|t| t.as_str())
            .unwrap_or("Exercise")
            .to_string();
        exercises.push(HandoutExercise {
            name,
            steps: ad.as_ref().map(handout::steps).unwrap_or_default(),
            dose: rx
                .get("patientInstruction")
                .and_then(|p| p.as_str())
                .unwrap_or_default()
                .to_string(),
            image: match ad.as_ref().and_then(handout::image) {
                // a picture stored here travels inside the sheet (it prints offline)
                Some(url) if url.starts_with("Binary/") => local(conn, Some(&url))?
                    .as_ref()
                    .and_then(fhir_mapping::media::image_data_url),
                other => other,
            },
        });
    }
    let period = match (
        plan.get("period")
            .and_then(|p| p.get("start"))
            .and_then(|s| s.as_str()),
        plan.get("period")
            .and_then(|p| p.get("end"))
            .and_then(|s| s.as_str()),
    ) {
        (Some(s), Some(e)) => format!("from {s} to {e}"),
        (Some(s), None) => format!("from {s}"),
        (None, Some(e)) => format!("until {e}"),
        (None, None) => "dates as listed for each exercise".to_string(),
    };
    Ok(Handout {
        title: plan
            .get("title")
            .and_then(|t| t.as_str())
            .unwrap_or("Your home exercise program")
            .to_string(),
        patient: patient
            .as_ref()
            .and_then(handout::person_name)
            .unwrap_or_default(),
        therapist: author.as_ref().and_then(handout::person_name),
        contacts: author.as_ref().map(handout::contacts).unwrap_or_default(),
        period,
        exercises,
        produced,
    })
}

/// The patient ids among the members of a Group (404 when there is no such Group).
pub fn group_patients(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<std::collections::HashSet<String>, ApiError> {
    let group = load(conn, tenant, "Group", id)?;
    Ok(group
        .get("member")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .filter_map(|m| m.pointer("/entity/reference").and_then(|r| r.as_str()))
        .filter_map(|r| r.strip_prefix("Patient/"))
        .map(str::to_string)
        .collect())
}
