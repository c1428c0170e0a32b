//! What a client may see of the store: the limits of its reads, applied by the SQL of
//! every lookup, its writes' included.

use super::{Access, Limits, scopes::Perm};
use crate::db::store::{self, SearchQuery};
use crate::db::{AnyConnection, DbError};

/// What a writer may see of the store while it writes: the same limits as its reads,
/// applied to every lookup a write makes (conditional matches, reference checks, the
/// holder of an identifier), so that no answer to a write tells a patient-context
/// client anything about a resource outside its compartment.
#[derive(Debug, Clone, Default)]
pub enum Visibility {
    /// The server's own writes: everything in the tenant.
    #[default]
    Open,
    /// A client's writes: what its token may read.
    Of(std::sync::Arc<Access>),
}

impl Visibility {
    /// The limits of what may be seen of `resource_type` (`None`: nothing of it). A
    /// token without read access to a type sees nothing of it when a patient is in
    /// context, and (as before) whether a resource exists when it acts for a system
    /// or a user.
    pub fn limits(&self, resource_type: &str) -> Option<Limits> {
        match self {
            Visibility::Open => Some(Limits::default()),
            Visibility::Of(access) => match access.require(resource_type, Perm::Read) {
                Ok(limits) => Some(limits),
                Err(_) if access.patient.is_some() => None,
                Err(_) => Some(Limits::default()),
            },
        }
    }
}

/// Whether the resource `res_type/id` lies within what `visibility` may see (a query
/// with its limits' conditions; no query when they are open). Says nothing of whether
/// the resource exists when the limits are open.
pub fn seen(
    conn: &mut AnyConnection,
    tenant: &str,
    visibility: &Visibility,
    res_type: &str,
    id: &str,
) -> Result<bool, DbError> {
    match visibility.limits(res_type) {
        None => Ok(false),
        Some(limits) if limits.is_open() => Ok(true),
        Some(limits) => visible(conn, tenant, res_type, id, &limits),
    }
}

/// Whether a live or deleted resource may be seen within `limits` (always when they are
/// open; else a query of the resource with the limits' conditions).
pub fn visible(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    id: &str,
    limits: &Limits,
) -> Result<bool, DbError> {
    Ok(!visible_ids(conn, tenant, res_type, vec![id.to_string()], limits)?.is_empty())
}

/// Of `ids` of `res_type`, those that may be seen within `limits` (all of them when the
/// limits are open; else one query of them with the limits' conditions).
pub fn visible_ids(
    conn: &mut AnyConnection,
    tenant: &str,
    res_type: &str,
    ids: Vec<String>,
    limits: &Limits,
) -> Result<Vec<String>, DbError> {
    if limits.is_open() {
        return Ok(ids);
    }
    let limit = ids.len() as i64;
    let mut conditions = vec![store::Condition::Id(ids)];
    conditions.extend(limits.conditions.iter().cloned());
    let q = SearchQuery::new(tenant, res_type, &conditions, limit);
    Ok(store::search(conn, &q)?
        .into_iter()
        .map(|r| r.res_id)
        .collect())
}
