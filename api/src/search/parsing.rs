//! The search request (R4 search.html): the parameters of a request parsed into SQL
//! conditions, sort keys and a keyset cursor (strict: anything unsupported is a 400
//! unless the client asks for lenient handling), with the limits on a search's work
//! checked first. No database access: scopes' restrictions are parsed here too.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use fhir_mapping::resource_types::is_storable;
use fhir_mapping::search_params::{
    ParamType, SearchParam, alias_of, find_param, normalize, single_target, text_param,
};

use crate::db::query::{
    Condition, DateOp, Index, Page, Sort, SortBy, SortKey, StrMatch, TokenMatch,
};
use crate::error::ApiError;

/// Parameters that control the result rather than select resources.
const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_format",
    "_pretty",
    "_cursor",
    "_total",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
];

pub const DEFAULT_COUNT: i64 = 50;
pub const MAX_COUNT: i64 = 1000;
/// At most this many resources are included in one page (`_include`, `_revinclude`);
/// the Bundle says so in an OperationOutcome entry when more would have been.
pub const MAX_INCLUDED: usize = 1000;

/// At most this many occurrences of one parameter in a search (its name without
/// modifiers: `name`, `name:exact` and `name:contains` are one parameter). Each
/// occurrence is one more condition every candidate resource is tested against.
pub const MAX_REPETITIONS: usize = 10;
/// At most this many comma-separated values in one occurrence of a parameter (each is
/// one more alternative of its condition).
pub const MAX_VALUES: usize = 100;
/// At most this many values in a whole search, all parameters together (an occurrence
/// without a comma counts one; the parameters that only shape the answer, such as
/// `_count` and `_total`, do not count). Within these three limits the SQL of a search stays far
/// from SQLite's expression depth limit (1,000), chains, scopes and `_typeFilter`s
/// included.
pub const MAX_TOTAL_VALUES: usize = 200;

/// The name a parameter's repetitions are counted under: modifiers dropped, chains
/// kept (`subject:Patient.name:exact` is `subject.name`).
fn repetition_key(name: &str) -> String {
    name.split('.')
        .map(|part| part.split(':').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(".")
}

/// Checks a search's parameters against [`MAX_REPETITIONS`], [`MAX_VALUES`] and
/// [`MAX_TOTAL_VALUES`] before anything else is read of them (lenient handling does
/// not lift them); answers the number of values.
pub fn check_limits(pairs: &[(String, String)]) -> Result<usize, ApiError> {
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let mut total = 0usize;
    for (name, value) in pairs {
        let key = repetition_key(name);
        let n = counts.entry(key.clone()).or_default();
        *n += 1;
        if *n > MAX_REPETITIONS {
            return Err(ApiError::TooCostly(format!(
                "the search parameter `{}` is given more than {MAX_REPETITIONS} times: at \
                 most {MAX_REPETITIONS} repetitions of one parameter are allowed",
                repetition_key(name)
            )));
        }
        let values = value.split(',').count();
        if values > MAX_VALUES {
            return Err(ApiError::TooCostly(format!(
                "the search parameter `{name}` has {values} comma-separated values: at most \
                 {MAX_VALUES} values are allowed in one parameter"
            )));
        }
        if matches!(
            key.as_str(),
            "_count" | "_total" | "_format" | "_pretty" | "_summary" | "_cursor" | "_elements"
        ) {
            // they shape the answer, not the SQL
            continue;
        }
        total += values;
        if total > MAX_TOTAL_VALUES {
            return Err(ApiError::TooCostly(format!(
                "the search has more than {MAX_TOTAL_VALUES} parameter values in all (the \
                 limit was passed at `{name}`): at most {MAX_TOTAL_VALUES} are allowed in one \
                 search"
            )));
        }
    }
    Ok(total)
}

/// `_summary` (R4 search.html#summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Summary {
    #[default]
    False,
    Text,
    Data,
    Count,
}

/// An `_include` or `_revinclude`: resources of `source` whose reference parameter
/// `param` (the indexed one) points to a `target` (any type when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub source: String,
    pub param: String,
    pub target: Option<String>,
    pub iterate: bool,
}

