//! Transaction and batch Bundles (R4 http.html#transaction) on the resource store.
//!
//! A transaction runs in one database transaction: DELETE entries first, then the ids of
//! every POST and PUT entry are settled (conditional creates and updates searched,
//! conditional references resolved), references between entries are rewritten to those
//! ids, the writes run (an entry after the entries it references), the references of
//! everything written are checked, and GET entries read the result. Any failure rolls
//! everything back and names the entry. A batch runs each entry in a savepoint of its
//! own: one entry's failure is its own answer. Blocking: callers run this on the
//! blocking pool.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use domain::VersionId;
use fhir_mapping::bundle::{Entry, EntryResponse, write_bundle};
use fhir_mapping::references::{FoundReference, find_references};
use fhir_mapping::transaction::{
    Kind, Method, RequestBundle, RequestEntry, Target, conditional_references, json_patch_of,
    parse_url, processing_order, rewrite_references,
};
use fhir_mapping::{Format, Issue, IssueType, ParseLimits, ParsedResource, operation_outcome};

use crate::clock::instant_string;
use crate::db::query::Condition;
use crate::db::store::{self, Key};
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;
use crate::search::{self, DEFAULT_COUNT, Search};
use crate::service::{self, Answered, Ctx, Idempotency, Scope, WriteStatus, Written, idempotent};

/// What the response entries carry besides `response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// `Prefer: return=minimal` (the default for Bundles): status, location, etag.
    Minimal,
    /// `Prefer: return=representation`: the resource as stored.
    Representation,
    /// `Prefer: return=OperationOutcome`: an OperationOutcome per entry.
    OperationOutcome,
}

/// How a request Bundle is processed.
pub struct Settings {
    /// The FHIR base URL as the client sees it (`fullUrl` and `location` of answers).
    pub base: String,
    pub limits: ParseLimits,
    /// The body limit of a resource (a patched one too): see `media::body_limit`.
    pub max_body_bytes: usize,
    pub max_binary_bytes: usize,
    pub max_patch_operations: usize,
    pub answer: AnswerLimits,
    pub returns: Return,
}

/// The bounds on what the entries of one Bundle may search, read and answer. A batch
/// runs in the write transaction (on SQLite, on the one writer thread, which every
/// write waits for), so its reads are held to these; so are a transaction's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    /// Searches: entries that search (`GET [type]` or `GET [type]?...`), and conditional
    /// criteria that name no selective parameter (see `search_cost`).
    pub max_searches: usize,
    /// Resources read or returned: search matches and includes, reads, representations.
    pub max_resources: usize,
    /// Bytes of the resources in the answer.
    pub max_bytes: usize,
}

/// What the entries of one Bundle have searched, read and answered so far. Once an
/// entry of a batch has passed a limit, the later entries that would read or return
/// resources are not carried out (each answers 413, its text naming the limit); the
/// others still run.
struct Budget {
    limits: AnswerLimits,
    searches: usize,
    resources: usize,
    bytes: usize,
    /// Why the room of the answer is used up, once it is.
    spent: Option<String>,
}

impl Budget {
    fn new(limits: AnswerLimits) -> Budget {
        Budget {
            limits,
            searches: 0,
            resources: 0,
            bytes: 0,
            spent: None,
        }
    }

    fn too_many_searches(&self) -> ApiError {
        ApiError::TooLarge(format!(
            "this Bundle makes more than {} searches (--max-bundle-searches: entries that \
             search, and conditional criteria that name no identifier, reference or _id): \
             split it, or make the criteria selective",
            self.limits.max_searches
        ))
    }

    /// Before a batch entry runs: whether it may.
    fn admit(&mut self, e: &RequestEntry, returns: Return) -> Result<(), ApiError> {
        if let Some(why) = &self.spent
            && reads_resources(e, returns)
        {
            return Err(ApiError::TooLarge(why.clone()));
        }
        let cost = search_cost(e);
        if cost > 0 {
            if self.searches + cost > self.limits.max_searches {
                return Err(self.too_many_searches());
            }
            self.searches += cost;
        }
        Ok(())
    }

