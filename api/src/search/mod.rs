//! FHIR search (R4 search.html): a parsed search (`parsing`) limited to what an access
//! may see, the page and its `_include`d resources read, and the `searchset` Bundle
//! written.

pub mod parsing;

pub use parsing::*;

use serde_json::{Map, Value};

use fhir_mapping::bundle::{Entry, Link, write_bundle};
use fhir_mapping::resource_types::is_storable;
use fhir_mapping::search_params::CANONICAL_TYPES;

use crate::auth::{Access, scopes::Perm};
use crate::clock::instant_string;
use crate::db::store::{self, Condition, MatchRow, Page, SearchQuery};
use crate::error::ApiError;

/// Rounds of `:iterate` includes.
const MAX_ITERATIONS: usize = 4;

/// The search as an access may run it: its limits on the type (a patient's
/// compartment, a scope's restriction) added to the conditions, and to those of each
/// chained type; a 403 when a scope is missing for the type, a chained type or an
/// included type that the request names.
pub fn limit(access: &Access, res_type: &str, search: &Search) -> Result<Search, ApiError> {
    let mut limited = search.clone();
    limited
        .conditions
        .extend(access.require(res_type, Perm::Search)?.conditions);
    for c in &mut limited.conditions {
        if let Condition::Chain {
            target_type, inner, ..
        } = c
        {
            inner.extend(access.require(target_type, Perm::Search)?.conditions);
        }
    }
    for inc in &search.includes {
        if let Some(t) = &inc.target {
            access.require(t, Perm::Read)?;
        }
    }
    for inc in &search.revincludes {
        access.require(&inc.source, Perm::Read)?;
    }
    Ok(limited)
}

/// A page of a search with what it includes.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub rows: Vec<MatchRow>,
    pub total: Option<i64>,
    pub next: Option<Page>,
    pub previous: Option<Page>,
    /// `(resource type, row)` of the `_include`d and `_revinclude`d resources.
    pub included: Vec<(String, MatchRow)>,
    /// Warnings for the OperationOutcome entry (includes left out).
    pub warnings: Vec<String>,
}

/// Runs a parsed search: the page of matches (`count` of them at most), the links to
/// the pages before and after it, what it includes and, when asked for, the total.
pub fn execute(
    conn: &mut crate::db::AnyConnection,
    tenant: &str,
    res_type: &str,
    search: &Search,
    count: i64,
    access: Option<&Access>,
) -> Result<Found, crate::db::DbError> {
    let q = SearchQuery {
        tenant,
        res_type,
        conditions: &search.conditions,
        sort: &search.sort,
        page: search.page.as_ref(),
        limit: count + 1,
    };
    let mut found = Found::default();
    let wants_rows = count > 0 && search.summary != Summary::Count;
    if wants_rows {
        let mut rows = store::search(conn, &q)?;
        let backward = search.page.as_ref().is_some_and(|p| p.backward);
        let more = rows.len() as i64 > count;
        if more {
            if backward {
                rows.remove(0);
            } else {
                rows.pop();
            }
        }
        let (first, last) = (rows.first(), rows.last());
        if let Some(last) = last
            && (more || backward)
        {
            found.next = Some(crate::db::query::page_at(conn, &q, &last.res_id, false)?);
        }
        if let Some(first) = first
            && ((backward && more) || (!backward && search.page.is_some()))
        {
            found.previous = Some(crate::db::query::page_at(conn, &q, &first.res_id, true)?);
        }
        if search.total && search.page.is_none() && !more {
            // the first page holds every match: it is the total
            found.total = Some(rows.len() as i64);
        }
        found.rows = rows;
        include_all(conn, tenant, res_type, search, access, &mut found)?;
    }
    if found.total.is_none() && (search.total || search.summary == Summary::Count) {
        found.total = Some(store::count(conn, &SearchQuery { page: None, ..q })?);
    }
    Ok(found)
}