/// A parsed search.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub conditions: Vec<Condition>,
    /// The selecting parameters applied, in normal form (sorted), for links and keys.
    pub applied: Vec<(String, String)>,
    /// The result parameters applied (`_sort`, `_include`, ...), for links.
    pub shaping: Vec<(String, String)>,
    pub count: Option<i64>,
    pub page: Option<Page>,
    pub total: bool,
    pub sort: Sort,
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
    pub summary: Summary,
    pub elements: Option<Vec<String>>,
    /// What lenient handling left out, one sentence each.
    pub ignored: Vec<String>,
}

/// How a search is parsed.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `Prefer: handling=lenient`: unknown and unsupported parameters are ignored (and
    /// reported) instead of refused.
    pub lenient: bool,
    /// The instant `ap` dates are approximated around (microseconds).
    pub now: i64,
}

/// Why a parameter was not applied.
enum Reject {
    /// Unknown or unsupported: refused, or ignored when lenient.
    Unsupported(String),
    /// A supported parameter with a value it cannot take: always refused.
    Invalid(String),
}

impl From<Reject> for ApiError {
    fn from(r: Reject) -> ApiError {
        match r {
            Reject::Unsupported(m) | Reject::Invalid(m) => ApiError::BadRequest(m),
        }
    }
}

fn unsupported<T>(m: String) -> Result<T, Reject> {
    Err(Reject::Unsupported(m))
}

fn invalid<T>(m: String) -> Result<T, Reject> {
    Err(Reject::Invalid(m))
}

/// Parses the query pairs of a search of `resource_type`, strictly (conditional
/// interactions and Bundle entries).
pub fn parse(resource_type: &str, pairs: &[(String, String)]) -> Result<Search, ApiError> {
    parse_with(
        resource_type,
        pairs,
        Options {
            lenient: false,
            now: jiff::Timestamp::now().as_microsecond(),
        },
    )
}

/// Parses the query pairs of a search of `resource_type`.
pub fn parse_with(
    resource_type: &str,
    pairs: &[(String, String)],
    options: Options,
) -> Result<Search, ApiError> {
    check_limits(pairs)?;
    let mut search = Search {
        total: true,
        ..Search::default()
    };
    let mut seen_sort = false;
    for (name, value) in pairs {
        let base = name.split(':').next().unwrap_or_default();
        let result = match base {
            "_count" => {
                let n: i64 =
                    value.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                        ApiError::BadRequest("_count must be a whole number".into())
                    })?;
                search.count = Some(n.min(MAX_COUNT));
                Ok(())
            }
            "_cursor" => {
                search.page = Some(decode_cursor(value)?);
                Ok(())
            }
            "_total" => match value.as_str() {
                "accurate" | "estimate" => {
                    search.total = true;
                    Ok(())
                }
                "none" => {
                    search.total = false;
                    search.shaping.push((name.clone(), value.clone()));
                    Ok(())
                }
                _ => invalid("_total must be none, estimate or accurate".into()),
            },
            "_sort" if seen_sort => {
                invalid("give `_sort` once, its keys separated by commas".into())
            }
            "_sort" => {
                seen_sort = true;
                sort(resource_type, value).map(|s| search.sort = s)
            }
            "_include" | "_revinclude" => include(resource_type, name, value).map(|i| {
                if base == "_include" {
                    search.includes.push(i);
                } else {
                    search.revincludes.push(i);
                }
            }),
            "_summary" => {
                let summary = match value.as_str() {
                    "false" => Ok(Summary::False),
                    "text" => Ok(Summary::Text),
                    "data" => Ok(Summary::Data),
                    "count" => Ok(Summary::Count),
                    "true" => unsupported(
                        "`_summary=true` is not supported; use _elements to name the elements"
                            .into(),
                    ),
                    _ => invalid("_summary must be true, false, text, data or count".into()),
                };
                summary.map(|s| search.summary = s)
            }
            "_elements" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                if names
                    .iter()
                    .any(|n| !n.chars().all(|c| c.is_ascii_alphanumeric()))
                {
                    invalid("_elements takes element names separated by commas".into())
                } else {
                    search.elements = Some(names);
                    Ok(())
                }
            }
            "_format" | "_pretty" => Ok(()),
            _ => condition(resource_type, name, value, options.now).map(|c| {
                search.conditions.push(c);
                search.applied.push((name.clone(), value.clone()));
            }),
        };
        match result {
            Ok(()) => {
                if RESULT_PARAMS.contains(&base)
                    && !matches!(
                        base,
                        "_count" | "_cursor" | "_total" | "_format" | "_pretty"
                    )
                {
                    search.shaping.push((name.clone(), value.clone()));
                }
            }
            Err(Reject::Unsupported(m)) if options.lenient => search.ignored.push(m),
            Err(r) => return Err(r.into()),
        }
    }
    if search
        .page
        .as_ref()
        .is_some_and(|p| p.keys.len() != search.sort.keys.len())
    {
        return Err(ApiError::BadRequest(
            "the _cursor belongs to a search with another _sort".into(),
        ));
    }
    search.applied.sort();
    Ok(search)
}

