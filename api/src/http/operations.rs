//! Operations: `$apply` on library exercises and protocol templates, `$handout`,
//! `$adherence`.

use actix_web::{HttpRequest, HttpResponse, web};
use fhir_mapping::hep::apply::ApplyContext;
use fhir_mapping::resource_types::is_valid_id;
use serde_json::Value;

use super::negotiate;
use super::negotiate::finish;
use super::rest::{blocking, path_id, write_response};
use super::state::AppState;
use crate::auth::scopes::Perm;
use crate::clock::to_micros;
use crate::error::ApiError;

/// Weeks of a program applied from the library, until the therapist changes it.
const DEFAULT_WEEKS: u8 = 6;

/// The parameters of `$apply`, from the query string and, for POST, a Parameters body.
async fn context(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<ApplyContext, ApiError> {
    let mut params: Vec<(String, String)> = negotiate::query_pairs(req)?
        .into_iter()
        .filter(|(k, _)| k != "_format" && k != "_pretty")
        .collect();
    if req.method() == actix_web::http::Method::POST && req.headers().contains_key("content-type") {
        negotiate::input_format(req)?;
        let body = negotiate::read_body(req, payload, state.max_body_bytes).await?;
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!("the body is not a Parameters resource: {e}"))
        })?;
        if value.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(ApiError::BadRequest(
                "the body of $apply is a Parameters resource".into(),
            ));
        }
        for p in value
            .get("parameter")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let v = p
                .get("valueString")
                .or_else(|| p.pointer("/valueReference/reference"))
                .and_then(Value::as_str);
            if let Some(v) = v {
                params.push((name.to_string(), v.to_string()));
            }
        }
    }
    let mut patient = None;
    let mut practitioner = None;
    for (k, v) in params {
        match k.as_str() {
            "subject" => patient = Some(v),
            "practitioner" => practitioner = Some(v),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "parameter `{other}` of $apply is not supported (subject, practitioner)"
                )));
            }
        }
    }
    let patient = patient
        .filter(|p| p.strip_prefix("Patient/").is_some_and(is_valid_id))
        .ok_or_else(|| ApiError::BadRequest("$apply needs subject=Patient/<id>".into()))?;
    if let Some(p) = &practitioner {
        let ok = p.split_once('/').is_some_and(|(t, id)| {
            matches!(t, "Practitioner" | "PractitionerRole") && is_valid_id(id)
        });
        if !ok {
            return Err(ApiError::BadRequest(
                "practitioner is Practitioner/<id> or PractitionerRole/<id>".into(),
            ));
        }
    }
    let today = state.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    Ok(ApplyContext {
        patient,
        practitioner,
        start: today,
        weeks: DEFAULT_WEEKS,
    })
}

type ApplyFn = fn(
    &crate::db::Db,
    crate::service::Scope,
    String,
    ApplyContext,
    fhir_mapping::ParseLimits,
) -> Result<crate::service::Written, ApiError>;

async fn apply(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    f: ApplyFn,
) -> HttpResponse {
    let result = async {
        let id = path_id(&req)?;
        let access = super::authn::access(&req)?;
        access.require_beyond_patient("$apply")?;
        let definition = if req.path().contains("/PlanDefinition/") {
            "PlanDefinition"
        } else {
            "ActivityDefinition"
        };
        access.require(definition, Perm::Read)?;
        access.require("ServiceRequest", Perm::Create)?;
        let limits = access.require("CarePlan", Perm::Create)?;
        let out = negotiate::output(&req, &negotiate::query_pairs(&req)?)?;
        let ctx = context(&req, payload, &state).await?;
        let st = state.clone();
        let scope = st.scope_for(&access, &limits);
        let written = blocking(move || f(&st.db, scope, id, ctx, st.limits)).await?;
        write_response(&req, &state, out, &written)
    }
    .await;
    finish(&req, result)
}

/// `PlanDefinition/[id]/$apply`.
pub async fn apply_template(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    apply(req, payload, state, crate::operations::apply_template).await
}