/// Adds the resources the page's `_include` and `_revinclude` name (and, with
/// `:iterate`, those the included ones name), each once, none of the matches again.
fn include_all(
    conn: &mut crate::db::AnyConnection,
    tenant: &str,
    res_type: &str,
    search: &Search,
    access: Option<&Access>,
    found: &mut Found,
) -> Result<(), crate::db::DbError> {
    if search.includes.is_empty() && search.revincludes.is_empty() {
        return Ok(());
    }
    let mut seen: std::collections::HashSet<(String, String)> = found
        .rows
        .iter()
        .map(|r| (res_type.to_string(), r.res_id.clone()))
        .collect();
    // the resources added in the last round, by type (the matches first)
    let mut frontier: Vec<(String, Vec<String>)> = vec![(
        res_type.to_string(),
        found.rows.iter().map(|r| r.res_id.clone()).collect(),
    )];
    for round in 0..MAX_ITERATIONS {
        let mut added: Vec<(String, MatchRow)> = Vec::new();
        for (ty, ids) in &frontier {
            if ids.is_empty() {
                continue;
            }
            for inc in search
                .includes
                .iter()
                .filter(|i| (round == 0 || i.iterate) && i.source == *ty)
            {
                let codes = store::referenced(conn, tenant, ty, ids, &inc.param)?;
                let mut by_type: std::collections::BTreeMap<String, Vec<String>> =
                    Default::default();
                let wanted = |t: &str| inc.target.as_deref().is_none_or(|want| want == t);
                let mut canonicals = Vec::new();
                for code in codes {
                    if code.contains("://") || code.starts_with("urn:") {
                        // a canonical URL, `|version` left aside
                        canonicals.push(code.split('|').next().unwrap_or_default().to_string());
                    } else if let Some((t, id)) = code.split_once('/')
                        && is_storable(t)
                        && !id.contains('/')
                        && wanted(t)
                    {
                        by_type
                            .entry(t.to_string())
                            .or_default()
                            .push(id.to_string());
                    }
                }
                if !canonicals.is_empty() {
                    let types: Vec<&str> = CANONICAL_TYPES
                        .iter()
                        .copied()
                        .filter(|t| wanted(t))
                        .collect();
                    for (t, id) in store::by_canonical(conn, tenant, &types, &canonicals)? {
                        by_type.entry(t).or_default().push(id);
                    }
                }

                for (t, ids) in by_type {
                    let Some(ids) = readable(conn, tenant, &t, ids, access, &mut found.warnings)?
                    else {
                        continue;
                    };
                    for row in store::live_by_ids(conn, tenant, &t, &ids)? {
                        if seen.insert((t.clone(), row.res_id.clone())) {
                            added.push((t.clone(), row));
                        }
                    }
                }
            }
            for inc in search.revincludes.iter().filter(|i| {
                (round == 0 || i.iterate) && i.target.as_deref().is_none_or(|t| t == ty)
            }) {
                let targets: Vec<String> = ids.iter().map(|id| format!("{ty}/{id}")).collect();
                let limit = (MAX_INCLUDED + 1) as i64;
                let rows =
                    store::referencing(conn, tenant, &inc.source, &inc.param, &targets, limit)?;
                let ids: Vec<String> = rows.iter().map(|r| r.res_id.clone()).collect();
                let Some(ids) =
                    readable(conn, tenant, &inc.source, ids, access, &mut found.warnings)?
                else {
                    continue;
                };
                for row in rows.into_iter().filter(|r| ids.contains(&r.res_id)) {
                    if seen.insert((inc.source.clone(), row.res_id.clone())) {
                        added.push((inc.source.clone(), row));
                    }
                }
            }
        }
        if added.is_empty() {
            break;
        }
        let room = MAX_INCLUDED.saturating_sub(found.included.len());
        if added.len() > room {
            added.truncate(room);
            found.warnings.push(format!(
                "more than {MAX_INCLUDED} resources would be included in this page; the first \
                 {MAX_INCLUDED} are: use a smaller _count"
            ));
        }
        let mut next: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (t, row) in &added {
            next.entry(t.clone()).or_default().push(row.res_id.clone());
        }
        found.included.extend(added);
        if found.included.len() >= MAX_INCLUDED {
            break;
        }
        frontier = next.into_iter().collect();
    }
    Ok(())
}