fn decode_cursor(value: &str) -> Result<Page, ApiError> {
    URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|b: Vec<u8>| serde_json::from_slice::<Page>(&b).ok())
        .filter(|p| fhir_mapping::resource_types::is_valid_id(&p.id))
        .ok_or_else(|| ApiError::BadRequest("invalid _cursor".into()))
}

pub(crate) fn encode_cursor(page: &Page) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(page).unwrap_or_default())
}

/// `_sort=a,-b`: the keys, then the id.
fn sort(resource_type: &str, value: &str) -> Result<Sort, Reject> {
    let mut sort = Sort::default();
    for key in value.split(',') {
        let (desc, name) = match key.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, key),
        };
        let by = match name {
            "_id" => {
                // the id orders every match: later keys could not change the order
                sort.id_desc = desc;
                break;
            }
            "_lastUpdated" => SortBy::LastUpdated,
            _ => {
                let param = find_param(resource_type, name).ok_or_else(|| {
                    Reject::Unsupported(format!(
                        "unknown or unsupported _sort key `{name}` for {resource_type}"
                    ))
                })?;
                let indexed = alias_of(resource_type, param.name)
                    .map_or(param.name, |(indexed, _)| indexed)
                    .to_string();
                match param.kind {
                    ParamType::Date => SortBy::Date(indexed),
                    ParamType::String => SortBy::Str(indexed),
                    ParamType::Token | ParamType::Reference | ParamType::Uri => {
                        SortBy::Token(indexed)
                    }
                }
            }
        };
        if sort.keys.iter().any(|k| k.by == by) {
            return invalid(format!("_sort names `{name}` twice"));
        }
        sort.keys.push(SortKey { by, desc });
    }
    Ok(sort)
}

/// `_include=Type:param[:Target]` (and `_revinclude`), `:iterate` allowed.
fn include(resource_type: &str, name: &str, value: &str) -> Result<Include, Reject> {
    let iterate = match name.split_once(':') {
        None => false,
        Some((_, "iterate")) => true,
        Some((_, m)) => return unsupported(format!("unsupported modifier `:{m}` on `{name}`")),
    };
    let reverse = name.starts_with("_revinclude");
    let mut parts = value.split(':');
    let (source, param, target) = (parts.next(), parts.next(), parts.next());
    let (Some(source), Some(param), None) = (source, param, parts.next()) else {
        return invalid(format!(
            "`{name}` takes Type:parameter or Type:parameter:Target"
        ));
    };
    if !is_storable(source) {
        return unsupported(format!(
            "`{name}`: {source} is not a resource type this server stores"
        ));
    }
    if !iterate && !reverse && source != resource_type {
        return invalid(format!(
            "`_include={value}` names {source}; a search of {resource_type} includes from {resource_type}"
        ));
    }
    let p = find_param(source, param)
        .filter(|p| p.kind == ParamType::Reference)
        .ok_or_else(|| {
            Reject::Unsupported(format!(
                "`{name}`: {source} has no supported reference parameter `{param}`"
            ))
        })?;
    let (indexed, alias_target) = match alias_of(source, p.name) {
        Some((indexed, t)) => (indexed, Some(t)),
        None => (p.name, None),
    };
    let mut target = target.map(str::to_string);
    if let Some(t) = &target
        && (!is_storable(t) || alias_target.is_some_and(|a| a != t))
    {
        return invalid(format!("`{name}`: `{param}` does not refer to a {t}"));
    }
    if target.is_none() {
        target = alias_target.map(str::to_string);
    }
    if reverse && !iterate && target.as_deref().is_some_and(|t| t != resource_type) {
        return invalid(format!(
            "`_revinclude={value}` does not refer to {resource_type}"
        ));
    }
    Ok(Include {
        source: source.to_string(),
        param: indexed.to_string(),
        target,
        iterate,
    })
}