    /// After an entry ran: its answer counted, or refused (and the room marked used up)
    /// when it would pass a limit.
    fn charge(&mut self, answer: &Answer, returns: Return) -> Result<(), ApiError> {
        let represented = answer_body(answer, returns).map_or(0, <[u8]>::len);
        let resources = self.resources.saturating_add(
            answer
                .resources
                .max(usize::from(answer.resource.is_none() && represented > 0)),
        );
        let bytes = self.bytes.saturating_add(represented);
        let why = if resources > self.limits.max_resources {
            format!(
                "the entries of this Bundle would read or return more than {} resources \
                 (--max-bundle-response-resources): ask for fewer (a smaller _count) or \
                 split the Bundle",
                self.limits.max_resources
            )
        } else if bytes > self.limits.max_bytes {
            format!(
                "the answer to this Bundle would hold more than {} bytes of resources \
                 (--max-bundle-response-bytes): ask for fewer (a smaller _count) or split \
                 the Bundle",
                self.limits.max_bytes
            )
        } else {
            self.resources = resources;
            self.bytes = bytes;
            return Ok(());
        };
        self.spent = Some(why.clone());
        Err(ApiError::TooLarge(why))
    }
}

/// The searches an entry makes that count against `max_searches`: 1 when it searches
/// (`GET [type]?...`), plus one per conditional criteria of its request (`ifNoneExist`,
/// `PUT|PATCH|DELETE [type]?...`) or its resource's references (`Patient?...`) that
/// names no selective parameter (an identifier, a reference, `_id`). Those may walk a
/// whole type, in the write transaction; the selective ones are index lookups and are
/// bounded by the entries' own limit. Criteria that cannot be read count nothing: their
/// entry fails when it runs.
fn search_cost(e: &RequestEntry) -> usize {
    let mut criteria: Vec<(String, String)> = Vec::new();
    if let (Some(q), Some(r)) = (&e.if_none_exist, &e.resource) {
        let q = q.split_once('?').map_or(q.as_str(), |(_, q)| q);
        criteria.push((r.resource_type().to_string(), q.to_string()));
    }
    if matches!(e.method, Method::Put | Method::Patch | Method::Delete)
        && let Some(Target::Search(t, q)) = parse_url(&e.url, "")
    {
        criteria.push((t, q));
    }
    if e.method != Method::Patch
        && let Some(r) = &e.resource
    {
        for reference in conditional_references(r.json()) {
            if let Some((t, q)) = reference.split_once('?') {
                criteria.push((t.to_string(), q.to_string()));
            }
        }
    }
    let costly = criteria
        .iter()
        .filter(|(t, q)| {
            parse_search(t, q).is_ok_and(|s| {
                !s.conditions.iter().any(|c| {
                    matches!(
                        c,
                        Condition::Id(_)
                            | Condition::Token {
                                selective: true,
                                ..
                            }
                    )
                })
            })
        })
        .count();
    usize::from(searches(e)) + costly
}

/// Whether an entry searches.
fn searches(e: &RequestEntry) -> bool {
    matches!(e.method, Method::Get | Method::Head)
        && matches!(
            parse_url(&e.url, ""),
            Some(Target::Type(_) | Target::Search(..))
        )
}

/// Whether an entry reads resources into the answer (or returns what it writes).
fn reads_resources(e: &RequestEntry, returns: Return) -> bool {
    matches!(e.method, Method::Get | Method::Head) || returns == Return::Representation
}

/// The resource an entry's answer carries: what it read, or (`return=representation`)
/// what it wrote.
fn answer_body(a: &Answer, returns: Return) -> Option<&[u8]> {
    if let Some(r) = &a.resource {
        return Some(r);
    }
    match returns {
        Return::Representation => a
            .written
            .as_ref()
            .and_then(|w| w.body.as_deref())
            .map(str::as_bytes),
        _ => None,
    }
}

/// The outcome of one entry.
struct Answer {
    status: StatusCode,
    written: Option<Written>,
    /// A resource to return whatever `Return` says (GET entries).
    resource: Option<Vec<u8>>,
    /// Resources the entry read (GET entries: the matches and includes of a search).
    resources: usize,
    outcome: Option<serde_json::Value>,
}

