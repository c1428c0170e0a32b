//! SQL of the versioned resource store. Every query names the tenant.

use diesel::prelude::*;

use super::connection::AnyConnection;
use fhir_mapping::search_params::DateValue;

use super::intake::UNIQUE_IDENTIFIER_TYPES;
use super::schema::{
    conditional_keys, resource_versions, resources, search_dates, search_tokens, store_settings,
    unique_identifiers,
};

/// The current state of a resource.
#[derive(Debug, Clone, Queryable)]
pub struct CurrentRow {
    pub version: i64,
    pub last_updated: i64,
    pub deleted: bool,
    pub body: Option<String>,
}

/// One stored version (history entry).
#[derive(Debug, Clone, Queryable)]
pub struct VersionRow {
    pub seq: i64,
    pub res_type: String,
    pub res_id: String,
    pub version: i64,
    pub last_updated: i64,
    pub method: String,
    pub body: Option<String>,
}

/// The columns of a [`MatchRow`].
const MATCH_COLUMNS: (
    resources::res_id,
    resources::version,
    resources::last_updated,
    resources::body,
) = (
    resources::res_id,
    resources::version,
    resources::last_updated,
    resources::body,
);

/// The identity of a resource inside a tenant.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    pub tenant: &'a str,
    pub res_type: &'a str,
    pub res_id: &'a str,
}

/// A token search value to index.
#[derive(Debug, Clone, Copy)]
pub struct Token<'a> {
    pub param: &'a str,
    pub system: &'a str,
    pub code: &'a str,
}

impl<'a> Token<'a> {
    /// The rows of extracted search values.
    pub fn all(values: &'a [fhir_mapping::search_params::TokenValue]) -> Vec<Token<'a>> {
        values
            .iter()
            .map(|t| Token {
                param: t.param,
                system: indexed(&t.system),
                code: indexed(&t.code),
            })
            .collect()
    }
}

/// A new version to write.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub key: Key<'a>,
    /// The version this one replaces (`None` when the resource has no row yet).
    pub previous: Option<i64>,
    pub version: i64,
    pub last_updated: i64,
    pub method: &'a str,
    /// Canonical JSON, `None` for a delete.
    pub body: Option<&'a str>,
    pub tokens: &'a [Token<'a>],
    /// The index rows stored for the version replaced, when known: only the rows that
    /// differ are then deleted and inserted (`None`: all are rewritten).
    pub previous_tokens: Option<&'a [Token<'a>]>,
    /// The date index rows of the new version, and those of the version replaced when
    /// known (then rewritten only when they differ).
    pub dates: &'a [DateValue],
    pub previous_dates: Option<&'a [DateValue]>,
}

/// Outcome of [`write_version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    Written,
    /// Another transaction changed the resource first.
    Conflict,
}

/// The current version of a resource.
pub fn current(conn: &mut AnyConnection, key: Key<'_>) -> QueryResult<Option<CurrentRow>> {
    on_backend!(conn, c => resources::table
        .filter(resources::tenant.eq(key.tenant))
        .filter(resources::res_type.eq(key.res_type))
        .filter(resources::res_id.eq(key.res_id))
        .select((
            resources::version,
            resources::last_updated,
            resources::deleted,
            resources::body,
        ))
        .first(c)
        .optional())
}

/// The version of a live (not deleted) resource, if there is one.
pub fn live_version(conn: &mut AnyConnection, key: Key<'_>) -> QueryResult<Option<i64>> {
    on_backend!(conn, c => resources::table
        .filter(resources::tenant.eq(key.tenant))
        .filter(resources::res_type.eq(key.res_type))
        .filter(resources::res_id.eq(key.res_id))
        .filter(resources::deleted.eq(false))
        .select(resources::version)
        .first(c)
        .optional())
}

/// Whether a live (not deleted) resource exists.
pub fn exists(conn: &mut AnyConnection, key: Key<'_>) -> QueryResult<bool> {
    let n: i64 = on_backend!(conn, c => resources::table
        .filter(resources::tenant.eq(key.tenant))
        .filter(resources::res_type.eq(key.res_type))
        .filter(resources::res_id.eq(key.res_id))
        .filter(resources::deleted.eq(false))
        .count()
        .get_result(c))?;
    Ok(n > 0)
}