fn condition(resource_type: &str, name: &str, value: &str, now: i64) -> Result<Condition, Reject> {
    // one level of chaining: `patient.identifier=`, `subject:Patient.name=`
    if let Some((left, inner)) = name.split_once('.') {
        return chain(resource_type, left, inner, value, now);
    }
    let (base, modifier) = match name.split_once(':') {
        Some((b, m)) => (b, Some(m)),
        None => (name, None),
    };
    let param = find_param(resource_type, base).ok_or_else(|| {
        Reject::Unsupported(format!(
            "unknown or unsupported search parameter `{base}` for {resource_type}"
        ))
    })?;
    if value.is_empty() {
        return invalid(format!("`{name}` needs a value"));
    }
    let bad_modifier = |m: &str| unsupported(format!("unsupported modifier `:{m}` on `{base}`"));
    if modifier == Some("missing") {
        return missing(resource_type, param, value);
    }
    match (param.name, param.kind) {
        ("_id", _) => match modifier {
            None => Ok(Condition::Id(
                value.split(',').map(str::to_string).collect(),
            )),
            Some(m) => bad_modifier(m),
        },
        ("_lastUpdated", _) => match modifier {
            None => Ok(Condition::LastUpdated(dates(base, value, now)?)),
            Some(m) => bad_modifier(m),
        },
        (_, ParamType::Token) => {
            let negate = match modifier {
                None => false,
                Some("not") => true,
                Some("text") => {
                    let text = text_param(resource_type, param.name)
                        .ok_or_else(|| Reject::Unsupported(format!("`{base}` has no text")))?;
                    return Ok(Condition::Str {
                        param: text.to_string(),
                        any_of: value
                            .split(',')
                            .map(|v| (StrMatch::Prefix, normalize(v)))
                            .collect(),
                    });
                }
                Some(m) => return bad_modifier(m),
            };
            let any_of = value
                .split(',')
                .map(|v| match v.split_once('|') {
                    Some((system, "")) => TokenMatch {
                        system: Some(system.to_string()),
                        code: None,
                    },
                    Some((system, code)) => TokenMatch {
                        system: Some(system.to_string()),
                        code: Some(code.to_string()),
                    },
                    None => TokenMatch {
                        system: None,
                        code: Some(v.to_string()),
                    },
                })
                .collect();
            Ok(Condition::Token {
                param: param.name.to_string(),
                any_of,
                negate,
                selective: param.name == "identifier",
            })
        }
        (_, ParamType::Reference) => {
            let (indexed, alias_target) = match alias_of(resource_type, param.name) {
                Some((indexed, t)) => (indexed, Some(t)),
                None => (param.name, None),
            };
            // a reference may name its target type as a modifier (`subject:Patient=x`)
            let target = match modifier {
                None => alias_target,
                Some(m) if is_storable(m) => {
                    if alias_target.is_some_and(|t| t != m) {
                        return invalid(format!(
                            "`{base}` only refers to a {}",
                            alias_target.unwrap_or_default()
                        ));
                    }
                    Some(m)
                }
                Some(m) => return bad_modifier(m),
            };
            let any_of = value
                .split(',')
                .map(|v| {
                    let code = match target {
                        // `Patient/x` or `x` both name Patient/x
                        Some(t) => {
                            let id = v.strip_prefix(t).and_then(|r| r.strip_prefix('/'));
                            match id {
                                Some(id) => format!("{t}/{id}"),
                                None if !v.contains('/') => format!("{t}/{v}"),
                                None => v.to_string(),
                            }
                        }
                        // matched as written: `Type/id`, a bare id, or a canonical URL
                        None => v.to_string(),
                    };
                    TokenMatch {
                        system: None,
                        code: Some(code),
                    }
                })
                .collect();
            Ok(Condition::Token {
                param: indexed.to_string(),
                any_of,
                negate: false,
                selective: true,
            })
        }
        (_, ParamType::Date) => match modifier {
            None => Ok(Condition::Date {
                param: param.name.to_string(),
                any_of: dates(base, value, now)?,
            }),
            Some(m) => bad_modifier(m),
        },
        (_, ParamType::String) => {
            let how = match modifier {
                None => StrMatch::Prefix,
                Some("exact") => StrMatch::Exact,
                Some("contains") => StrMatch::Contains,
                Some(m) => return bad_modifier(m),
            };
            Ok(Condition::Str {
                param: param.name.to_string(),
                any_of: value
                    .split(',')
                    .map(|v| {
                        let v = if how == StrMatch::Exact {
                            v.to_string()
                        } else {
                            normalize(v)
                        };
                        (how, v)
                    })
                    .collect(),
            })
        }
        // uri: exact match (R4 search.html#uri), a comma separating alternatives
        (_, ParamType::Uri) => match modifier {
            None => Ok(Condition::Token {
                param: param.name.to_string(),
                any_of: value
                    .split(',')
                    .map(|v| TokenMatch {
                        system: Some(String::new()),
                        code: Some(v.to_string()),
                    })
                    .collect(),
                negate: false,
                selective: true,
            }),
            Some(m) => bad_modifier(m),
        },
    }
}