impl Answer {
    fn of_write(w: Written) -> Answer {
        let status = match w.status {
            WriteStatus::Created => StatusCode::CREATED,
            WriteStatus::Deleted | WriteStatus::Unchanged => StatusCode::NO_CONTENT,
            WriteStatus::Updated | WriteStatus::Existing => StatusCode::OK,
        };
        Answer {
            status,
            written: Some(w),
            resource: None,
            resources: 0,
            outcome: None,
        }
    }

    fn of_error(e: &ApiError) -> Answer {
        Answer {
            status: e.status(),
            written: None,
            resource: None,
            resources: 0,
            outcome: Some(operation_outcome(&e.issues())),
        }
    }
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}

/// Processes a request Bundle; the answer is the `transaction-response` or
/// `batch-response` Bundle as JSON, and whether it is the stored answer of an earlier
/// request with the same idempotency key.
pub fn process(
    db: &Db,
    scope: Scope,
    bundle: RequestBundle,
    settings: Settings,
    idempotency: Option<Idempotency>,
) -> Result<(Vec<u8>, bool), ApiError> {
    match bundle.kind {
        Kind::Transaction => {
            let entries = bundle
                .entries
                .into_iter()
                .enumerate()
                .map(|(i, e)| {
                    e.map_err(|issues| {
                        ApiError::Invalid(fhir_mapping::MappingError { issues })
                            .in_entry(i, format!("Bundle.entry[{i}]"))
                    })
                })
                .collect::<Result<Vec<RequestEntry>, ApiError>>()?;
            let budget = Budget::new(settings.answer);
            if entries.iter().map(search_cost).sum::<usize>() > settings.answer.max_searches {
                return Err(budget.too_many_searches());
            }
            db.write(move |conn| {
                // the time of the write is read in its transaction: see `Db::write`
                let ctx = scope.ctx(false);
                let answered = idempotent(
                    conn,
                    ctx,
                    idempotency.as_ref(),
                    |conn| {
                        let mut budget = Budget::new(settings.answer);
                        let answers = transaction(conn, ctx, &entries, &settings, &mut budget)?;
                        Ok(response(Kind::Transaction, answers, &settings, ctx.now))
                    },
                    |bundle| (200, None, String::from_utf8(bundle.clone()).ok()),
                )?;
                Ok(replayed(answered))
            })
        }
        Kind::Batch => {
            let entries = bundle.entries;
            db.write(move |conn| {
                // the time of the write is read in its transaction: see `Db::write`
                let ctx = scope.ctx(true);
                let answered = idempotent(
                    conn,
                    ctx,
                    idempotency.as_ref(),
                    |conn| {
                        let mut answers = Vec::with_capacity(entries.len());
                        let mut budget = Budget::new(settings.answer);
                        for entry in &entries {
                            let answer = match entry {
                                Err(issues) => Answer::of_error(&ApiError::Invalid(
                                    fhir_mapping::MappingError {
                                        issues: issues.clone(),
                                    },
                                )),
                                Ok(entry) => match budget.admit(entry, settings.returns) {
                                    Ok(()) => batch_entry(conn, ctx, entry, &settings, &mut budget),
                                    Err(e) => Answer::of_error(&e),
                                },
                            };
                            answers.push(answer);
                        }
                        Ok(response(Kind::Batch, answers, &settings, ctx.now))
                    },
                    |bundle| (200, None, String::from_utf8(bundle.clone()).ok()),
                )?;
                Ok(replayed(answered))
            })
        }
    }
}

fn replayed(answered: Answered<Vec<u8>>) -> (Vec<u8>, bool) {
    match answered {
        Answered::Fresh(b) => (b, false),
        Answered::Replayed(a) => (a.body.unwrap_or_default().into_bytes(), true),
    }
}

/// One batch entry in a savepoint of its own; a lost race is tried again (it sees the
/// winner's commit). An entry whose answer would pass a limit of the budget is rolled
/// back and answers 413.
fn batch_entry(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    entry: &RequestEntry,
    settings: &Settings,
    budget: &mut Budget,
) -> Answer {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = crate::db::savepoint(conn, |c| {
            let mut ids = HashMap::new();
            let resolved = resolve_ids(c, ctx, std::slice::from_ref(entry), &mut ids)?;
            let resource = prepared_resource(c, ctx, entry, &ids, settings, false)?;
            let answer = execute(
                c,
                ctx,
                entry,
                resource,
                resolved.first().cloned().flatten(),
                settings,
            )?;
            budget.charge(&answer, settings.returns)?;
            Ok(answer)
        });
        match result {
            Err(ApiError::Retry) if attempt < 5 => continue,
            Ok(a) => return a,
            Err(e) => return Answer::of_error(&e),
        }
    }
}