/// `ActivityDefinition/[id]/$apply`.
pub async fn apply_exercise(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    apply(req, payload, state, crate::operations::apply_exercise).await
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sheet {
    Html,
    Pdf,
}

/// The sheet format an `Accept` header asks for: the first of its media types (by
/// quality, then order) that is HTML or PDF; no header or `*/*` gives HTML.
fn sheet_format(accept: Option<&str>) -> Result<Sheet, ApiError> {
    let Some(accept) = accept else {
        return Ok(Sheet::Html);
    };
    for media in negotiate::media_ranges(accept) {
        match media.to_ascii_lowercase().as_str() {
            "text/html" | "text/*" | "*/*" => return Ok(Sheet::Html),
            "application/pdf" | "application/*" => return Ok(Sheet::Pdf),
            _ => {}
        }
    }
    Err(ApiError::NotAcceptable(
        "the take-home sheet is available as text/html or application/pdf".into(),
    ))
}

/// `GET CarePlan/[id]/$handout`: the take-home sheet as print-ready HTML or as PDF.
pub async fn handout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = async {
        let id = path_id(&req)?;
        let query = negotiate::query_pairs(&req)?;
        if let Some((k, _)) = query.iter().find(|(k, _)| k != "_format") {
            return Err(ApiError::BadRequest(format!(
                "parameter `{k}` of $handout is not supported"
            )));
        }
        let format = match query.iter().find(|(k, _)| k == "_format") {
            Some((_, f)) => match f.as_str() {
                "html" | "text/html" => Sheet::Html,
                "pdf" | "application/pdf" => Sheet::Pdf,
                other => {
                    return Err(ApiError::NotAcceptable(format!(
                        "_format `{other}`: the take-home sheet is available as text/html or application/pdf"
                    )));
                }
            },
            None => sheet_format(req.headers().get("accept").and_then(|a| a.to_str().ok()))?,
        };
        let produced = state
            .clock
            .now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .to_string();
        let access = super::authn::access(&req)?;
        let limits = access.require("CarePlan", Perm::Read)?;
        let tenant = access.tenant.clone();
        let sheet = state
            .db
            .read(move |conn| {
                if !crate::auth::visibility::visible(conn, &tenant, "CarePlan", &id, &limits)? {
                    return Ok(Err(ApiError::NotFound(format!("CarePlan/{id} does not exist"))));
                }
                Ok(crate::operations::handout(conn, &tenant, &id, produced))
            })
            .await??;
        Ok(match format {
            Sheet::Html => HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header((
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:",
                ))
                .body(fhir_mapping::hep::handout::render_html(&sheet)),
            Sheet::Pdf => {
                let pdf = web::block(move || fhir_mapping::hep::handout::render_pdf(&sheet))
                    .await
                    .map_err(|_| ApiError::internal("the PDF sheet could not be produced"))?;
                HttpResponse::Ok()
                    .content_type("application/pdf")
                    .insert_header(("Content-Disposition", "inline; filename=\"take-home-sheet.pdf\""))
                    .body(pdf)
            }
        })
    }
    .await;
    finish(&req, result)
}

/// The parameters of `$adherence` and the answer's format.
struct AdherenceQuery {
    start: Option<String>,
    end: Option<String>,
    csv: bool,
    out: negotiate::Output,
}

fn adherence_query(req: &HttpRequest) -> Result<AdherenceQuery, ApiError> {
    period_query(req, "$adherence", true)
}

/// The `start`/`end` parameters (when `period`) and the format of an operation's answer.
fn period_query(
    req: &HttpRequest,
    operation: &str,
    period: bool,
) -> Result<AdherenceQuery, ApiError> {
    let query = negotiate::query_pairs(req)?;
    let mut start = None;
    let mut end = None;
    for (k, v) in &query {
        match k.as_str() {
            "start" if period && start.is_none() => start = Some(v.clone()),
            "end" if period && end.is_none() => end = Some(v.clone()),
            "_format" | "_pretty" => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "parameter `{other}` of {operation} is not supported (or is repeated)"
                )));
            }
        }
    }
    let csv = match query.iter().find(|(k, _)| k == "_format") {
        Some((_, f)) => f == "csv" || f == "text/csv",
        None => req
            .headers()
            .get("accept")
            .and_then(|a| a.to_str().ok())
            .and_then(|a| {
                negotiate::media_ranges(a)
                    .first()
                    .map(|m| m.eq_ignore_ascii_case("text/csv"))
            })
            .unwrap_or(false),
    };
    let out = if csv {
        negotiate::Output::default()
    } else {
        negotiate::output(req, &query)?
    };
    Ok(AdherenceQuery {
        start,
        end,
        csv,
        out,
    })
}