/// `param:missing=true|false`.
fn missing(resource_type: &str, param: SearchParam, value: &str) -> Result<Condition, Reject> {
    let missing = match value {
        "true" => true,
        "false" => false,
        _ => return invalid(format!("`{}:missing` takes true or false", param.name)),
    };
    if param.name.starts_with('_') {
        return unsupported(format!("`{}` cannot be missing", param.name));
    }
    let (indexed, code_prefix) = match alias_of(resource_type, param.name) {
        Some((indexed, target)) => (indexed, Some(format!("{target}/"))),
        None => (param.name, None),
    };
    Ok(Condition::Missing {
        index: if param.kind == ParamType::Date {
            Index::Dates
        } else {
            Index::Tokens
        },
        param: indexed.to_string(),
        code_prefix,
        missing,
    })
}

/// `ref.param=value`: resources whose reference `ref` names a resource that matches
/// `param=value`.
fn chain(
    resource_type: &str,
    left: &str,
    inner: &str,
    value: &str,
    now: i64,
) -> Result<Condition, Reject> {
    let (base, modifier) = match left.split_once(':') {
        Some((b, m)) => (b, Some(m)),
        None => (left, None),
    };
    let param = find_param(resource_type, base)
        .filter(|p| p.kind == ParamType::Reference)
        .ok_or_else(|| {
            Reject::Unsupported(format!(
                "`{left}.{inner}`: {resource_type} has no supported reference parameter `{base}`"
            ))
        })?;
    if inner.contains('.') {
        return unsupported(format!(
            "`{left}.{inner}`: only one level of chaining is supported"
        ));
    }
    let target = match modifier {
        Some(m) if is_storable(m) => m,
        Some(m) => return unsupported(format!("unsupported modifier `:{m}` on `{base}`")),
        None => single_target(resource_type, param.name).ok_or_else(|| {
            Reject::Invalid(format!(
                "`{base}` can refer to several types: name one, as in `{base}:Patient.{inner}`"
            ))
        })?,
    };
    if let Some((_, t)) = alias_of(resource_type, param.name)
        && t != target
    {
        return invalid(format!("`{base}` only refers to a {t}"));
    }
    let indexed = alias_of(resource_type, param.name).map_or(param.name, |(i, _)| i);
    let inner_condition = condition(target, inner, value, now)?;
    Ok(Condition::Chain {
        param: indexed.to_string(),
        target_type: target.to_string(),
        inner: vec![inner_condition],
    })
}