/// The entries of a transaction, in processing order, in the open transaction; the
/// first entry whose answer passes a limit of the budget fails it.
fn transaction(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    entries: &[RequestEntry],
    settings: &Settings,
    budget: &mut Budget,
) -> Result<Vec<Answer>, ApiError> {
    let label = |e: &RequestEntry| e.label();
    check_unique_full_urls(entries)?;
    let order = processing_order(entries);
    let mut answers: Vec<Option<Answer>> = (0..entries.len()).map(|_| None).collect();
    // deletions first: a conditional create may then find nothing
    for &i in order
        .iter()
        .filter(|&&i| entries[i].method == Method::Delete)
    {
        let e = &entries[i];
        let answer = execute(conn, ctx, e, None, None, settings)
            .map_err(|err| err.in_entry(e.index, label(e)))?;
        answers[i] = Some(answer);
    }
    let mut ids: HashMap<String, String> = HashMap::new();
    let resolved = resolve_ids(conn, ctx, entries, &mut ids)?;
    // the references each written entry makes, checked once everything is written
    let mut written: Vec<(usize, Vec<FoundReference>)> = Vec::new();
    for &i in order
        .iter()
        .filter(|&&i| entries[i].method != Method::Delete)
    {
        let e = &entries[i];
        let mut refs = Vec::new();
        let mut run = |conn: &mut AnyConnection| -> Result<Answer, ApiError> {
            let resource = prepared_resource(conn, ctx, e, &ids, settings, true)?;
            if let Some(r) = &resource {
                refs = find_references(r.resource_type(), r.json());
            }
            let answer = execute(conn, ctx, e, resource, resolved[i].clone(), settings)?;
            budget.charge(&answer, settings.returns)?;
            Ok(answer)
        };
        let answer = run(conn).map_err(|err| err.in_entry(e.index, label(e)))?;
        if answer
            .written
            .as_ref()
            .is_some_and(|w| matches!(w.status, WriteStatus::Created | WriteStatus::Updated))
        {
            written.push((i, refs));
        }
        answers[i] = Some(answer);
    }
    // every reference of what was written resolves, now that all entries are written;
    // those to resources written by this transaction are known to
    let fresh: HashSet<String> = written
        .iter()
        .filter_map(|(i, _)| {
            answers[*i]
                .as_ref()
                .and_then(|a| a.written.as_ref())
                .map(|w| format!("{}/{}", w.res_type, w.id))
        })
        .collect();
    for (i, refs) in written {
        let e = &entries[i];
        let others: Vec<FoundReference> = refs
            .into_iter()
            .filter(|f| !fresh.contains(f.reference.as_str()))
            .collect();
        if !others.is_empty() {
            service::check_found_references(conn, ctx.tenant, ctx.visibility, others)
                .map_err(|err| err.in_entry(e.index, label(e)))?;
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| {
            a.unwrap_or(Answer {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                written: None,
                resource: None,
                resources: 0,
                outcome: None,
            })
        })
        .collect())
}

fn check_unique_full_urls(entries: &[RequestEntry]) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for e in entries {
        if let Some(u) = &e.full_url
            && e.resource.is_some()
            && !seen.insert(u.as_str())
        {
            return Err(ApiError::BadRequest(format!(
                "fullUrl `{u}` names two entries of the Bundle"
            ))
            .in_entry(e.index, e.label()));
        }
    }
    Ok(())
}

/// What a write entry resolves to before anything is written: the id of the resource
/// it creates or changes. The `fullUrl` of each entry goes into `ids` with the local
/// reference (`Patient/123`) it becomes.
#[derive(Debug, Clone)]
enum Resolved {
    /// A new resource with this id.
    New(String),
    /// A conditional create whose criteria match this existing resource.
    Existing(String),
    /// An update of this id.
    Update(String),
}