/// Of `ids` of `res_type`, those the access may read (its limits applied in SQL); `None`
/// when it may read none of that type (a warning says so).
fn readable(
    conn: &mut crate::db::AnyConnection,
    tenant: &str,
    res_type: &str,
    ids: Vec<String>,
    access: Option<&Access>,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<String>>, crate::db::DbError> {
    let Some(access) = access else {
        return Ok(Some(ids));
    };
    let limits = match access.require(res_type, Perm::Read) {
        Ok(l) => l,
        Err(_) => {
            let w = format!("{res_type} resources were not included: the token cannot read them");
            if !warnings.contains(&w) {
                warnings.push(w);
            }
            return Ok(None);
        }
    };
    Ok(Some(crate::auth::visibility::visible_ids(
        conn, tenant, res_type, ids, &limits,
    )?))
}

/// The `searchset` Bundle of a page of matches, with its `self`, `next` and `previous`
/// links. `safe_point` becomes `meta.lastUpdated` (see the README on polling).
pub fn searchset(
    base: &str,
    res_type: &str,
    search: &Search,
    count: i64,
    found: &Found,
    safe_point: i64,
) -> Vec<u8> {
    let path = format!("/{res_type}");
    let mut applied = search.applied.clone();
    applied.extend(search.shaping.iter().cloned());
    applied.push(("_count".into(), count.to_string()));
    let mut self_params = applied.clone();
    if let Some(p) = &search.page {
        self_params.push(("_cursor".into(), encode_cursor(p)));
    }
    let mut links = vec![Link {
        relation: "self",
        url: link_url(base, &path, &self_params),
    }];
    for (relation, page) in [("next", &found.next), ("previous", &found.previous)] {
        if let Some(p) = page {
            let mut params = applied.clone();
            params.push(("_cursor".into(), encode_cursor(p)));
            links.push(Link {
                relation,
                url: link_url(base, &path, &params),
            });
        }
    }
    let shaped = |body: &str| shape(body, search);
    let bodies: Vec<Option<Vec<u8>>> = found
        .rows
        .iter()
        .map(|r| r.body.as_deref().map(shaped))
        .chain(
            found
                .included
                .iter()
                .map(|(_, r)| r.body.as_deref().map(shaped)),
        )
        .collect();
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let modes = found.rows.iter().map(|r| (res_type, r, "match")).chain(
        found
            .included
            .iter()
            .map(|(t, r)| (t.as_str(), r, "include")),
    );
    for ((t, r, mode), body) in modes.zip(&bodies) {
        entries.push(Entry {
            full_url: Some(format!("{base}/{t}/{}", r.res_id)),
            resource: body.as_deref(),
            search_mode: Some(mode),
            ..Default::default()
        });
    }
    let outcome = outcome(search, found);
    if let Some(o) = &outcome {
        entries.push(Entry {
            resource: Some(o),
            search_mode: Some("outcome"),
            ..Default::default()
        });
    }
    let total = found.total.map(|t| u64::try_from(t).unwrap_or(0));
    write_bundle(
        "searchset",
        None,
        Some(&instant_string(safe_point)),
        None,
        total,
        &links,
        &entries,
    )
}

/// The OperationOutcome entry: what lenient handling ignored, what was left out.
fn outcome(search: &Search, found: &Found) -> Option<Vec<u8>> {
    if search.ignored.is_empty() && found.warnings.is_empty() {
        return None;
    }
    let issues: Vec<Value> = search
        .ignored
        .iter()
        .map(|m| {
            serde_json::json!({"severity": "warning", "code": "not-supported",
                "diagnostics": format!("ignored: {m}")})
        })
        .chain(found.warnings.iter().map(
            |m| serde_json::json!({"severity": "warning", "code": "too-costly", "diagnostics": m}),
        ))
        .collect();
    serde_json::to_vec(&serde_json::json!({"resourceType": "OperationOutcome", "issue": issues}))
        .ok()
}

/// The stored JSON of a resource as `_summary` and `_elements` ask: elements left out
/// and the resource tagged SUBSETTED (R4 search.html#elements).
fn shape(body: &str, search: &Search) -> Vec<u8> {
    // which top-level elements stay (besides resourceType, id and meta)
    let keep = |k: &str| match (&search.elements, search.summary) {
        (Some(names), _) => names.iter().any(|n| {
            k == n
                || k.strip_prefix(n.as_str())
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        }),
        (None, Summary::Text) => k == "text",
        _ => k != "text",
    };
    let subsetted =
        search.elements.is_some() || matches!(search.summary, Summary::Text | Summary::Data);
    if !subsetted {
        return body.as_bytes().to_vec();
    }
    let Ok(Value::Object(json)) = serde_json::from_str::<Value>(body) else {
        return body.as_bytes().to_vec();
    };
    let mut out = Map::new();
    for (k, v) in json {
        if matches!(k.as_str(), "resourceType" | "id" | "meta") || keep(&k) {
            out.insert(k, v);
        }
    }
    let meta = out
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        let tags = meta
            .entry("tag")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(tags) = tags {
            tags.push(serde_json::json!({
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED",
                "display": "subsetted"
            }));
        }
    }
    serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
}