/// The values of a date parameter: each with its prefix (R4 search.html#prefix, `eq`
/// when none) and the range its (possibly partial) date denotes.
fn dates(base: &str, value: &str, now: i64) -> Result<Vec<(DateOp, i64, i64)>, Reject> {
    value
        .split(',')
        .map(|v| date_condition(base, v, now))
        .collect()
}

/// A date search value split into its prefix (`eq` when it has none) and its date.
pub fn date_prefix(value: &str) -> (&str, &str) {
    if value.len() > 2 && value.as_bytes()[..2].iter().all(u8::is_ascii_alphabetic) {
        value.split_at(2)
    } else {
        ("eq", value)
    }
}

fn date_condition(base: &str, value: &str, now: i64) -> Result<(DateOp, i64, i64), Reject> {
    let (prefix, date) = date_prefix(value);
    let op = match prefix {
        "eq" => DateOp::Eq,
        "ne" => DateOp::Ne,
        "gt" => DateOp::Gt,
        "lt" => DateOp::Lt,
        "ge" => DateOp::Ge,
        "le" => DateOp::Le,
        "sa" => DateOp::Sa,
        "eb" => DateOp::Eb,
        "ap" => DateOp::Ap,
        p => {
            return invalid(format!(
                "unknown prefix `{p}` for `{base}` (eq, ne, gt, lt, ge, le, sa, eb, ap)"
            ));
        }
    };
    let (lo, hi) = date_range(date)
        .ok_or_else(|| Reject::Invalid(format!("`{date}` is not a FHIR date or dateTime")))?;
    if op == DateOp::Ap {
        // approximately: the date widened by a tenth of its distance from now (R4
        // leaves the amount to the server; this is the one its text suggests)
        let gap = (now.saturating_sub(lo)).unsigned_abs() / 10;
        let gap = i64::try_from(gap).unwrap_or(i64::MAX);
        return Ok((op, lo.saturating_sub(gap), hi.saturating_add(gap)));
    }
    Ok((op, lo, hi))
}

pub use fhir_mapping::search_params::date_range;

