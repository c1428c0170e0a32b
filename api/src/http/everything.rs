//! `GET [base]/Patient/[id]/$everything`: the patient, every resource of the patient's
//! compartment (programs, prescriptions, sessions, observations, the referral's
//! records...) and the resources they reference, as pages of a `searchset` Bundle.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use fhir_mapping::bundle::{Entry, Link, write_bundle};
use fhir_mapping::references::{ReferenceTarget, classify_reference, find_references};
use fhir_mapping::resource_types::{R4_RESOURCE_TYPES, is_storable, is_valid_id};
use fhir_mapping::search_params::{CANONICAL_TYPES, is_compartment_type};

use super::negotiate;
use super::negotiate::finish;
use super::state::AppState;
use crate::auth::scopes::Perm;
use crate::auth::{self, Limits};
use crate::clock::{POLL_LAG_MICROS, instant_string, to_micros};
use crate::db::AnyConnection;
use crate::db::query::{Condition, DateOp, Page, Patients, SearchQuery, Sort};
use crate::db::store::{self, MatchRow};
use crate::error::ApiError;

const DEFAULT_COUNT: i64 = 100;
const MAX_COUNT: i64 = 1000;
/// Referenced resources added to one page, at most.
const MAX_REFERENCED: usize = 1000;

/// The types of a patient's compartment, the Patient first.
fn compartment_types() -> Vec<&'static str> {
    std::iter::once("Patient")
        .chain(
            R4_RESOURCE_TYPES
                .iter()
                .copied()
                .filter(|t| *t != "Patient" && is_storable(t) && is_compartment_type(t)),
        )
        .collect()
}

struct Request {
    id: String,
    since: Option<i64>,
    count: i64,
    /// Each type read with the limits of the token on it.
    types: Vec<(&'static str, Limits)>,
    /// Resume at this type (an index of `types`) after this id.
    start: usize,
    after: Option<String>,
    applied: Vec<(String, String)>,
}

fn read_request(req: &HttpRequest, access: &auth::Access) -> Result<Request, ApiError> {
    let id = req.match_info().get("id").unwrap_or_default().to_string();
    let query = negotiate::query_pairs(req)?;
    let lenient = negotiate::prefer_lenient(req);
    let mut since = None;
    let mut count = DEFAULT_COUNT;
    let mut wanted: Option<Vec<String>> = None;
    let mut cursor = None;
    let mut applied = Vec::new();
    for (k, v) in &query {
        match k.as_str() {
            "_since" => {
                let t = v.parse::<jiff::Timestamp>().map_err(|_| {
                    ApiError::BadRequest("_since must be an instant with a time zone".into())
                })?;
                since = Some(t.as_microsecond());
                applied.push((k.clone(), v.clone()));
            }
            "_count" => {
                count = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        ApiError::BadRequest("_count must be a positive whole number".into())
                    })?
                    .min(MAX_COUNT);
            }
            "_type" => {
                let list = wanted.get_or_insert_with(Vec::new);
                list.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string),
                );
                applied.push((k.clone(), v.clone()));
            }
            "_cursor" => cursor = Some(v.clone()),
            "_format" | "_pretty" => {}
            _ if lenient => {}
            other => {
                return Err(ApiError::BadRequest(format!(
                    "$everything does not support the parameter `{other}`"
                )));
            }
        }
    }
    let all = compartment_types();
    let mut types = Vec::new();
    match &wanted {
        Some(list) => {
            for t in list {
                let Some(t) = all.iter().copied().find(|x| x == t) else {
                    return Err(ApiError::BadRequest(format!(
                        "_type `{t}` is not a type of a patient's compartment"
                    )));
                };
                if !types.iter().any(|(x, _)| *x == t) {
                    types.push((t, access.require(t, Perm::Read)?));
                }
            }
        }
        None => {
            for t in all {
                if let Ok(limits) = access.require(t, Perm::Read) {
                    types.push((t, limits));
                }
            }
        }
    }
    let (start, after) = match cursor {
        None => (0, None),
        Some(c) => {
            let (t, after) = match c.split_once('/') {
                Some((t, id)) if is_valid_id(id) => (t.to_string(), Some(id.to_string())),
                Some(_) => return Err(ApiError::BadRequest("invalid _cursor".into())),
                None => (c, None),
            };
            let i = types
                .iter()
                .position(|(x, _)| *x == t)
                .ok_or_else(|| ApiError::BadRequest("invalid _cursor".into()))?;
            (i, after)
        }
    };
    Ok(Request {
        id,
        since,
        count,
        types,
        start,
        after,
        applied,
    })
}