fn csv_response(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(body)
}

/// `GET [base]/$adherence` (every patient of the clinic) and `GET Group/[id]/$adherence`
/// (the patients of a Group): each patient's overall figures and their sum.
pub async fn clinic_adherence(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = async {
        let group = req.match_info().get("id").map(str::to_string);
        if let Some(g) = &group
            && !is_valid_id(g)
        {
            return Err(ApiError::NotFound(format!("Group/{g} does not exist")));
        }
        let AdherenceQuery {
            start,
            end,
            csv,
            out,
        } = adherence_query(&req)?;
        let access = super::authn::access(&req)?;
        access.require_beyond_patient("$adherence of a clinic or a Group")?;
        for t in ["Patient", "Task", "Group"] {
            if !access.require(t, Perm::Read)?.is_open() {
                return Err(ApiError::Forbidden(format!(
                    "$adherence of a clinic or a Group needs unrestricted read scopes on {t}"
                )));
            }
        }
        let now = to_micros(state.clock.now());
        let st = state.clone();
        let answer = state
            .db
            .read(move |conn| {
                let tenant = access.tenant.as_str();
                let run = |conn: &mut crate::db::AnyConnection| {
                    let members = match &group {
                        None => None,
                        Some(g) => Some(crate::operations::group_patients(conn, tenant, g)?),
                    };
                    crate::sessions::clinic_adherence(
                        conn,
                        tenant,
                        members.as_ref(),
                        start.as_deref(),
                        end.as_deref(),
                        &st.sessions,
                        now,
                    )
                };
                Ok(run(conn))
            })
            .await??;
        if csv {
            return Ok(csv_response(fhir_mapping::hep::adherence::clinic_csv(
                &answer.overall,
                &answer.patients,
            )));
        }
        let json = fhir_mapping::hep::adherence::clinic_parameters(
            &answer.overall,
            &answer.patients,
            &answer.start,
            &answer.end,
            &answer.as_of,
        );
        let bytes = serde_json::to_vec(&json)
            .map_err(|e| ApiError::internal_from("serialising JSON", e))?;
        super::negotiate::fhir_response(actix_web::http::StatusCode::OK, out, &bytes)
    }
    .await;
    finish(&req, result)
}

