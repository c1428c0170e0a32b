//! Parsing of search parameters into SQL conditions (strict: anything unsupported is a
//! 400), and the normal form of search criteria used by conditional interactions.

use fhir_mapping::search_params::{ParamType, alias_of, find_param};

use fhir_mapping::bundle::{Entry, Link, write_bundle};

use crate::clock::instant_string;
use crate::db::store::{self, Comparison, Condition, DateOp, MatchRow, SearchQuery};
use crate::error::ApiError;

/// Parameters that control the result rather than select resources.
const RESULT_PARAMS: &[&str] = &["_count", "_format", "_pretty", "_cursor", "_total"];

/// A parsed search.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub conditions: Vec<Condition>,
    /// The selecting parameters as given, in normal form (sorted), for links and keys.
    pub applied: Vec<(String, String)>,
    pub count: Option<i64>,
    pub cursor: Option<String>,
    pub total: bool,
}

pub const DEFAULT_COUNT: i64 = 50;
pub const MAX_COUNT: i64 = 1000;

/// Parses the query pairs of a search of `resource_type`.
pub fn parse(resource_type: &str, pairs: &[(String, String)]) -> Result<Search, ApiError> {
    let mut search = Search {
        total: true,
        ..Search::default()
    };
    for (name, value) in pairs {
        match name.as_str() {
            "_count" => {
                let n: i64 =
                    value.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                        ApiError::BadRequest("_count must be a whole number".into())
                    })?;
                search.count = Some(n.min(MAX_COUNT));
            }
            "_cursor" => search.cursor = Some(value.clone()),
            "_total" => match value.as_str() {
                "accurate" | "estimate" => search.total = true,
                "none" => search.total = false,
                _ => {
                    return Err(ApiError::BadRequest(
                        "_total must be none, estimate or accurate".into(),
                    ));
                }
            },
            n if RESULT_PARAMS.contains(&n) => {}
            _ => {
                search
                    .conditions
                    .push(condition(resource_type, name, value)?);
                search.applied.push((name.clone(), value.clone()));
            }
        }
    }
    search.applied.sort();
    Ok(search)
}