fn resolve_ids(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    entries: &[RequestEntry],
    ids: &mut HashMap<String, String>,
) -> Result<Vec<Option<Resolved>>, ApiError> {
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let r = resolve_one(conn, ctx, e).map_err(|err| err.in_entry(e.index, e.label()))?;
        if let (Some(r), Some(full_url), Some(resource)) = (&r, &e.full_url, &e.resource) {
            let id = match r {
                Resolved::New(id) | Resolved::Existing(id) | Resolved::Update(id) => id,
            };
            ids.insert(
                full_url.clone(),
                format!("{}/{id}", resource.resource_type()),
            );
        }
        out.push(r);
    }
    Ok(out)
}

fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query)
        .map_err(|_| ApiError::BadRequest(format!("`{query}` is not a valid query")))
}

fn parse_search(res_type: &str, query: &str) -> Result<Search, ApiError> {
    search::parse(res_type, &query_pairs(query)?)
}

fn resolve_one(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    e: &RequestEntry,
) -> Result<Option<Resolved>, ApiError> {
    let Some(resource) = &e.resource else {
        return Ok(None);
    };
    let res_type = resource.resource_type();
    let new_id = crate::db::new_id;
    Ok(Some(match e.method {
        Method::Post => match &e.if_none_exist {
            None => Resolved::New(new_id()),
            Some(criteria) => {
                let criteria = criteria
                    .split_once('?')
                    .map_or(criteria.as_str(), |(_, q)| q);
                let search = parse_search(res_type, criteria)?;
                match service::matches(conn, ctx, res_type, &search)?.as_slice() {
                    [] => Resolved::New(new_id()),
                    [one] => Resolved::Existing(one.res_id.clone()),
                    _ => {
                        return Err(ApiError::PreconditionFailed(
                            "the ifNoneExist criteria match more than one resource".into(),
                        ));
                    }
                }
            }
        },
        Method::Put | Method::Patch => match parse_url(&e.url, "") {
            Some(Target::Instance(_, id)) => Resolved::Update(id),
            Some(Target::Search(_, query)) if e.method == Method::Put => {
                let search = parse_search(res_type, &query)?;
                match service::matches(conn, ctx, res_type, &search)?.as_slice() {
                    [] => Resolved::Update(resource.id().map_or_else(new_id, str::to_string)),
                    [one] => Resolved::Update(one.res_id.clone()),
                    _ => {
                        return Err(ApiError::PreconditionFailed(
                            "the criteria match more than one resource".into(),
                        ));
                    }
                }
            }
            _ => return Ok(None),
        },
        _ => return Ok(None),
    }))
}

/// The entry's resource ready to write: references to other entries rewritten,
/// conditional references resolved, urn references that name no entry refused, and the
/// checks a single write of it would get.
fn prepared_resource(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    e: &RequestEntry,
    ids: &HashMap<String, String>,
    settings: &Settings,
    in_transaction: bool,
) -> Result<Option<ParsedResource>, ApiError> {
    let Some(resource) = &e.resource else {
        return Ok(None);
    };
    if e.method == Method::Patch {
        return Ok(Some(resource.clone()));
    }
    let mut resource = resource.clone();
    let mut local_ids: HashMap<String, String> = HashMap::new();
    for reference in conditional_references(resource.json()) {
        let (t, q) = reference.split_once('?').unwrap_or_default();
        let search = parse_search(t, q)?;
        match service::matches(conn, ctx, t, &search)?.as_slice() {
            [one] => {
                local_ids.insert(reference.clone(), format!("{t}/{}", one.res_id));
            }
            [] => {
                let mut issue = Issue::error(
                    IssueType::NotFound,
                    format!("the conditional reference `{reference}` matches no resource"),
                );
                if let Some(found) = find_references(resource.resource_type(), resource.json())
                    .into_iter()
                    .find(|f| f.reference == reference)
                {
                    issue = issue.at(found.path);
                }
                return Err(ApiError::Unprocessable(vec![issue]));
            }
            _ => {
                return Err(ApiError::PreconditionFailed(format!(
                    "the conditional reference `{reference}` matches more than one resource"
                )));
            }
        }
    }
    if local_ids.is_empty() {
        rewrite_references(resource.json_mut(), ids);
    } else {
        local_ids.extend(ids.iter().map(|(k, v)| (k.clone(), v.clone())));
        rewrite_references(resource.json_mut(), &local_ids);
    }
    let unresolved: Vec<Issue> = find_references(resource.resource_type(), resource.json())
        .into_iter()
        .filter(|f| f.reference.starts_with("urn:uuid:") || f.reference.starts_with("urn:oid:"))
        .map(|f| {
            let why = if in_transaction {
                "names no entry of this Bundle"
            } else {
                "cannot be resolved: entries of a batch do not reference each other"
            };
            Issue::error(
                IssueType::NotFound,
                format!("the reference `{}` {why}", f.reference),
            )
            .at(f.path)
        })
        .collect();
    if !unresolved.is_empty() {
        return Err(ApiError::Unprocessable(unresolved));
    }
    if resource.resource_type() == "Binary" {
        let issues = fhir_mapping::media::check_binary(resource.json(), settings.max_binary_bytes);
        if !issues.is_empty() {
            return Err(ApiError::Unprocessable(issues));
        }
    }
    Ok(Some(resource))
}

