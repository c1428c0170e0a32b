//! Bulk Data export over HTTP: the kick-off (`$export` of the system, of all patients,
//! of a Group), the status endpoint with the manifest, cancellation, and the files.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::negotiate;
use super::negotiate::finish;
use super::state::AppState;
use crate::auth::Access;
use crate::auth::scopes::Perm;
use crate::clock::{http_date, instant_string, to_micros};
use crate::db::exports::{self, JobRow};
use crate::error::ApiError;
use crate::export::{Level, Produced};
use fhir_mapping::bulk::{ManifestFile, NDJSON, kickoff_pairs, manifest};

type State = web::Data<AppState>;

/// The path of a job's status under the base URL.
const STATUS_PATH: &str = "/_export";

/// Seconds a client is asked to wait between two status requests.
const RETRY_AFTER: &str = "2";

fn respond_async(req: &HttpRequest) -> Result<(), ApiError> {
    let asks = req
        .headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"));
    if asks {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "$export runs asynchronously: send `Prefer: respond-async`".into(),
        ))
    }
}

/// `Accept` of a kick-off: FHIR JSON (or anything) only.
fn accepts_fhir_json(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(accept) = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let ok = negotiate::media_ranges(accept).iter().any(|m| {
        matches!(
            *m,
            "application/fhir+json" | "application/json" | "*/*" | "application/*"
        )
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::NotAcceptable(
            "the kick-off and status answers are application/fhir+json".into(),
        ))
    }
}

/// `GET|POST [base]/$export`, `[base]/Patient/$export`, `[base]/Group/[id]/$export`.
pub async fn kick_off(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let result = async {
        let access = super::authn::access(&req)?;
        let level = if req.path().ends_with("/Patient/$export") {
            Level::Patient
        } else if let Some(id) = req.match_info().get("id") {
            Level::Group { id: id.to_string() }
        } else {
            Level::System
        };
        let mut pairs = negotiate::query_pairs(&req)?;
        if req.method() == actix_web::http::Method::POST {
            let format = negotiate::input_format(&req)?;
            let body = negotiate::read_body(&req, payload, state.max_body_bytes).await?;
            let parsed = fhir_mapping::parse_resource(&body, format, &state.limits)
                .map_err(ApiError::Invalid)?;
            pairs.extend(kickoff_pairs(parsed.json()).map_err(ApiError::BadRequest)?);
        }
        if let Level::Group { id } = &level {
            let limits = access.require("Group", Perm::Read)?;
            let (tenant, gid, lim) = (access.tenant.clone(), id.clone(), limits.clone());
            let seen = state
                .db
                .read(move |c| crate::auth::visibility::visible(c, &tenant, "Group", &gid, &lim))
                .await?;
            if !seen {
                return Err(ApiError::NotFound(format!("Group/{id} does not exist")));
            }
        }
        let lenient = negotiate::prefer_lenient(&req);
        let spec = crate::export::read_kickoff(level, &pairs, &access, lenient)?;
        respond_async(&req)?;
        accepts_fhir_json(&req)?;
        let base = state.base_url(&req);
        let request = match req.query_string() {
            "" => format!("{base}{}", fhir_path(&req)),
            q => format!("{base}{}?{q}", fhir_path(&req)),
        };
        let now = to_micros(state.clock.now());
        let id = crate::export::accept(
            &state.db,
            state.export_workers.as_ref(),
            &access,
            request,
            &spec,
            now,
        )
        .await?;
        let outcome = fhir_mapping::operation_outcome(&[fhir_mapping::Issue::information(
            "the export was accepted: follow Content-Location for its status",
        )]);
        Ok(HttpResponse::build(StatusCode::ACCEPTED)
            .insert_header(("Content-Location", format!("{base}{STATUS_PATH}/{id}")))
            .content_type(crate::error::content_type(fhir_mapping::Format::Json))
            .body(outcome.to_string()))
    }
    .await;
    finish(&req, result)
}

/// The request's path below `/fhir`.
fn fhir_path(req: &HttpRequest) -> String {
    let p = req.path();
    p.split_once("/fhir")
        .map_or(p, |(_, rest)| rest)
        .to_string()
}

/// The job of the path's `{job}` if it is the requesting client's and has not expired.
async fn own_job(req: &HttpRequest, state: &State, access: &Access) -> Result<JobRow, ApiError> {
    let id = req.match_info().get("job").unwrap_or_default().to_string();
    let (tenant, client, key) = (access.tenant.clone(), access.client.clone(), id.clone());
    let job = state
        .db
        .read(move |c| Ok(exports::of_client(c, &tenant, &client, &key)?))
        .await?;
    let now = to_micros(state.clock.now());
    match job {
        Some(j) if j.expires_at.is_none_or(|e| e > now) => Ok(j),
        _ => Err(ApiError::NotFound(format!("there is no export {id}"))),
    }
}

fn spec_of(job: &JobRow) -> Result<crate::export::Spec, ApiError> {
    serde_json::from_str(&job.spec).map_err(|e| ApiError::internal_from("unreadable export job", e))
}

/// The job of the path's `{job}` (as [`own_job`]), if the token's scopes also cover every
/// type it exports.
async fn readable_job(
    req: &HttpRequest,
    state: &State,
    access: &Access,
) -> Result<JobRow, ApiError> {
    let job = own_job(req, state, access).await?;
    let spec = spec_of(&job)?;
    crate::export::check_reader(&spec, access, spec.types.iter().map(String::as_str))?;
    Ok(job)
}