/// `GET CarePlan/[id]/$adherence` and `GET Patient/[id]/$adherence`: the figures as
/// Parameters (JSON or XML), or CSV (`Accept: text/csv` or `_format=csv`).
pub async fn adherence(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = async {
        let id = path_id(&req)?;
        let program = req.path().contains("/CarePlan/");
        let AdherenceQuery {
            start,
            end,
            csv,
            out,
        } = adherence_query(&req)?;
        let access = super::authn::access(&req)?;
        let target_type = if program { "CarePlan" } else { "Patient" };
        let limits = access.require(target_type, Perm::Read)?;
        let read_scores = access.require("Observation", Perm::Read).is_ok();
        let subject = format!("{target_type}/{id}");
        let now = to_micros(state.clock.now());
        let st = state.clone();
        let answer = state
            .db
            .read(move |conn| {
                if !crate::auth::visibility::visible(
                    conn,
                    &access.tenant,
                    target_type,
                    &id,
                    &limits,
                )? {
                    return Ok(Err(ApiError::NotFound(format!(
                        "{target_type}/{id} does not exist"
                    ))));
                }
                let target = if program {
                    crate::sessions::Target::Program(&id)
                } else {
                    crate::sessions::Target::Patient(&id)
                };
                let answer = match crate::sessions::adherence(
                    conn,
                    access.tenant.as_str(),
                    target,
                    start.as_deref(),
                    end.as_deref(),
                    &st.sessions,
                    now,
                ) {
                    Ok(a) => a,
                    Err(e) => return Ok(Err(e)),
                };
                // the outcome measures' summary, for a reader of the scores only
                let outcomes = if read_scores {
                    let target = if program {
                        crate::outcomes::Target::Program(&id)
                    } else {
                        crate::outcomes::Target::Patient(&id)
                    };
                    match crate::outcomes::outcomes(
                        conn,
                        access.tenant.as_str(),
                        target,
                        &st.sessions,
                    ) {
                        Ok(o) => Some(o),
                        Err(e) => return Ok(Err(e)),
                    }
                } else {
                    None
                };
                Ok(Ok((answer, outcomes)))
            })
            .await??;
        let (answer, outcomes) = answer;
        let ctx = fhir_mapping::hep::adherence::Context {
            start: &answer.start,
            end: &answer.end,
            as_of: &answer.as_of,
            exercises: &answer.exercises,
        };
        if csv {
            return Ok(csv_response(fhir_mapping::hep::adherence::to_csv(
                &answer.figures,
                &ctx,
            )));
        }
        let mut json = fhir_mapping::hep::adherence::to_parameters(&answer.figures, &ctx);
        if let Some(o) = &outcomes {
            let series = measure_series(o);
            let summary =
                fhir_mapping::hep::measures::outcomes_parameters(&subject, &series, &o.tz);
            fhir_mapping::hep::adherence::add_outcomes(&mut json, &summary);
        }
        let bytes = serde_json::to_vec(&json)
            .map_err(|e| ApiError::internal_from("serialising JSON", e))?;
        super::negotiate::fhir_response(actix_web::http::StatusCode::OK, out, &bytes)
    }
    .await;
    finish(&req, result)
}

/// `GET CarePlan/[id]/$outcomes` and `GET Patient/[id]/$outcomes`: each outcome
/// measure's scores over time, the change from baseline and whether the minimal
/// clinically important difference is reached, as Parameters (JSON or XML) or CSV.
pub async fn outcomes(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = async {
        let id = path_id(&req)?;
        let program = req.path().contains("/CarePlan/");
        let AdherenceQuery { csv, out, .. } = period_query(&req, "$outcomes", false)?;
        let access = super::authn::access(&req)?;
        let target_type = if program { "CarePlan" } else { "Patient" };
        let limits = access.require(target_type, Perm::Read)?;
        access.require("Observation", Perm::Read)?;
        let st = state.clone();
        let subject = format!("{target_type}/{id}");
        let answer = state
            .db
            .read(move |conn| {
                if !crate::auth::visibility::visible(
                    conn,
                    &access.tenant,
                    target_type,
                    &id,
                    &limits,
                )? {
                    return Ok(Err(ApiError::NotFound(format!(
                        "{target_type}/{id} does not exist"
                    ))));
                }
                let target = if program {
                    crate::outcomes::Target::Program(&id)
                } else {
                    crate::outcomes::Target::Patient(&id)
                };
                Ok(crate::outcomes::outcomes(
                    conn,
                    access.tenant.as_str(),
                    target,
                    &st.sessions,
                ))
            })
            .await??;
        let series = measure_series(&answer);
        if csv {
            return Ok(csv_response(fhir_mapping::hep::measures::outcomes_csv(
                &series, &answer.tz,
            )));
        }
        let json = fhir_mapping::hep::measures::outcomes_parameters(&subject, &series, &answer.tz);
        let bytes = serde_json::to_vec(&json)
            .map_err(|e| ApiError::internal_from("serialising JSON", e))?;
        super::negotiate::fhir_response(actix_web::http::StatusCode::OK, out, &bytes)
    }
    .await;
    finish(&req, result)
}

/// The series of an outcomes answer, as the mapping renders them.
fn measure_series(
    answer: &crate::outcomes::OutcomesAnswer,
) -> Vec<fhir_mapping::hep::measures::MeasureSeries<'_>> {
    answer
        .series
        .iter()
        .map(
            |(instrument, points, observations)| fhir_mapping::hep::measures::MeasureSeries {
                instrument,
                points: points.clone(),
                observations: observations.clone(),
            },
        )
        .collect()
}