fn if_match(e: &RequestEntry) -> Result<Option<i64>, ApiError> {
    e.if_match
        .as_deref()
        .map(|s| {
            VersionId::parse_etag(s)
                .map(|v| i64::from(v.get()))
                .map_err(|_| {
                    ApiError::BadRequest("ifMatch must be an entity tag like W/\"3\"".into())
                })
        })
        .transpose()
}

fn target_of(e: &RequestEntry) -> Result<Target, ApiError> {
    parse_url(&e.url, "").ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`{}` is not a URL of a resource type, resource or search on this server",
            e.url
        ))
    })
}

fn check_type(target: &Target, resource: &ParsedResource) -> Result<(), ApiError> {
    if target.resource_type() != resource.resource_type() {
        return Err(ApiError::BadRequest(format!(
            "the resource is a {} but the request URL is for {}",
            resource.resource_type(),
            target.resource_type()
        )));
    }
    Ok(())
}

/// Carries out one entry.
fn execute(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    e: &RequestEntry,
    resource: Option<ParsedResource>,
    resolved: Option<Resolved>,
    settings: &Settings,
) -> Result<Answer, ApiError> {
    let target = target_of(e)?;
    let answer = match (e.method, resource) {
        (Method::Delete, _) => match &target {
            Target::Instance(t, id) => {
                match service::delete_in(conn, ctx, t, id, if_match(e)?) {
                    // deleting what does not exist is not an error (R4 http.html#delete)
                    Err(ApiError::NotFound(_)) => Answer {
                        status: StatusCode::NO_CONTENT,
                        written: None,
                        resource: None,
                        resources: 0,
                        outcome: None,
                    },
                    other => Answer::of_write(other?),
                }
            }
            Target::Search(t, q) => {
                let search = parse_search(t, q)?;
                Answer::of_write(service::conditional_delete_in(conn, ctx, t, &search)?)
            }
            _ => {
                return Err(ApiError::BadRequest(
                    "DELETE names a resource or a search".into(),
                ));
            }
        },
        (Method::Post, Some(resource)) => {
            check_type(&target, &resource)?;
            let Target::Type(_) = target else {
                return Err(ApiError::BadRequest("POST names a resource type".into()));
            };
            let criteria = match &e.if_none_exist {
                Some(c) => {
                    let c = c.split_once('?').map_or(c.as_str(), |(_, q)| q);
                    Some(parse_search(resource.resource_type(), c)?)
                }
                None => None,
            };
            match resolved {
                // the criteria matched this resource when the ids were settled
                Some(Resolved::Existing(id)) => {
                    let key = Key {
                        tenant: ctx.tenant,
                        res_type: resource.resource_type(),
                        res_id: &id,
                    };
                    let row = store::current(conn, key)?
                        .filter(|c| !c.deleted)
                        .ok_or(ApiError::Retry)?;
                    Answer::of_write(service::existing(
                        resource.resource_type(),
                        store::MatchRow {
                            res_id: id.clone(),
                            version: row.version,
                            last_updated: row.last_updated,
                            body: row.body,
                        },
                    ))
                }
                Some(Resolved::New(id) | Resolved::Update(id)) => Answer::of_write(
                    service::create_in(conn, ctx, &resource, &id, criteria.as_ref(), true)?,
                ),
                None => Answer::of_write(service::create_in(
                    conn,
                    ctx,
                    &resource,
                    &crate::db::new_id(),
                    criteria.as_ref(),
                    false,
                )?),
            }
        }
        (Method::Put, Some(resource)) => {
            check_type(&target, &resource)?;
            let if_match = if_match(e)?;
            match &target {
                Target::Instance(_, id) => {
                    if resource.id() != Some(id.as_str()) {
                        return Err(ApiError::BadRequest(format!(
                            "the resource id must be `{id}`, the id in the request URL"
                        )));
                    }
                    Answer::of_write(service::update_in(conn, ctx, &resource, id, if_match)?)
                }
                Target::Search(t, q) => {
                    let search = parse_search(t, q)?;
                    let new_id = match resolved {
                        Some(Resolved::Update(id)) => id,
                        _ => crate::db::new_id(),
                    };
                    Answer::of_write(service::conditional_update_in(
                        conn, ctx, &resource, &new_id, &search, if_match,
                    )?)
                }
                _ => {
                    return Err(ApiError::BadRequest(
                        "PUT names a resource or a search".into(),
                    ));
                }
            }
        }
        (Method::Patch, Some(resource)) => {
            let Target::Instance(t, id) = &target else {
                return Err(ApiError::BadRequest("PATCH names a resource".into()));
            };
            let Some(patch) = json_patch_of(&resource) else {
                return Err(ApiError::UnsupportedMediaType(
                    "a PATCH entry carries a Binary of content type application/json-patch+json"
                        .into(),
                ));
            };
            Answer::of_write(patch_in(conn, ctx, t, id, &patch, if_match(e)?, settings)?)
        }
        (Method::Get | Method::Head, _) => read_entry(conn, ctx, &target, settings, e.method)?,
        _ => return Err(ApiError::BadRequest("the entry has no resource".into())),
    };
    Ok(answer)
}