fn produced(job: &JobRow) -> Result<Produced, ApiError> {
    serde_json::from_str(job.result.as_deref().unwrap_or("null"))
        .map_err(|e| ApiError::internal_from("unreadable export result", e))
}

/// `GET [base]/_export/[job]`: 202 with `X-Progress` while the job runs, the manifest
/// once it is done, the OperationOutcome of a failure; for the client that kicked it
/// off, with a token that covers every type of the export.
pub async fn status(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let access = super::authn::access(&req)?;
        let job = readable_job(&req, &state, &access).await?;
        match job.status.as_str() {
            exports::COMPLETED => {
                let done = produced(&job)?;
                let base = state.base_url(&req);
                fn files<'a>(
                    list: &'a [crate::export::FileEntry],
                    base: &str,
                    job: &str,
                ) -> Vec<ManifestFile<'a>> {
                    list.iter()
                        .map(|f| ManifestFile {
                            resource_type: &f.resource_type,
                            url: format!("{base}{STATUS_PATH}/{job}/{}", f.file),
                            count: f.count,
                        })
                        .collect()
                }
                let body = manifest(
                    &instant_string(done.transaction_time),
                    &job.request,
                    &files(&done.output, &base, &job.id),
                    &files(&done.error, &base, &job.id),
                );
                let mut res = HttpResponse::Ok();
                if let Some(e) = job.expires_at {
                    res.insert_header(("Expires", http_date(e)));
                }
                Ok(res.content_type("application/json").body(body.to_string()))
            }
            exports::FAILED => {
                // the cause (a database or disk failure) was logged when the job failed
                let outcome = fhir_mapping::operation_outcome(&[fhir_mapping::Issue::error(
                    fhir_mapping::IssueType::Exception,
                    "the export failed on the server; kick off a new one",
                )]);
                Ok(HttpResponse::InternalServerError()
                    .content_type(crate::error::content_type(fhir_mapping::Format::Json))
                    .body(outcome.to_string()))
            }
            _ => {
                let progress = job.progress.clone().unwrap_or_else(|| job.status.clone());
                Ok(HttpResponse::build(StatusCode::ACCEPTED)
                    .insert_header(("X-Progress", progress))
                    .insert_header(("Retry-After", RETRY_AFTER))
                    .finish())
            }
        }
    }
    .await;
    finish(&req, result)
}

/// `DELETE [base]/_export/[job]`: cancels a running job or removes a finished one with
/// its files.
pub async fn cancel(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let access = super::authn::access(&req)?;
        let job = readable_job(&req, &state, &access).await?;
        let (tenant, client, id) = (access.tenant.clone(), access.client.clone(), job.id.clone());
        let removed = state
            .db
            .write(move |c| Ok::<_, ApiError>(exports::delete(c, &tenant, &client, &id)?))?;
        if !removed {
            return Err(ApiError::NotFound(format!("there is no export {}", job.id)));
        }
        // a worker still writing notices at its next lease renewal and removes them too
        if let Err(e) = std::fs::remove_dir_all(state.export_dir.join(&job.id))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "removing the files of a cancelled export failed");
        }
        let outcome = fhir_mapping::operation_outcome(&[fhir_mapping::Issue::information(
            "the export was cancelled and its files removed",
        )]);
        Ok(HttpResponse::build(StatusCode::ACCEPTED)
            .content_type(crate::error::content_type(fhir_mapping::Format::Json))
            .body(outcome.to_string()))
    }
    .await;
    finish(&req, result)
}

/// `GET [base]/_export/[job]/[file]`: one NDJSON file of a completed job, for the
/// client that kicked it off, with a token that covers the file's type.
pub async fn file(req: HttpRequest, state: State) -> HttpResponse {
    let result = async {
        let access = super::authn::access(&req)?;
        let job = own_job(&req, &state, &access).await?;
        let name = req.match_info().get("file").unwrap_or_default().to_string();
        let not_found = || ApiError::NotFound(format!("export {} has no file {name}", job.id));
        if job.status != exports::COMPLETED {
            return Err(not_found());
        }
        let done = produced(&job)?;
        // only a name the job wrote: nothing else of the directory is reachable
        let spec = spec_of(&job)?;
        if let Some(f) = done.output.iter().find(|f| f.file == name) {
            crate::export::check_reader(&spec, &access, [f.resource_type.as_str()])?;
        } else if done.error.iter().any(|f| f.file == name) {
            // the notes of the kick-off, as the manifest lists them
            crate::export::check_reader(&spec, &access, spec.types.iter().map(String::as_str))?;
        } else {
            return Err(not_found());
        }
        let path = state
            .export_dir
            .join(&job.id)
            .join(done.attempt.to_string())
            .join(&name);
        let f = actix_files::NamedFile::open_async(path)
            .await
            .map_err(|_| not_found())?
            .set_content_type(NDJSON.parse().map_err(|_| ApiError::internal("mime"))?)
            .disable_content_disposition()
            .use_etag(true)
            .use_last_modified(true);
        Ok(f.into_response(&req))
    }
    .await;
    finish(&req, result)
}