/// One page: the matches (type, row), the cursor of the next page, the referenced.
struct PageOut {
    rows: Vec<(&'static str, MatchRow)>,
    next: Option<String>,
    referenced: Vec<(String, MatchRow)>,
    truncated: bool,
}

fn read_page(
    conn: &mut AnyConnection,
    access: &auth::Access,
    r: &Request,
) -> Result<PageOut, ApiError> {
    let tenant = access.tenant.as_str();
    let mut rows: Vec<(&'static str, MatchRow)> = Vec::new();
    let mut next = None;
    let sort = Sort::default();
    for (i, (t, limits)) in r.types.iter().enumerate().skip(r.start) {
        let mut conds = limits.conditions.clone();
        conds.push(Condition::compartment(t, Patients::ids(vec![r.id.clone()])));
        if let Some(s) = r.since {
            conds.push(Condition::LastUpdated(vec![(DateOp::Ge, s + 1, s + 1)]));
        }
        let remaining = r.count - rows.len() as i64;
        let page = match (&r.after, i == r.start) {
            (Some(a), true) => Some(Page {
                backward: false,
                keys: Vec::new(),
                id: a.clone(),
            }),
            _ => None,
        };
        let q = SearchQuery {
            tenant,
            res_type: t,
            conditions: &conds,
            sort: &sort,
            page: page.as_ref(),
            limit: remaining + 1,
        };
        let mut found = crate::db::query::search(conn, &q)?;
        if found.len() as i64 > remaining {
            found.truncate(remaining as usize);
            next = Some(match found.last() {
                Some(last) => format!("{t}/{}", last.res_id),
                None => t.to_string(),
            });
            rows.extend(found.into_iter().map(|m| (*t, m)));
            break;
        }
        rows.extend(found.into_iter().map(|m| (*t, m)));
    }
    let (referenced, truncated) = referenced(conn, access, &rows)?;
    Ok(PageOut {
        rows,
        next,
        referenced,
        truncated,
    })
}

/// The resources the page's matches reference (by `reference` or, for definitions,
/// by canonical URL) that the token may read and the page does not hold.
fn referenced(
    conn: &mut AnyConnection,
    access: &auth::Access,
    rows: &[(&'static str, MatchRow)],
) -> Result<(Vec<(String, MatchRow)>, bool), ApiError> {
    let tenant = access.tenant.as_str();
    let held: BTreeSet<(&str, &str)> = rows.iter().map(|(t, m)| (*t, m.res_id.as_str())).collect();
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut canonicals: BTreeSet<String> = BTreeSet::new();
    for (t, m) in rows {
        let Some(body) = &m.body else { continue };
        let Ok(serde_json::Value::Object(json)) = serde_json::from_str(body) else {
            continue;
        };
        for found in find_references(t, &json) {
            if let ReferenceTarget::Local {
                resource_type, id, ..
            } = classify_reference(&found.reference)
                && !held.contains(&(resource_type.as_str(), id.as_str()))
            {
                wanted.entry(resource_type).or_default().insert(id);
            }
        }
        for key in ["instantiatesCanonical", "instantiates"] {
            if let Some(list) = json.get(key).and_then(|v| v.as_array()) {
                canonicals.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_string));
            }
        }
    }
    if !canonicals.is_empty() {
        let urls: Vec<String> = canonicals.into_iter().collect();
        for (t, id) in store::by_canonical(conn, tenant, CANONICAL_TYPES, &urls)? {
            if !held.contains(&(t.as_str(), id.as_str())) {
                wanted.entry(t).or_default().insert(id);
            }
        }
    }
    let mut out = Vec::new();
    let mut truncated = false;
    for (t, ids) in wanted {
        let Ok(limits) = access.require(&t, Perm::Read) else {
            continue;
        };
        let ids: Vec<String> = ids.into_iter().collect();
        let visible = crate::auth::visibility::visible_ids(conn, tenant, &t, ids, &limits)?;
        for m in store::live_by_ids(conn, tenant, &t, &visible)? {
            if out.len() >= MAX_REFERENCED {
                truncated = true;
                break;
            }
            out.push((t.clone(), m));
        }
    }
    Ok((out, truncated))
}

/// `GET [base]/Patient/[id]/$everything` (`_since`, `_type`, `_count`).
pub async fn everything(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let result = async {
        let access = super::authn::access(&req)?;
        let patient_limits = access.require("Patient", Perm::Read)?;
        let r = read_request(&req, &access)?;
        let query = negotiate::query_pairs(&req)?;
        let out = negotiate::output(&req, &query)?;
        let safe_point = to_micros(state.clock.now()) - POLL_LAG_MICROS;
        let (access2, id) = (access.clone(), r.id.clone());
        let base = state.base_url(&req);
        let (r, page) = state
            .db
            .read(move |c| {
                let run = |c: &mut AnyConnection| {
                    let tenant = access2.tenant.as_str();
                    let key = store::Key {
                        tenant,
                        res_type: "Patient",
                        res_id: &id,
                    };
                    if !store::exists(c, key)?
                        || !crate::auth::visibility::visible(
                            c,
                            tenant,
                            "Patient",
                            &id,
                            &patient_limits,
                        )?
                    {
                        return Err(ApiError::NotFound(format!("Patient/{id} does not exist")));
                    }
                    read_page(c, &access2, &r)
                };
                let page = run(c);
                Ok((r, page))
            })
            .await?;
        let page = page?;
        let path = format!("/Patient/{}/$everything", r.id);
        let mut params = r.applied.clone();
        params.push(("_count".into(), r.count.to_string()));
        let mut self_params = params.clone();
        match (r.after.as_ref(), r.types.get(r.start)) {
            (Some(a), Some((t, _))) => self_params.push(("_cursor".into(), format!("{t}/{a}"))),
            (None, Some((t, _))) if r.start > 0 => {
                self_params.push(("_cursor".into(), t.to_string()))
            }
            _ => {}
        }
        let mut links = vec![Link {
            relation: "self",
            url: crate::search::link_url(&base, &path, &self_params),
        }];
        if let Some(n) = &page.next {
            let mut p = params.clone();
            p.push(("_cursor".into(), n.clone()));
            links.push(Link {
                relation: "next",
                url: crate::search::link_url(&base, &path, &p),
            });
        }
        let warning = page.truncated.then(|| {
            fhir_mapping::operation_outcome(&[fhir_mapping::Issue {
                severity: fhir_mapping::Severity::Warning,
                code: fhir_mapping::IssueType::TooCostly,
                diagnostics: format!(
                    "more than {MAX_REFERENCED} referenced resources: the rest were left out"
                ),
                expression: None,
                position: None,
            }])
            .to_string()
            .into_bytes()
        });
        let mut entries: Vec<Entry<'_>> = Vec::new();
        let matches = page.rows.iter().map(|(t, m)| (*t, m, "match"));
        let included = page
            .referenced
            .iter()
            .map(|(t, m)| (t.as_str(), m, "include"));
        for (t, m, mode) in matches.chain(included) {
            entries.push(Entry {
                full_url: Some(format!("{base}/{t}/{}", m.res_id)),
                resource: m.body.as_deref().map(str::as_bytes),
                search_mode: Some(mode),
                ..Default::default()
            });
        }
        if let Some(w) = &warning {
            entries.push(Entry {
                resource: Some(w),
                search_mode: Some("outcome"),
                ..Default::default()
            });
        }
        let bundle = write_bundle(
            "searchset",
            None,
            Some(&instant_string(safe_point)),
            None,
            None,
            &links,
            &entries,
        );
        super::negotiate::fhir_response(StatusCode::OK, out, &bundle)
    }
    .await;
    finish(&req, result)
}