/// The answer of `$rtm` as Parameters or CSV.
fn rtm_response(
    answer: &crate::monitoring::RtmAnswer,
    csv: bool,
    out: negotiate::Output,
) -> Result<HttpResponse, ApiError> {
    let rows: Vec<fhir_mapping::hep::rtm::PatientPeriods<'_>> = answer
        .episodes
        .iter()
        .map(|e| fhir_mapping::hep::rtm::PatientPeriods {
            patient: &e.patient,
            program: &e.program,
            episode_start: e.start,
            periods: &e.periods,
        })
        .collect();
    if csv {
        return Ok(csv_response(fhir_mapping::hep::rtm::to_csv(&rows)));
    }
    let json = fhir_mapping::hep::rtm::to_parameters(answer.from, answer.to, &rows);
    let bytes =
        serde_json::to_vec(&json).map_err(|e| ApiError::internal_from("serialising JSON", e))?;
    super::negotiate::fhir_response(actix_web::http::StatusCode::OK, out, &bytes)
}

/// `GET Patient/[id]/$rtm`: the remote therapeutic monitoring periods of the patient's
/// programs that overlap `start`..`end`.
pub async fn patient_rtm(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = async {
        let id = path_id(&req)?;
        let AdherenceQuery {
            start,
            end,
            csv,
            out,
        } = period_query(&req, "$rtm", true)?;
        let access = super::authn::access(&req)?;
        let limits = access.require("Patient", Perm::Read)?;
        let now = to_micros(state.clock.now());
        let st = state.clone();
        let answer = state
            .db
            .read(move |conn| {
                if !crate::auth::visibility::visible(conn, &access.tenant, "Patient", &id, &limits)?
                {
                    return Ok(Err(ApiError::NotFound(format!(
                        "Patient/{id} does not exist"
                    ))));
                }
                Ok(crate::monitoring::patient_rtm(
                    conn,
                    access.tenant.as_str(),
                    &id,
                    start.as_deref(),
                    end.as_deref(),
                    &st.sessions,
                    now,
                ))
            })
            .await??;
        rtm_response(&answer, csv, out)
    }
    .await;
    finish(&req, result)
}

/// `GET [base]/$rtm` (every patient of the clinic) and `GET Group/[id]/$rtm`.
pub async fn clinic_rtm(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = async {
        let group = req.match_info().get("id").map(str::to_string);
        if let Some(g) = &group
            && !is_valid_id(g)
        {
            return Err(ApiError::NotFound(format!("Group/{g} does not exist")));
        }
        let AdherenceQuery {
            start,
            end,
            csv,
            out,
        } = period_query(&req, "$rtm", true)?;
        let access = super::authn::access(&req)?;
        access.require_beyond_patient("$rtm of a clinic or a Group")?;
        for t in [
            "Patient",
            "CarePlan",
            "Task",
            "Procedure",
            "Communication",
            "Group",
        ] {
            if !access.require(t, Perm::Read)?.is_open() {
                return Err(ApiError::Forbidden(format!(
                    "$rtm of a clinic or a Group needs unrestricted read scopes on {t}"
                )));
            }
        }
        let now = to_micros(state.clock.now());
        let st = state.clone();
        let answer = state
            .db
            .read(move |conn| {
                let tenant = access.tenant.as_str();
                let run = |conn: &mut crate::db::AnyConnection| {
                    let members: Option<Vec<String>> = match &group {
                        None => None,
                        Some(g) => Some(
                            crate::operations::group_patients(conn, tenant, g)?
                                .into_iter()
                                .collect(),
                        ),
                    };
                    crate::monitoring::rtm(
                        conn,
                        tenant,
                        members.as_deref(),
                        start.as_deref(),
                        end.as_deref(),
                        &st.sessions,
                        now,
                    )
                };
                Ok(run(conn))
            })
            .await??;
        rtm_response(&answer, csv, out)
    }
    .await;
    finish(&req, result)
}