pub fn version(
    conn: &mut AnyConnection,
    key: Key<'_>,
    version: i64,
) -> QueryResult<Option<VersionRow>> {
    on_backend!(conn, c => resource_versions::table
        .filter(resource_versions::tenant.eq(key.tenant))
        .filter(resource_versions::res_type.eq(key.res_type))
        .filter(resource_versions::res_id.eq(key.res_id))
        .filter(resource_versions::version.eq(version))
        .select(version_columns())
        .first(c)
        .optional())
}

type VersionColumns = (
    resource_versions::seq,
    resource_versions::res_type,
    resource_versions::res_id,
    resource_versions::version,
    resource_versions::last_updated,
    resource_versions::method,
    resource_versions::body,
);

fn version_columns() -> VersionColumns {
    (
        resource_versions::seq,
        resource_versions::res_type,
        resource_versions::res_id,
        resource_versions::version,
        resource_versions::last_updated,
        resource_versions::method,
        resource_versions::body,
    )
}

/// Writes a new version: the current row, the history row and the search index.
pub fn write_version(conn: &mut AnyConnection, v: &NewVersion<'_>) -> QueryResult<WriteResult> {
    let k = v.key;
    let deleted = v.body.is_none();
    match v.previous {
        None => {
            on_backend!(conn, c => diesel::insert_into(resources::table)
                .values((
                    resources::tenant.eq(k.tenant),
                    resources::res_type.eq(k.res_type),
                    resources::res_id.eq(k.res_id),
                    resources::version.eq(v.version),
                    resources::last_updated.eq(v.last_updated),
                    resources::deleted.eq(deleted),
                    resources::body.eq(v.body),
                ))
                .execute(c))?;
        }
        Some(previous) => {
            let n = on_backend!(conn, c => diesel::update(
                resources::table
                    .filter(resources::tenant.eq(k.tenant))
                    .filter(resources::res_type.eq(k.res_type))
                    .filter(resources::res_id.eq(k.res_id))
                    .filter(resources::version.eq(previous)),
            )
            .set((
                resources::version.eq(v.version),
                resources::last_updated.eq(v.last_updated),
                resources::deleted.eq(deleted),
                resources::body.eq(v.body),
            ))
            .execute(c))?;
            if n == 0 {
                return Ok(WriteResult::Conflict);
            }
            // The resource may no longer match the criteria it was created under, so
            // its conditional-create claims go.
            on_backend!(conn, c => diesel::delete(
                conditional_keys::table
                    .filter(conditional_keys::tenant.eq(k.tenant))
                    .filter(conditional_keys::res_type.eq(k.res_type))
                    .filter(conditional_keys::res_id.eq(k.res_id)),
            )
            .execute(c))?;
        }
    }
    on_backend!(conn, c => diesel::insert_into(resource_versions::table)
        .values((
            resource_versions::tenant.eq(k.tenant),
            resource_versions::res_type.eq(k.res_type),
            resource_versions::res_id.eq(k.res_id),
            resource_versions::version.eq(v.version),
            resource_versions::last_updated.eq(v.last_updated),
            resource_versions::method.eq(v.method),
            resource_versions::body.eq(v.body),
        ))
        .execute(c))?;
    write_tokens(conn, v, deleted)?;
    if UNIQUE_IDENTIFIER_TYPES.contains(&k.res_type) {
        let identifiers = |t: &[Token<'_>]| -> Vec<(String, String)> {
            let mut ids: Vec<(String, String)> = t
                .iter()
                .filter(|t| t.param == "identifier")
                .map(|t| (t.system.to_string(), t.code.to_string()))
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        let new = if deleted {
            Vec::new()
        } else {
            identifiers(v.tokens)
        };
        let unchanged = match (v.previous, v.previous_tokens) {
            (None, _) => new.is_empty(),
            (Some(_), Some(old)) => !deleted && identifiers(old) == new,
            (Some(_), None) => false,
        };
        if !unchanged {
            replace_unique_identifiers(conn, k, &new, v.previous.is_some())?;
        }
    }
    let dates: &[DateValue] = if deleted { &[] } else { v.dates };
    match (v.previous, v.previous_dates) {
        (None, _) => insert_dates(conn, k, dates)?,
        // only the rows that changed
        (Some(_), Some(old)) => {
            for gone in old.iter().filter(|d| !dates.contains(d)) {
                on_backend!(conn, c => diesel::delete(
                    search_dates::table
                        .filter(search_dates::tenant.eq(k.tenant))
                        .filter(search_dates::res_type.eq(k.res_type))
                        .filter(search_dates::res_id.eq(k.res_id))
                        .filter(search_dates::param.eq(gone.param))
                        .filter(search_dates::lo.eq(gone.lo))
                        .filter(search_dates::hi.eq(gone.hi)),
                )
                .execute(c))?;
            }
            let added: Vec<DateValue> =
                dates.iter().filter(|d| !old.contains(d)).copied().collect();
            insert_dates(conn, k, &added)?;
        }
        (Some(_), None) => {
            delete_dates(conn, k)?;
            insert_dates(conn, k, dates)?;
        }
    }
    Ok(WriteResult::Written)
}

fn delete_dates(conn: &mut AnyConnection, key: Key<'_>) -> QueryResult<()> {
    on_backend!(conn, c => diesel::delete(
        search_dates::table
            .filter(search_dates::tenant.eq(key.tenant))
            .filter(search_dates::res_type.eq(key.res_type))
            .filter(search_dates::res_id.eq(key.res_id)),
    )
    .execute(c))?;
    Ok(())
}

fn insert_dates(conn: &mut AnyConnection, key: Key<'_>, dates: &[DateValue]) -> QueryResult<()> {
    for d in dates {
        on_backend!(conn, c => diesel::insert_into(search_dates::table)
            .values((
                search_dates::tenant.eq(key.tenant),
                search_dates::res_type.eq(key.res_type),
                search_dates::res_id.eq(key.res_id),
                search_dates::param.eq(d.param),
                search_dates::lo.eq(d.lo),
                search_dates::hi.eq(d.hi),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// Makes `identifiers` (`(system, value)`) the unique identifiers of a resource; a value
/// another resource of the type holds is a unique violation.
fn replace_unique_identifiers(
    conn: &mut AnyConnection,
    key: Key<'_>,
    identifiers: &[(String, String)],
    had_some: bool,
) -> QueryResult<()> {
    if had_some {
        on_backend!(conn, c => diesel::delete(
            unique_identifiers::table
                .filter(unique_identifiers::tenant.eq(key.tenant))
                .filter(unique_identifiers::res_type.eq(key.res_type))
                .filter(unique_identifiers::res_id.eq(key.res_id)),
        )
        .execute(c))?;
    }
    for (system, value) in identifiers {
        on_backend!(conn, c => diesel::insert_into(unique_identifiers::table)
            .values((
                unique_identifiers::tenant.eq(key.tenant),
                unique_identifiers::res_type.eq(key.res_type),
                unique_identifiers::system.eq(system),
                unique_identifiers::value.eq(value),
                unique_identifiers::res_id.eq(key.res_id),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// Rewrites the date index rows of a resource (index rebuild).
pub fn replace_dates(
    conn: &mut AnyConnection,
    key: Key<'_>,
    dates: &[DateValue],
) -> QueryResult<()> {
    delete_dates(conn, key)?;
    insert_dates(conn, key, dates)
}

/// Claims `criteria` for a conditional create of `key`. Two concurrent claims of the
/// same criteria cannot both commit (primary key): the loser's transaction is retried and
/// then finds the winner's resource. Claims are dropped when their resource changes, so a
/// claim never outlives the match it stands for.
pub fn claim_criteria(conn: &mut AnyConnection, key: Key<'_>, criteria: &str) -> QueryResult<()> {
    // a long criteria (a long identifier) is claimed by its digest: it is part of the
    // primary key, which PostgreSQL's B-tree holds to about 2.7 kB a row
    let digest;
    let criteria = if criteria.len() > MAX_INDEXED_BYTES {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, criteria.as_bytes());
        digest = format!(
            "sha256:{}",
            d.as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        digest.as_str()
    } else {
        criteria
    };
    diesel::insert_into(conditional_keys::table)
        .values((
            conditional_keys::tenant.eq(key.tenant),
            conditional_keys::res_type.eq(key.res_type),
            conditional_keys::criteria.eq(criteria),
            conditional_keys::res_id.eq(key.res_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// Which history to read.
#[derive(Debug, Clone, Copy)]
pub struct HistoryQuery<'a> {
    pub tenant: &'a str,
    pub res_type: Option<&'a str>,
    pub res_id: Option<&'a str>,
    /// Only versions written at or after this instant (microseconds).
    pub since: Option<i64>,
    /// Paging cursor: only versions with a smaller commit sequence.
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// History, newest first.
pub fn history(conn: &mut AnyConnection, q: HistoryQuery<'_>) -> QueryResult<Vec<VersionRow>> {
    let mut query = resource_versions::table
        .filter(resource_versions::tenant.eq(q.tenant))
        .select(version_columns())
        .order(resource_versions::seq.desc())
        .limit(q.limit)
        .into_boxed();
    if let Some(t) = q.res_type {
        query = query.filter(resource_versions::res_type.eq(t));
    }
    if let Some(id) = q.res_id {
        query = query.filter(resource_versions::res_id.eq(id));
    }
    if let Some(since) = q.since {
        query = query.filter(resource_versions::last_updated.ge(since));
    }
    if let Some(before) = q.before_seq {
        query = query.filter(resource_versions::seq.lt(before));
    }
    query.load(conn)
}

pub use super::query::{
    Condition, DateOp, Index, KeyValue, MAX_INDEXED_BYTES, MatchRow, Page, Patients, SearchQuery,
    Sort, SortBy, SortKey, StrMatch, TokenMatch, count, indexed,
};

/// One page of matches.
pub fn search(conn: &mut AnyConnection, q: &SearchQuery<'_>) -> QueryResult<Vec<MatchRow>> {
    // one token value, first page in id order: the conditional create on an identifier
    // and the commonest search, as a query of fixed shape that stays prepared
    if let (
        [
            Condition::Token {
                param,
                any_of,
                negate: false,
                ..
            },
        ],
        None,
        true,
    ) = (
        q.conditions,
        q.page,
        q.sort.keys.is_empty() && !q.sort.id_desc,
    ) && let [
        TokenMatch {
            system,
            code: Some(code),
        },
    ] = any_of.as_slice()
    {
        return search_one_token(conn, q, param, system.as_deref(), code);
    }
    super::query::search(conn, q)
}

fn search_one_token(
    conn: &mut AnyConnection,
    q: &SearchQuery<'_>,
    param: &str,
    system: Option<&str>,
    code: &str,
) -> QueryResult<Vec<MatchRow>> {
    let sub = search_tokens::table
        .select(search_tokens::res_id)
        .filter(search_tokens::tenant.eq(q.tenant))
        .filter(search_tokens::res_type.eq(q.res_type))
        .filter(search_tokens::param.eq(param))
        .filter(search_tokens::code.eq(indexed(code)));
    let live = resources::table
        .filter(resources::tenant.eq(q.tenant))
        .filter(resources::res_type.eq(q.res_type))
        .filter(resources::deleted.eq(false));
    let columns = MATCH_COLUMNS;
    match system {
        Some(system) => on_backend!(conn, c => live
            .filter(resources::res_id.eq_any(sub.filter(search_tokens::system.eq(indexed(system)))))
            .select(columns)
            .order(resources::res_id.asc())
            .limit(q.limit)
            .load(c)),
        None => on_backend!(conn, c => live
            .filter(resources::res_id.eq_any(sub))
            .select(columns)
            .order(resources::res_id.asc())
            .limit(q.limit)
            .load(c)),
    }
}

/// The codes a reference parameter of the resources `ids` holds (`Type/id`, ...).
pub fn referenced(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    ids: &[String],
    param: &str,
) -> QueryResult<Vec<String>> {
    search_tokens::table
        .select(search_tokens::code)
        .filter(search_tokens::tenant.eq(tenant))
        .filter(search_tokens::res_type.eq(res_type))
        .filter(search_tokens::res_id.eq_any(ids))
        .filter(search_tokens::param.eq(param))
        .filter(search_tokens::system.eq(""))
        .distinct()
        .load(conn)
}

/// The `(type, id)` of the live resources among `types` whose `url` is one of `urls`.
pub fn by_canonical(
    conn: &mut AnyConnection,
    tenant: &str,
    types: &[&str],
    urls: &[String],
) -> QueryResult<Vec<(String, String)>> {
    search_tokens::table
        .select((search_tokens::res_type, search_tokens::res_id))
        .filter(search_tokens::tenant.eq(tenant))
        .filter(search_tokens::res_type.eq_any(types))
        .filter(search_tokens::param.eq("url"))
        .filter(search_tokens::code.eq_any(urls))
        .distinct()
        .load(conn)
}

/// The live resources of a type among `ids`, in id order.
pub fn live_by_ids(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    ids: &[String],
) -> QueryResult<Vec<MatchRow>> {
    resources::table
        .select(MATCH_COLUMNS)
        .filter(resources::tenant.eq(tenant))
        .filter(resources::res_type.eq(res_type))
        .filter(resources::res_id.eq_any(ids))
        .filter(resources::deleted.eq(false))
        .order(resources::res_id.asc())
        .load(conn)
}

/// Live resources of `res_type` whose reference parameter `param` names any of
/// `targets` (`Type/id`), in id order, `limit` at most.
pub fn referencing(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    param: &str,
    targets: &[String],
    limit: i64,
) -> QueryResult<Vec<MatchRow>> {
    let sub = search_tokens::table
        .select(search_tokens::res_id)
        .filter(search_tokens::tenant.eq(tenant))
        .filter(search_tokens::res_type.eq(res_type))
        .filter(search_tokens::param.eq(param))
        .filter(search_tokens::code.eq_any(targets));
    resources::table
        .select(MATCH_COLUMNS)
        .filter(resources::tenant.eq(tenant))
        .filter(resources::res_type.eq(res_type))
        .filter(resources::res_id.eq_any(sub))
        .filter(resources::deleted.eq(false))
        .order(resources::res_id.asc())
        .limit(limit)
        .load(conn)
}

/// The stored setting `name`, stored as `value` first when it has none (the first
/// writer's value wins, even when two processes start at once).
pub fn setting_or_insert(conn: &mut AnyConnection, name: &str, value: &str) -> QueryResult<String> {
    on_backend!(conn, c => diesel::insert_into(store_settings::table)
        .values((store_settings::name.eq(name), store_settings::value.eq(value)))
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(setting(conn, name)?.unwrap_or_else(|| value.to_string()))
}

/// A stored setting of the data (`None` when never set).
pub fn setting(conn: &mut AnyConnection, name: &str) -> QueryResult<Option<String>> {
    on_backend!(conn, c => store_settings::table
        .filter(store_settings::name.eq(name))
        .select(store_settings::value)
        .first(c)
        .optional())
}

/// Sets a stored setting of the data.
pub fn set_setting(conn: &mut AnyConnection, name: &str, value: &str) -> QueryResult<()> {
    on_backend!(conn, c => diesel::delete(store_settings::table.filter(store_settings::name.eq(name))).execute(c))?;
    on_backend!(conn, c => diesel::insert_into(store_settings::table)
        .values((store_settings::name.eq(name), store_settings::value.eq(value)))
        .execute(c))?;
    Ok(())
}

/// Tenant, type, id and body of a live resource.
pub type LiveRow = (String, String, String, Option<String>);

/// Live current resources (of `types`, or of every type) after `after` (tenant, type,
/// id), in key order: the batches of a rebuild of the search index, of the monitoring
/// events of earlier data.
pub fn live_after(
    conn: &mut AnyConnection,
    types: Option<&[&str]>,
    after: Option<(&str, &str, &str)>,
    limit: i64,
) -> QueryResult<Vec<LiveRow>> {
    let types: Option<Vec<String>> = types.map(|t| t.iter().map(|t| t.to_string()).collect());
    on_backend!(conn, c => {
        let mut q = resources::table
            .filter(resources::deleted.eq(false))
            .select((resources::tenant, resources::res_type, resources::res_id, resources::body))
            .order((resources::tenant, resources::res_type, resources::res_id))
            .limit(limit)
            .into_boxed();
        if let Some(types) = &types {
            q = q.filter(resources::res_type.eq_any(types.clone()));
        }
        if let Some((t, ty, id)) = after {
            let (t, ty, id) = (t.to_string(), ty.to_string(), id.to_string());
            q = q.filter(
                resources::tenant
                    .gt(t.clone())
                    .or(resources::tenant.eq(t.clone()).and(resources::res_type.gt(ty.clone())))
                    .or(resources::tenant
                        .eq(t)
                        .and(resources::res_type.eq(ty))
                        .and(resources::res_id.gt(id))),
            );
        }
        q.load(c)
    })
}

/// Replaces the search index rows of one current resource.
pub fn replace_tokens(
    conn: &mut AnyConnection,
    key: Key<'_>,
    tokens: &[Token<'_>],
) -> QueryResult<()> {
    delete_tokens(conn, key)?;
    insert_tokens(conn, key, tokens)?;
    if UNIQUE_IDENTIFIER_TYPES.contains(&key.res_type) {
        let mut ids: Vec<(String, String)> = tokens
            .iter()
            .filter(|t| t.param == "identifier")
            .map(|t| (t.system.to_string(), t.code.to_string()))
            .collect();
        ids.sort();
        ids.dedup();
        replace_unique_identifiers(conn, key, &ids, true)?;
    }
    Ok(())
}

/// The index rows of a new version: all of them for a first version; on an update only
/// those that changed when the rows stored for the version replaced are known, else all
/// rewritten; none for a deletion.
fn write_tokens(conn: &mut AnyConnection, v: &NewVersion<'_>, deleted: bool) -> QueryResult<()> {
    let k = v.key;
    let old = match (v.previous, v.previous_tokens) {
        (None, _) => &[][..],
        (Some(_), Some(old)) if !deleted => old,
        (Some(_), _) => {
            delete_tokens(conn, k)?;
            &[][..]
        }
    };
    if deleted {
        return Ok(());
    }
    fn key<'t>(t: &Token<'t>) -> (&'t str, &'t str, &'t str) {
        (t.param, t.system, t.code)
    }
    let new: std::collections::HashSet<_> = v.tokens.iter().map(key).collect();
    let before: std::collections::HashSet<_> = old.iter().map(key).collect();
    for (param, system, code) in before.difference(&new) {
        on_backend!(conn, c => diesel::delete(
            search_tokens::table
                .filter(search_tokens::tenant.eq(k.tenant))
                .filter(search_tokens::res_type.eq(k.res_type))
                .filter(search_tokens::res_id.eq(k.res_id))
                .filter(search_tokens::param.eq(*param))
                .filter(search_tokens::system.eq(*system))
                .filter(search_tokens::code.eq(*code)),
        )
        .execute(c))?;
    }
    let added: Vec<Token<'_>> = v
        .tokens
        .iter()
        .filter(|t| !before.contains(&key(t)))
        .copied()
        .collect();
    insert_tokens(conn, k, &added)
}

fn delete_tokens(conn: &mut AnyConnection, key: Key<'_>) -> QueryResult<()> {
    on_backend!(conn, c => diesel::delete(
        search_tokens::table
            .filter(search_tokens::tenant.eq(key.tenant))
            .filter(search_tokens::res_type.eq(key.res_type))
            .filter(search_tokens::res_id.eq(key.res_id)),
    )
    .execute(c))?;
    Ok(())
}

/// Inserts the search index rows of a resource (duplicates dropped). One statement per
/// row, prepared once and cached: cheaper than parsing a multi-row statement whose
/// length changes from one resource to the next.
fn insert_tokens(conn: &mut AnyConnection, key: Key<'_>, tokens: &[Token<'_>]) -> QueryResult<()> {
    let mut tokens: Vec<&Token<'_>> = tokens.iter().collect();
    tokens.sort_by_key(|t| (t.param, t.system, t.code));
    tokens.dedup_by_key(|t| (t.param, t.system, t.code));
    for t in tokens {
        on_backend!(conn, c => diesel::insert_into(search_tokens::table)
            .values((
                search_tokens::tenant.eq(key.tenant),
                search_tokens::res_type.eq(key.res_type),
                search_tokens::res_id.eq(key.res_id),
                search_tokens::param.eq(t.param),
                search_tokens::system.eq(t.system),
                search_tokens::code.eq(t.code),
            ))
            .execute(c))?;
    }
    Ok(())
}