fn condition(resource_type: &str, name: &str, value: &str) -> Result<Condition, ApiError> {
    let (base, modifier) = match name.split_once(':') {
        Some((b, m)) => (b, Some(m)),
        None => (name, None),
    };
    let param = find_param(resource_type, base).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unknown or unsupported search parameter `{base}` for {resource_type}"
        ))
    })?;
    // a reference may name its target type as a modifier (`subject:Patient=x`)
    let target_type = match modifier {
        None => None,
        Some(m)
            if param.kind == ParamType::Reference
                && fhir_mapping::resource_types::is_storable(m) =>
        {
            Some(m)
        }
        Some(m) => {
            return Err(ApiError::BadRequest(format!(
                "unsupported modifier `:{m}` on `{base}`"
            )));
        }
    };
    if value.is_empty() {
        return Err(ApiError::BadRequest(format!("`{base}` needs a value")));
    }
    match (param.name, param.kind) {
        ("_id", _) => Ok(Condition::Id(
            value.split(',').map(str::to_string).collect(),
        )),
        (_, ParamType::Token) => {
            let any_of = value
                .split(',')
                .map(|v| match v.split_once('|') {
                    Some((system, code)) if !code.is_empty() => {
                        Ok((Some(system.to_string()), code.to_string()))
                    }
                    Some(_) => Err(ApiError::BadRequest(format!(
                        "`{base}` with `system|` and no code is not supported"
                    ))),
                    None => Ok((None, v.to_string())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Condition::Token {
                param: param.name.to_string(),
                any_of,
            })
        }
        (_, ParamType::Reference) if alias_of(resource_type, param.name).is_some() => {
            // `patient`: the `subject` rows that are Patient references
            let (indexed, target) = alias_of(resource_type, param.name).unwrap_or_default();
            if target_type.is_some_and(|t| t != target) {
                return Err(ApiError::BadRequest(format!(
                    "`{base}` only refers to a {target}"
                )));
            }
            Ok(Condition::Token {
                param: indexed.to_string(),
                any_of: value
                    .split(',')
                    .map(|v| {
                        let id = v.strip_prefix(target).and_then(|r| r.strip_prefix('/'));
                        (None, format!("{target}/{}", id.unwrap_or(v)))
                    })
                    .collect(),
            })
        }
        (_, ParamType::Reference) => Ok(Condition::Token {
            param: param.name.to_string(),
            any_of: value
                .split(',')
                // matched as written: `Type/id`, a bare id, or a canonical URL
                .map(|v| match target_type {
                    Some(t) if !v.contains('/') => (None, format!("{t}/{v}")),
                    _ => (None, v.to_string()),
                })
                .collect(),
        }),
        ("_lastUpdated", ParamType::Date) => last_updated(value),
        (_, ParamType::Date) => Ok(Condition::Date {
            param: param.name.to_string(),
            any_of: value
                .split(',')
                .map(|v| date_condition(base, v))
                .collect::<Result<Vec<_>, _>>()?,
        }),
        // uri: exact match (R4 search.html#uri), a comma separating alternatives
        (_, ParamType::Uri) => Ok(Condition::Token {
            param: param.name.to_string(),
            any_of: value
                .split(',')
                .map(|v| (Some(String::new()), v.to_string()))
                .collect(),
        }),
        _ => Err(ApiError::BadRequest(format!(
            "search parameter `{base}` is not supported"
        ))),
    }
}

/// One value of a date parameter: its prefix (R4 search.html#prefix, `eq` when none)
/// and the range its (possibly partial) date denotes.
fn date_condition(base: &str, value: &str) -> Result<(DateOp, i64, i64), ApiError> {
    let (prefix, date) =
        if value.len() > 2 && value.as_bytes()[..2].iter().all(u8::is_ascii_alphabetic) {
            value.split_at(2)
        } else {
            ("eq", value)
        };
    let op = match prefix {
        "eq" => DateOp::Eq,
        "ne" => DateOp::Ne,
        "gt" => DateOp::Gt,
        "lt" => DateOp::Lt,
        "ge" => DateOp::Ge,
        "le" => DateOp::Le,
        "sa" => DateOp::Sa,
        "eb" => DateOp::Eb,
        p => {
            return Err(ApiError::BadRequest(format!(
                "unsupported prefix `{p}` for `{base}` (eq, ne, gt, lt, ge, le, sa, eb)"
            )));
        }
    };
    let (lo, hi) = date_range(date)
        .ok_or_else(|| ApiError::BadRequest(format!("`{date}` is not a FHIR date or dateTime")))?;
    Ok((op, lo, hi))
}

/// `_lastUpdated` with a prefix and a (possibly partial) date, compared as ranges.
fn last_updated(value: &str) -> Result<Condition, ApiError> {
    let (prefix, date) =
        if value.len() > 2 && value.as_bytes()[..2].iter().all(u8::is_ascii_alphabetic) {
            value.split_at(2)
        } else {
            ("eq", value)
        };
    let (lo, hi) = date_range(date)
        .ok_or_else(|| ApiError::BadRequest(format!("`{date}` is not a FHIR date or dateTime")))?;
    let cond = |op, value| Condition::LastUpdated { op, value };
    match prefix {
        "ge" => Ok(cond(Comparison::Ge, lo)),
        "gt" => Ok(cond(Comparison::Ge, hi)),
        "le" => Ok(cond(Comparison::Lt, hi)),
        "lt" => Ok(cond(Comparison::Lt, lo)),
        "eq" => Err(ApiError::BadRequest(
            "_lastUpdated=eq is not supported; use ge and lt together".into(),
        )),
        p => Err(ApiError::BadRequest(format!(
            "unsupported date prefix `{p}` for _lastUpdated"
        ))),
    }
}

pub use fhir_mapping::search_params::date_range;

/// The normal form of criteria (`a=1&b=2`, sorted, re-encoded) used as a claim key.
pub fn normal_form(applied: &[(String, String)]) -> String {
    serde_urlencoded::to_string(applied).unwrap_or_default()
}

/// Runs a parsed search: the page of matches (`count` of them at most) and, when asked
/// for, the total.
pub fn execute(
    conn: &mut crate::db::AnyConnection,
    tenant: &str,
    res_type: &str,
    search: &Search,
    count: i64,
) -> Result<(Vec<MatchRow>, Option<i64>), crate::db::DbError> {
    let q = SearchQuery {
        tenant,
        res_type,
        conditions: &search.conditions,
        after_id: search.cursor.as_deref(),
        limit: count,
    };
    let rows = if count > 0 {
        store::search(conn, &q)?
    } else {
        Vec::new()
    };
    let total = if search.total {
        // the same search without the paging cursor
        let all = SearchQuery {
            after_id: None,
            ..q.clone()
        };
        Some(store::count(conn, &all)?)
    } else {
        None
    };
    Ok((rows, total))
}

/// The `searchset` Bundle of a page of matches, with its `self` and `next` links.
/// `safe_point` becomes `meta.lastUpdated` (see the README on polling).
pub fn searchset(
    base: &str,
    res_type: &str,
    search: &Search,
    count: i64,
    rows: &[MatchRow],
    total: Option<i64>,
    safe_point: i64,
) -> Vec<u8> {
    let path = format!("/{res_type}");
    let mut applied = search.applied.clone();
    applied.push(("_count".into(), count.to_string()));
    let mut self_params = applied.clone();
    if let Some(c) = &search.cursor {
        self_params.push(("_cursor".into(), c.clone()));
    }
    let mut links = vec![Link {
        relation: "self",
        url: link_url(base, &path, &self_params),
    }];
    if count > 0
        && rows.len() as i64 == count
        && let Some(last) = rows.last()
    {
        let mut next = applied.clone();
        next.push(("_cursor".into(), last.res_id.clone()));
        links.push(Link {
            relation: "next",
            url: link_url(base, &path, &next),
        });
    }
    let entries: Vec<Entry<'_>> = rows
        .iter()
        .map(|r| Entry {
            full_url: Some(format!("{base}/{res_type}/{}", r.res_id)),
            resource: r.body.as_deref().map(str::as_bytes),
            search_mode: Some("match"),
            ..Default::default()
        })
        .collect();
    let total = total.map(|t| u64::try_from(t).unwrap_or(0));
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

/// The URL of this request with other parameters (for Bundle links).
pub fn link_url(base: &str, path: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{}", normal_form(params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(s).unwrap_or_default()
    }

    #[test]
    fn strict_on_unknown_parameters_and_modifiers() {
        assert!(parse("Patient", &pairs("name=x")).is_err());
        assert!(parse("Patient", &pairs("identifier:text=x")).is_err());
        assert!(parse("Patient", &pairs("identifier=")).is_err());
        assert!(parse("Patient", &pairs("identifier=s|1&_count=5")).is_ok());
    }

    #[test]
    fn partial_dates_are_ranges() {
        let (lo, hi) = date_range("2026-02").unwrap_or_default();
        assert_eq!(hi - lo, 28 * 24 * 3600 * 1_000_000);
        let (lo, hi) = date_range("2024").unwrap_or_default();
        assert_eq!(hi - lo, 366 * 24 * 3600 * 1_000_000);
        let (lo, hi) = date_range("2026-01-01T00:00:00Z").unwrap_or_default();
        assert_eq!(hi - lo, 1_000_000);
        let (lo, hi) = date_range("2026-01-01T00:00:00.123+01:00").unwrap_or_default();
        assert_eq!(hi - lo, 1_000);
        assert_eq!(
            lo,
            date_range("2025-12-31T23:00:00.123Z").unwrap_or_default().0
        );
        assert!(date_range("2026-13").is_none());
        assert!(date_range("yesterday").is_none());
    }

    #[test]
    fn normal_form_is_order_independent() {
        let a = parse("Patient", &pairs("identifier=b&_id=1")).map(|s| normal_form(&s.applied));
        let b = parse("Patient", &pairs("_id=1&identifier=b")).map(|s| normal_form(&s.applied));
        assert_eq!(a.ok(), b.ok());
    }
}