/// A JSON Patch applied to the current version, written as an update of it.
fn patch_in(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    res_type: &str,
    id: &str,
    patch: &[u8],
    if_match: Option<i64>,
    settings: &Settings,
) -> Result<Written, ApiError> {
    let ops = crate::patch::parse(patch, settings.max_patch_operations)?;
    let key = Key {
        tenant: ctx.tenant,
        res_type,
        res_id: id,
    };
    let current = store::current(conn, key)?
        .ok_or_else(|| ApiError::NotFound(format!("{res_type}/{id} does not exist")))?;
    let Some(stored) = current.body.filter(|_| !current.deleted) else {
        return Err(ApiError::Gone(format!("{res_type}/{id} was deleted")));
    };
    if let Some(v) = if_match
        && v != current.version
    {
        return Err(ApiError::PreconditionFailed(format!(
            "ifMatch names version {v} but the current version is {}",
            current.version
        )));
    }
    let max_bytes = fhir_mapping::media::body_limit(
        res_type,
        settings.max_body_bytes,
        settings.max_binary_bytes,
    );
    let bytes = crate::patch::apply(&stored, &ops, max_bytes)?;
    let parsed = fhir_mapping::parse_resource(&bytes, Format::Json, &settings.limits)?;
    if parsed.resource_type() != res_type || parsed.id() != Some(id) {
        return Err(ApiError::Unprocessable(vec![Issue::error(
            IssueType::BusinessRule,
            "a patch cannot change the resource's type or id",
        )]));
    }
    service::update_in(conn, ctx, &parsed, id, Some(current.version))
}