/// The normal form of criteria (`a=1&b=2`, sorted, re-encoded) used as a claim key.
pub fn normal_form(applied: &[(String, String)]) -> String {
    serde_urlencoded::to_string(applied).unwrap_or_default()
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

    fn lenient(t: &str, q: &str) -> Result<Search, ApiError> {
        parse_with(
            t,
            &pairs(q),
            Options {
                lenient: true,
                now: 0,
            },
        )
    }

    #[test]
    fn strict_on_unknown_parameters_and_modifiers() {
        assert!(parse("Patient", &pairs("nickname=x")).is_err());
        assert!(parse("Patient", &pairs("identifier:below=x")).is_err());
        assert!(parse("Patient", &pairs("identifier=")).is_err());
        assert!(parse("Patient", &pairs("identifier=s|1&_count=5")).is_ok());
        assert!(parse("Task", &pairs("_sort=colour")).is_err());
        assert!(parse("Task", &pairs("_include=Task:colour")).is_err());
    }

    #[test]
    fn lenient_ignores_only_what_is_unsupported() {
        let s = lenient("Patient", "nickname=x&identifier=s|1").unwrap_or_default();
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.applied, [("identifier".to_string(), "s|1".to_string())]);
        assert_eq!(s.ignored.len(), 1);
        // a bad value of a supported parameter is still an error
        assert!(lenient("Patient", "birthdate=yesterday").is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let p = Page {
            backward: true,
            keys: vec![Some(crate::db::query::KeyValue::Int(5)), None],
            id: "a1".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&p)).ok(), Some(p));
        assert!(decode_cursor("not a cursor").is_err());
        let bad = URL_SAFE_NO_PAD.encode(br#"{"i":"a b"}"#);
        assert!(decode_cursor(&bad).is_err());
    }

    #[test]
    fn approximate_dates_widen_with_distance() {
        let day = 24 * 3600 * 1_000_000i64;
        let (lo, hi) = date_range("2026-01-11").unwrap_or_default();
        let now = lo + 100 * day;
        let r = date_condition("date", "ap2026-01-11", now)
            .ok()
            .map(|(_, l, h)| (l, h));
        assert_eq!(r, Some((lo - 10 * day, hi + 10 * day)));
    }

    #[test]
    fn partial_dates_are_ranges() {
        let (lo, hi) = date_range("2026-02").unwrap_or_default();
        assert_eq!(hi - lo, 28 * 24 * 3600 * 1_000_000);
        let (lo, hi) = date_range("2024").unwrap_or_default();
        assert_eq!(hi - lo, 366 * 24 * 3600 * 1_000_000);
        let (lo, hi) = date_range("2026-01-01T00:00:00.123+01:00").unwrap_or_default();
        assert_eq!(hi - lo, 1_000);
        assert_eq!(
            lo,
            date_range("2025-12-31T23:00:00.123Z").unwrap_or_default().0
        );
        assert!(date_range("2026-13").is_none());
    }

    fn repeated(name: &str, times: usize) -> String {
        vec![format!("{name}=x"); times].join("&")
    }

    fn is_too_costly(r: Result<Search, ApiError>) -> bool {
        matches!(r, Err(ApiError::TooCostly(_)))
    }

    #[test]
    fn repetitions_values_and_totals_are_limited_even_when_lenient() {
        assert!(parse("Patient", &pairs(&repeated("name", MAX_REPETITIONS))).is_ok());
        assert!(is_too_costly(parse(
            "Patient",
            &pairs(&repeated("name", MAX_REPETITIONS + 1))
        )));
        // modifiers do not make another parameter
        let mixed = format!("{}&name:exact=y", repeated("name", MAX_REPETITIONS));
        assert!(is_too_costly(parse("Patient", &pairs(&mixed))));
        // unknown parameters are counted before lenient handling ignores them
        assert!(is_too_costly(lenient(
            "Patient",
            &repeated("nickname", MAX_REPETITIONS + 1)
        )));
        let values = |n: usize| {
            format!(
                "name={}",
                (0..n)
                    .map(|i| format!("v{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        assert!(parse("Patient", &pairs(&values(MAX_VALUES))).is_ok());
        assert!(is_too_costly(parse(
            "Patient",
            &pairs(&values(MAX_VALUES + 1))
        )));
        assert!(is_too_costly(lenient("Patient", &values(MAX_VALUES + 1))));
        // the whole request
        let two = format!("{}&family={}", values(MAX_VALUES), &values(MAX_VALUES)[5..]);
        assert!(parse("Patient", &pairs(&two)).is_ok());
        let over = format!("{two}&given=z");
        match parse("Patient", &pairs(&over)) {
            Err(ApiError::TooCostly(m)) => {
                assert!(m.contains(&MAX_TOTAL_VALUES.to_string()) && m.contains("given"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn repetitions_are_counted_without_modifiers() {
        assert_eq!(repetition_key("subject:Patient.name:exact"), "subject.name");
        assert_eq!(repetition_key("_include:iterate"), "_include");
        assert_eq!(repetition_key("name"), "name");
    }

    #[test]
    fn normal_form_is_order_independent() {
        let a = parse("Patient", &pairs("identifier=b&_id=1")).map(|s| normal_form(&s.applied));
        let b = parse("Patient", &pairs("_id=1&identifier=b")).map(|s| normal_form(&s.applied));
        assert_eq!(a.ok(), b.ok());
    }
}