/// A GET (or HEAD) entry: read, vread or search, seeing the Bundle's own writes.
fn read_entry(
    conn: &mut AnyConnection,
    ctx: Ctx<'_>,
    target: &Target,
    settings: &Settings,
    method: Method,
) -> Result<Answer, ApiError> {
    let (status, body, version, resources) = match target {
        Target::Instance(t, id) => {
            let key = Key {
                tenant: ctx.tenant,
                res_type: t,
                res_id: id,
            };
            let row = store::current(conn, key)?
                .ok_or_else(|| ApiError::NotFound(format!("{t}/{id} does not exist")))?;
            let body = row
                .body
                .filter(|_| !row.deleted)
                .ok_or_else(|| ApiError::Gone(format!("{t}/{id} was deleted")))?;
            (
                StatusCode::OK,
                body.into_bytes(),
                Some((row.version, row.last_updated)),
                1,
            )
        }
        Target::Version(t, id, v) => {
            let not_found = || ApiError::NotFound(format!("{t}/{id}/_history/{v} does not exist"));
            let v: i64 = v.parse().map_err(|_| not_found())?;
            let key = Key {
                tenant: ctx.tenant,
                res_type: t,
                res_id: id,
            };
            let row = store::version(conn, key, v)?.ok_or_else(not_found)?;
            let body = row
                .body
                .ok_or_else(|| ApiError::Gone(format!("version {v} of {t}/{id} is a deletion")))?;
            (
                StatusCode::OK,
                body.into_bytes(),
                Some((row.version, row.last_updated)),
                1,
            )
        }
        Target::Type(t) | Target::Search(t, _) => {
            let query = match target {
                Target::Search(_, q) => query_pairs(q)?,
                _ => Vec::new(),
            };
            let parsed = search::parse(t, &query)?;
            let count = parsed.count.unwrap_or(DEFAULT_COUNT);
            let found = search::execute(conn, ctx.tenant, t, &parsed, count, None)?;
            let bundle = search::searchset(&settings.base, t, &parsed, count, &found, ctx.now);
            (
                StatusCode::OK,
                bundle,
                None,
                found.rows.len() + found.included.len(),
            )
        }
    };
    let written = version.map(|(version, last_updated)| Written {
        status: WriteStatus::Unchanged,
        res_type: target.resource_type().to_string(),
        id: match target {
            Target::Instance(_, id) | Target::Version(_, id, _) => id.clone(),
            _ => String::new(),
        },
        version,
        last_updated,
        body: None,
    });
    Ok(Answer {
        status,
        written,
        resource: (method == Method::Get).then_some(body),
        resources,
        outcome: None,
    })
}

/// The response Bundle: one entry per request entry, in the request's order.
fn response(kind: Kind, answers: Vec<Answer>, settings: &Settings, now: i64) -> Vec<u8> {
    let base = &settings.base;
    let bodies: Vec<Option<Cow<'_, [u8]>>> = answers
        .iter()
        .map(|a| {
            if let Some(body) = answer_body(a, settings.returns) {
                return Some(Cow::Borrowed(body));
            }
            match settings.returns {
                Return::OperationOutcome if a.outcome.is_none() => {
                    let message = match a.written.as_ref().map(|w| w.status) {
                        Some(WriteStatus::Created) => "created",
                        Some(WriteStatus::Existing) => {
                            "a matching resource exists; nothing was created"
                        }
                        Some(WriteStatus::Updated) => "updated",
                        Some(WriteStatus::Deleted) => "deleted",
                        _ => "done",
                    };
                    serde_json::to_vec(&operation_outcome(&[Issue::information(message)]))
                        .ok()
                        .map(Cow::Owned)
                }
                _ => None,
            }
        })
        .collect();
    let out: Vec<Entry<'_>> = answers
        .iter()
        .zip(&bodies)
        .map(|(a, body)| {
            let w = a.written.as_ref().filter(|w| !w.id.is_empty());
            let location = w
                .filter(|w| {
                    matches!(
                        w.status,
                        WriteStatus::Created | WriteStatus::Updated | WriteStatus::Existing
                    )
                })
                .map(|w| format!("{}/{}/_history/{}", w.res_type, w.id, w.version));
            let full_url = w
                .filter(|w| w.status != WriteStatus::Deleted)
                .map(|w| format!("{base}/{}/{}", w.res_type, w.id));
            Entry {
                full_url,
                resource: body.as_deref(),
                response: Some(EntryResponse {
                    status: status_line(a.status),
                    location,
                    etag: w.map(|w| format!("W/\"{}\"", w.version)),
                    last_modified: w.map(|w| instant_string(w.last_updated)),
                    outcome: a.outcome.clone(),
                }),
                ..Default::default()
            }
        })
        .collect();
    write_bundle(
        kind.response_type(),
        Some(&uuid::Uuid::new_v4().to_string()),
        None,
        Some(&instant_string(now)),
        None,
        &[],
        &out,
    )
}
