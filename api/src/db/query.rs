//! The SQL of a search: conditions on the index tables, sort keys and keyset paging,
//! compiled into one statement for either backend.
//!
//! Every condition is a subquery on an index table (`search_tokens` for token,
//! reference, uri and string parameters, `search_dates` for dates). The most selective
//! one (a reference, an identifier, a chain) drives the query as `res_id IN (...)`; the
//! others are `EXISTS` probes of the index's primary key for each candidate, so no large
//! candidate set is ever built. Pages follow a keyset cursor (the sort values and id of
//! the last row seen), which stays correct while other clients write.

use diesel::QueryResult;
use diesel::QueryableByName;
use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Nullable, Text};
use serde::{Deserialize, Serialize};

use super::connection::AnyConnection;

/// A match of a search: id and current body.
#[derive(Debug, Clone, diesel::Queryable, QueryableByName)]
pub struct MatchRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub res_id: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub version: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub last_updated: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub body: Option<String>,
}

/// The longest text the index tables hold of one value, in bytes.
pub const MAX_INDEXED_BYTES: usize = 512;

/// A value as the index tables hold it: its first [`MAX_INDEXED_BYTES`] bytes (cut at a
/// character boundary). PostgreSQL's B-tree refuses an index row of more than about
/// 2.7 kB, so a resource with a longer name or identifier could not be written; values
/// searched are cut the same way, so a long value still finds its resource.
pub fn indexed(value: &str) -> &str {
    if value.len() <= MAX_INDEXED_BYTES {
        return value;
    }
    let mut end = MAX_INDEXED_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// One condition of a search, already validated against the supported parameters.
#[derive(Debug, Clone)]
pub enum Condition {
    /// `_id` in any of these.
    Id(Vec<String>),
    /// A token, reference or uri parameter matching any of the values (or, negated, none
    /// of them). `selective`: a value names few resources (a reference, an identifier).
    Token {
        param: String,
        any_of: Vec<TokenMatch>,
        negate: bool,
        selective: bool,
    },
    /// A string parameter: normalized values by prefix or substring, or as written.
    Str {
        param: String,
        any_of: Vec<(StrMatch, String)>,
    },
    /// Whether the resource has any value of `param` (in the token or date index);
    /// `code_prefix` restricts the values (`Patient/` for `patient:missing`).
    Missing {
        index: Index,
        param: String,
        code_prefix: Option<String>,
        missing: bool,
    },
    /// A date parameter matching any of `(prefix, lo, hi)`: the search range `[lo, hi)`
    /// compared with the indexed ranges (R4 search.html#prefix).
    Date {
        param: String,
        any_of: Vec<(DateOp, i64, i64)>,
    },
    /// `_lastUpdated` matching any of `(prefix, lo, hi)`.
    LastUpdated(Vec<(DateOp, i64, i64)>),
    /// A chained parameter: `param` refers to a `target_type` resource that meets `inner`.
    Chain {
        param: String,
        target_type: String,
        inner: Vec<Condition>,
    },
    /// In the compartment of one of `patients`: one of the reference parameters `params`
    /// refers to one of them, or (`itself`, for the Patient type) the resource is one.
    Compartment {
        params: Vec<String>,
        itself: bool,
        patients: Patients,
    },
    /// Any of several conjunctions of conditions (the `_typeFilter`s of an export).
    AnyOf(Vec<Vec<Condition>>),
}

/// Whose compartments a [`Condition::Compartment`] opens: those of the listed Patient
/// ids, of the members of a Group, of both at once, or (neither) of every patient.
#[derive(Debug, Clone, Default)]
pub struct Patients {
    pub ids: Option<Vec<String>>,
    /// A Group's id: the Patients its `member` references name.
    pub members_of: Option<String>,
}

impl Patients {
    /// The compartments of these patients.
    pub fn ids(ids: Vec<String>) -> Patients {
        Patients {
            ids: Some(ids),
            members_of: None,
        }
    }
}

impl Condition {
    /// In the compartment of one of `patients` (the R4 Patient compartment:
    /// `search_params::compartment_params`, the Patient itself for a Patient).
    pub fn compartment(resource_type: &str, patients: Patients) -> Condition {
        let params = fhir_mapping::search_params::compartment_params(resource_type);
        let itself = resource_type == "Patient";
        match (params, &patients) {
            // one parameter, listed patients (a Task of a patient's app): the plain token
            // condition, whose query of fixed shape stays prepared (`store::search`)
            (
                [param],
                Patients {
                    ids: Some(ids),
                    members_of: None,
                },
            ) if !itself && !ids.is_empty() => Condition::Token {
                param: param.to_string(),
                any_of: ids
                    .iter()
                    .map(|id| TokenMatch {
                        system: None,
                        code: Some(format!("Patient/{id}")),
                    })
                    .collect(),
                negate: false,
                selective: true,
            },
            _ => Condition::Compartment {
                params: params.iter().map(|p| p.to_string()).collect(),
                itself,
                patients,
            },
        }
    }

    /// A token condition of one value (`system: None` matches any system).
    pub fn token(param: &str, system: Option<&str>, code: &str) -> Condition {
        Condition::Token {
            param: param.to_string(),
            any_of: vec![TokenMatch {
                system: system.map(str::to_string),
                code: Some(code.to_string()),
            }],
            negate: false,
            selective: true,
        }
    }
}

/// One value of a token search: `code`, `system|code`, `|code` (`system` empty) or
/// `system|` (`code: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMatch {
    pub system: Option<String>,
    pub code: Option<String>,
}

/// How a string value is compared (R4 search.html#string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrMatch {
    /// The normalized value starts with it (the default).
    Prefix,
    /// The value as written equals it (`:exact`).
    Exact,
    /// The normalized value contains it (`:contains`).
    Contains,
}

/// The index table of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    Tokens,
    Dates,
}

/// The prefixes of a date search: how a resource's range `[a, b)` compares with the
/// searched range `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOp {
    /// within it: `a >= lo` and `b <= hi`
    Eq,
    /// not within it
    Ne,
    /// goes on after it: `b > hi`
    Gt,
    /// starts before it: `a < lo`
    Lt,
    /// goes on from its start: `b > lo`
    Ge,
    /// starts before its end: `a < hi`
    Le,
    /// starts after it: `a >= hi`
    Sa,
    /// ends before it: `b <= lo`
    Eb,
    /// overlaps it (the range already widened by the approximation): `a < hi`, `b > lo`
    Ap,
}

/// What a sort key orders by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortBy {
    LastUpdated,
    /// The earliest start of a date parameter (ascending) or its latest end (descending).
    Date(String),
    /// The smallest (ascending) or largest (descending) code of a token or reference.
    Token(String),
    /// The smallest or largest normalized value of a string parameter.
    Str(String),
}

/// One `_sort` key. Resources without a value come last in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub by: SortBy,
    pub desc: bool,
}

/// The order of a search: its keys, then the id (ascending unless `-_id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sort {
    pub keys: Vec<SortKey>,
    pub id_desc: bool,
}

/// A sort value of a row, as carried in a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    Int(i64),
    Text(String),
}

/// A keyset cursor: the rows after (or, `backward`, before) the row with these sort
/// values and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    #[serde(rename = "b", default, skip_serializing_if = "std::ops::Not::not")]
    pub backward: bool,
    #[serde(rename = "k", default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Option<KeyValue>>,
    #[serde(rename = "i")]
    pub id: String,
}

/// A search over the current versions of one type.
#[derive(Debug, Clone)]
pub struct SearchQuery<'a> {
    pub tenant: &'a str,
    pub res_type: &'a str,
    pub conditions: &'a [Condition],
    pub sort: &'a Sort,
    pub page: Option<&'a Page>,
    pub limit: i64,
}

static NO_SORT: Sort = Sort {
    keys: Vec::new(),
    id_desc: false,
};

impl<'a> SearchQuery<'a> {
    /// The first `limit` matches in id order.
    pub fn new(
        tenant: &'a str,
        res_type: &'a str,
        conditions: &'a [Condition],
        limit: i64,
    ) -> Self {
        SearchQuery {
            tenant,
            res_type,
            conditions,
            sort: &NO_SORT,
            page: None,
            limit,
        }
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

/// SQL text with its bind values, placeholders in the backend's style.
struct Sql {
    text: String,
    binds: Vec<Bind>,
    pg: bool,
    aliases: usize,
    /// Emitting the body of an `EXISTS` probe on SQLite: value columns are written
    /// `+col`, so that SQLite looks the row up by the index table's primary key (the
    /// resource's id) rather than by a value index that a common value makes long.
    probe: bool,
}

impl Sql {
    fn new(conn: &AnyConnection) -> Sql {
        Sql {
            text: String::with_capacity(512),
            binds: Vec::new(),
            pg: matches!(conn, AnyConnection::Postgresql(_)),
            aliases: 0,
            probe: false,
        }
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn bind(&mut self, b: Bind) {
        self.binds.push(b);
        if self.pg {
            self.text.push('$');
            self.text.push_str(&self.binds.len().to_string());
        } else {
            self.text.push('?');
        }
    }

    fn str(&mut self, s: &str) {
        self.bind(Bind::Text(s.to_string()));
    }

    /// A value compared with an index table's `system` or `code`, cut as the index
    /// holds it (see [`indexed`]).
    fn value(&mut self, s: &str) {
        self.str(indexed(s));
    }

    fn int(&mut self, i: i64) {
        self.bind(Bind::Int(i));
    }

    /// A value column of an index table alias, as the current mode wants it.
    fn col(&self, a: &str, name: &str) -> String {
        if self.probe {
            format!("+{a}.{name}")
        } else {
            format!("{a}.{name}")
        }
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("x{}", self.aliases)
    }

    /// `WHERE` conditions on the resources of alias `o` (type `o_type`), each after
    /// an ` AND `.
    fn conditions(&mut self, conds: &[Condition], o: &str, o_type: &str, tenant: &str) {
        let driver = conds
            .iter()
            .enumerate()
            .filter_map(|(i, c)| driver_rank(c).map(|r| (r, i)))
            .min()
            .map(|(_, i)| i);
        for (i, c) in conds.iter().enumerate() {
            self.push(" AND ");
            self.condition(c, o, o_type, tenant, driver == Some(i));
        }
    }

    fn condition(&mut self, c: &Condition, o: &str, o_type: &str, tenant: &str, driver: bool) {
        match c {
            Condition::Id(ids) => {
                self.push(&format!("{o}.res_id IN ("));
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.str(id);
                }
                self.push(")");
            }
            Condition::LastUpdated(any_of) => {
                let lu = format!("{o}.last_updated");
                self.any(any_of, |s, &(op, lo, hi)| {
                    let (ge, lt) = (format!("{lu} >= "), format!("{lu} < "));
                    match op {
                        DateOp::Eq | DateOp::Ap => {
                            s.push(&format!("({ge}"));
                            s.int(lo);
                            s.push(&format!(" AND {lt}"));
                            s.int(hi);
                            s.push(")");
                        }
                        DateOp::Ne => {
                            s.push(&format!("({lt}"));
                            s.int(lo);
                            s.push(&format!(" OR {ge}"));
                            s.int(hi);
                            s.push(")");
                        }
                        DateOp::Ge => {
                            s.push(&ge);
                            s.int(lo);
                        }
                        DateOp::Gt | DateOp::Sa => {
                            s.push(&ge);
                            s.int(hi);
                        }
                        DateOp::Lt | DateOp::Eb => {
                            s.push(&lt);
                            s.int(lo);
                        }
                        DateOp::Le => {
                            s.push(&lt);
                            s.int(hi);
                        }
                    }
                });
            }
            Condition::Token {
                param,
                any_of,
                negate,
                ..
            } => self.index_match(
                "search_tokens",
                o,
                o_type,
                tenant,
                driver,
                *negate,
                |s, a| {
                    s.param(a, param);
                    s.push(" AND ");
                    let codes: Option<Vec<&String>> = any_of
                        .iter()
                        .map(|m| m.code.as_ref().filter(|_| m.system.is_none()))
                        .collect();
                    if let Some(codes) = codes.filter(|c| c.len() > 1) {
                        // codes of any system: one IN list (not a chain of ORs, whose
                        // depth SQLite limits; an export names up to 1,000 patients)
                        s.push(&format!("{} IN (", s.col(a, "code")));
                        for (i, code) in codes.into_iter().enumerate() {
                            if i > 0 {
                                s.push(", ");
                            }
                            s.value(code);
                        }
                        s.push(")");
                        return;
                    }
                    s.any(any_of, |s, m| match (&m.system, &m.code) {
                        (Some(system), Some(code)) => {
                            s.push(&format!("({} = ", s.col(a, "system")));
                            s.value(system);
                            s.push(&format!(" AND {} = ", s.col(a, "code")));
                            s.value(code);
                            s.push(")");
                        }
                        (None, Some(code)) => {
                            s.push(&format!("{} = ", s.col(a, "code")));
                            s.value(code);
                        }
                        (Some(system), None) => {
                            s.push(&format!("{} = ", s.col(a, "system")));
                            s.value(system);
                        }
                        (None, None) => s.push("1 = 1"),
                    });
                },
            ),
            Condition::Str { param, any_of } => {
                self.index_match("search_tokens", o, o_type, tenant, driver, false, |s, a| {
                    s.param(a, param);
                    s.push(" AND ");
                    s.any(any_of, |s, (how, value)| match how {
                        StrMatch::Exact => {
                            s.push(&format!("({} = ", s.col(a, "system")));
                            s.str(fhir_mapping::search_params::EXACT_SYSTEM);
                            s.push(&format!(" AND {} = ", s.col(a, "code")));
                            s.value(value);
                            s.push(")");
                        }
                        StrMatch::Prefix => {
                            let value = indexed(value);
                            s.push(&format!(
                                "({} = '' AND {} LIKE ",
                                s.col(a, "system"),
                                s.col(a, "code")
                            ));
                            s.str(&format!("{}%", like_escape(value)));
                            s.push(" ESCAPE '\\'");
                            if !s.pg {
                                // the same as a range of the index (binary collation)
                                s.push(&format!(" AND {} >= ", s.col(a, "code")));
                                s.str(value);
                                s.push(&format!(" AND {} < ", s.col(a, "code")));
                                s.str(&format!("{value}{}", char::MAX));
                            }
                            s.push(")");
                        }
                        StrMatch::Contains => {
                            let value = indexed(value);
                            s.push(&format!(
                                "({} = '' AND {} LIKE ",
                                s.col(a, "system"),
                                s.col(a, "code")
                            ));
                            s.str(&format!("%{}%", like_escape(value)));
                            s.push(" ESCAPE '\\')");
                        }
                    });
                });
            }
            Condition::Missing {
                index,
                param,
                code_prefix,
                missing,
            } => {
                let table = match index {
                    Index::Tokens => "search_tokens",
                    Index::Dates => "search_dates",
                };
                self.index_match(table, o, o_type, tenant, false, *missing, |s, a| {
                    s.param(a, param);
                    if let Some(p) = code_prefix {
                        s.push(&format!(" AND {} LIKE ", s.col(a, "code")));
                        s.str(&format!("{}%", like_escape(p)));
                        s.push(" ESCAPE '\\'");
                    }
                });
            }
            Condition::Date { param, any_of } => {
                self.index_match("search_dates", o, o_type, tenant, driver, false, |s, a| {
                    s.param(a, param);
                    s.push(" AND ");
                    s.any(any_of, |s, &(op, lo, hi)| {
                        let (la, hb) = (s.col(a, "lo"), s.col(a, "hi"));
                        let cmp = |s: &mut Sql, col: &str, op: &str, v: i64| {
                            s.push(&format!("{col} {op} "));
                            s.int(v);
                        };
                        match op {
                            DateOp::Eq | DateOp::Ne => {
                                if op == DateOp::Ne {
                                    s.push("NOT ");
                                }
                                s.push("(");
                                cmp(s, &la, ">=", lo);
                                s.push(" AND ");
                                cmp(s, &hb, "<=", hi);
                                s.push(")");
                            }
                            DateOp::Gt => cmp(s, &hb, ">", hi),
                            DateOp::Lt => cmp(s, &la, "<", lo),
                            DateOp::Ge => cmp(s, &hb, ">", lo),
                            DateOp::Le => cmp(s, &la, "<", hi),
                            DateOp::Sa => cmp(s, &la, ">=", hi),
                            DateOp::Eb => cmp(s, &hb, "<=", lo),
                            DateOp::Ap => {
                                s.push("(");
                                cmp(s, &la, "<", hi);
                                s.push(" AND ");
                                cmp(s, &hb, ">", lo);
                                s.push(")");
                            }
                        }
                    });
                });
            }
            Condition::Compartment {
                params,
                itself,
                patients,
            } => self.compartment(params, *itself, patients, o, o_type, tenant, driver),
            Condition::AnyOf(alternatives) => {
                self.any(alternatives, |s, conds| {
                    s.push("(1 = 1");
                    s.conditions(conds, o, o_type, tenant);
                    s.push(")");
                });
            }
            Condition::Chain {
                param,
                target_type,
                inner,
            } => {
                self.index_match("search_tokens", o, o_type, tenant, driver, false, |s, a| {
                    s.param(a, param);
                    let c = s.alias();
                    s.push(&format!(" AND {} IN (SELECT ", s.col(a, "code")));
                    s.str(&format!("{target_type}/"));
                    s.push(&format!(
                        " || {c}.res_id FROM resources {c} WHERE {c}.tenant = "
                    ));
                    s.str(tenant);
                    s.push(&format!(" AND {c}.res_type = "));
                    s.str(target_type);
                    s.push(&format!(" AND NOT {c}.deleted"));
                    s.live();
                    s.conditions(inner, &c, target_type, tenant);
                    s.push(")");
                });
            }
        }
    }

    /// `(itself OR refers)`: the resource `o` is one of the patients (`itself`), or one
    /// of its reference parameters `params` names one of them (an index probe, or the
    /// driving `IN` set).
    #[allow(clippy::too_many_arguments)]
    fn compartment(
        &mut self,
        params: &[String],
        itself: bool,
        patients: &Patients,
        o: &str,
        o_type: &str,
        tenant: &str,
        driver: bool,
    ) {
        let every = patients.ids.is_none() && patients.members_of.is_none();
        if itself && every {
            self.push("1 = 1");
            return;
        }
        if patients.ids.as_ref().is_some_and(Vec::is_empty) || (!itself && params.is_empty()) {
            self.push("1 = 0");
            return;
        }
        self.push("(");
        if itself {
            self.push("(1 = 1");
            if let Some(ids) = &patients.ids {
                self.push(&format!(" AND {o}.res_id IN ("));
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.str(id);
                }
                self.push(")");
            }
            if let Some(group) = &patients.members_of {
                self.push(&format!(" AND {o}.res_id IN ("));
                self.group_members("substr({g}.code, 9)", group, tenant);
                self.push(")");
            }
            self.push(")");
            if !params.is_empty() {
                self.push(" OR ");
            }
        }
        if !params.is_empty() {
            self.index_match("search_tokens", o, o_type, tenant, driver, false, |s, a| {
                s.push(&format!("{a}.param IN ("));
                for (i, p) in params.iter().enumerate() {
                    if i > 0 {
                        s.push(", ");
                    }
                    s.str(p);
                }
                let code = s.col(a, "code");
                s.push(&format!(") AND {} = ''", s.col(a, "system")));
                if every {
                    // exact on both backends, whatever the collation
                    s.push(&format!(" AND substr({code}, 1, 8) = 'Patient/'"));
                }
                if let Some(ids) = &patients.ids {
                    s.push(&format!(" AND {code} IN ("));
                    for (i, id) in ids.iter().enumerate() {
                        if i > 0 {
                            s.push(", ");
                        }
                        s.str(&format!("Patient/{id}"));
                    }
                    s.push(")");
                }
                if let Some(group) = &patients.members_of {
                    s.push(&format!(" AND {code} IN ("));
                    s.group_members("{g}.code", group, tenant);
                    s.push(")");
                }
            });
        }
        self.push(")");
    }

    /// `SELECT <what> FROM` the Patient references of the Group `group`'s members
    /// (`{g}` in `what` stands for the alias of the Group's index rows).
    fn group_members(&mut self, what: &str, group: &str, tenant: &str) {
        let g = self.alias();
        self.push(&format!(
            "SELECT {} FROM search_tokens {g} WHERE {g}.tenant = ",
            what.replace("{g}", &g)
        ));
        self.str(tenant);
        self.push(&format!(" AND {g}.res_type = 'Group' AND {g}.res_id = "));
        self.str(group);
        self.push(&format!(
            " AND {g}.param = 'member' AND {g}.system = '' AND {g}.code LIKE 'Patient/%'"
        ));
    }

    /// On SQLite, ` AND hep_live()`: the time limit of the job, checked for every row the
    /// enclosing query walks (`deadline.rs`); PostgreSQL has `statement_timeout`.
    fn live(&mut self) {
        if !self.pg {
            self.push(" AND hep_live()");
        }
    }

    fn param(&mut self, a: &str, param: &str) {
        self.push(&format!("{a}.param = "));
        self.str(param);
    }

    /// `(x OR y ...)` of the alternatives.
    fn any<T>(&mut self, items: &[T], mut one: impl FnMut(&mut Sql, &T)) {
        self.push("(");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(" OR ");
            }
            one(self, item);
        }
        self.push(")");
    }

    /// Rows of an index table of the resource `o` that meet `body`: as the driving
    /// `IN` set, or as an `EXISTS` probe (negated for `:not`, `:missing=true`).
    #[allow(clippy::too_many_arguments)]
    fn index_match(
        &mut self,
        table: &str,
        o: &str,
        o_type: &str,
        tenant: &str,
        driver: bool,
        negate: bool,
        body: impl FnOnce(&mut Sql, &str),
    ) {
        let a = self.alias();
        if driver && !negate {
            self.push(&format!(
                "{o}.res_id IN (SELECT {a}.res_id FROM {table} {a} WHERE {a}.tenant = "
            ));
            self.str(tenant);
            self.push(&format!(" AND {a}.res_type = "));
            self.str(o_type);
            self.live();
            self.push(" AND ");
        } else {
            if negate {
                self.push("NOT ");
            }
            self.push(&format!(
                "EXISTS (SELECT 1 FROM {table} {a} WHERE {a}.tenant = {o}.tenant \
                 AND {a}.res_type = {o}.res_type AND {a}.res_id = {o}.res_id AND "
            ));
        }
        let outer = self.probe;
        self.probe = (!driver || negate) && !self.pg;
        body(self, &a);
        self.probe = outer;
        self.push(")");
    }

    /// The value a sort key orders the resource `r` by.
    fn sort_value(&mut self, key: &SortKey) {
        let agg = |desc: bool, asc: &str, des: &str| if desc { des } else { asc }.to_string();
        let (expr, table, param, extra) = match &key.by {
            SortBy::LastUpdated => {
                self.push("r.last_updated");
                return;
            }
            SortBy::Date(p) => (
                agg(key.desc, "MIN(s.lo)", "MAX(s.hi)"),
                "search_dates",
                p,
                "",
            ),
            SortBy::Token(p) => (
                agg(key.desc, "MIN(s.code)", "MAX(s.code)"),
                "search_tokens",
                p,
                "",
            ),
            SortBy::Str(p) => (
                agg(key.desc, "MIN(s.code)", "MAX(s.code)"),
                "search_tokens",
                p,
                " AND s.system = ''",
            ),
        };
        self.push(&format!(
            "(SELECT {expr} FROM {table} s WHERE s.tenant = r.tenant AND s.res_type = r.res_type \
             AND s.res_id = r.res_id{extra} AND s.param = "
        ));
        self.str(param);
        self.push(")");
    }

    fn null_flag(&mut self, key: &SortKey) {
        self.push("(CASE WHEN ");
        self.sort_value(key);
        self.push(" IS NULL THEN 1 ELSE 0 END)");
    }

    fn order_by(&mut self, sort: &Sort, backward: bool) {
        let dir = |desc: bool| if desc != backward { " DESC" } else { " ASC" };
        self.push(" ORDER BY ");
        for key in &sort.keys {
            if key.by != SortBy::LastUpdated {
                self.null_flag(key);
                self.push(dir(false));
                self.push(", ");
            }
            self.sort_value(key);
            self.push(dir(key.desc));
            self.push(", ");
        }
        self.push("r.res_id");
        self.push(dir(sort.id_desc));
    }

    /// The rows after the cursor's row in the order (before it when going backward).
    fn keyset(&mut self, sort: &Sort, page: &Page, i: usize) {
        let cmp = |desc: bool| if desc != page.backward { " < " } else { " > " };
        let Some(key) = sort.keys.get(i) else {
            self.push("r.res_id");
            self.push(cmp(sort.id_desc));
            self.str(&page.id);
            return;
        };
        let value = page.keys.get(i).cloned().flatten();
        let nullable = key.by != SortBy::LastUpdated;
        if nullable {
            let flag = i64::from(value.is_none());
            self.push("(");
            self.null_flag(key);
            self.push(cmp(false));
            self.int(flag);
            self.push(" OR (");
            self.null_flag(key);
            self.push(" = ");
            self.int(flag);
            self.push(" AND ");
        }
        match value {
            Some(v) => {
                let bind = |s: &mut Sql| match &v {
                    KeyValue::Int(n) => s.int(*n),
                    KeyValue::Text(t) => s.str(t),
                };
                self.push("(");
                self.sort_value(key);
                self.push(cmp(key.desc));
                bind(self);
                self.push(" OR (");
                self.sort_value(key);
                self.push(" = ");
                bind(self);
                self.push(" AND ");
                self.keyset(sort, page, i + 1);
                self.push("))");
            }
            None => self.keyset(sort, page, i + 1),
        }
        if nullable {
            self.push("))");
        }
    }

    fn select_from(&mut self, q: &SearchQuery<'_>) {
        self.push(" FROM resources r WHERE r.tenant = ");
        self.str(q.tenant);
        self.push(" AND r.res_type = ");
        self.str(q.res_type);
        self.push(" AND NOT r.deleted");
        self.live();
        self.conditions(q.conditions, "r", q.res_type, q.tenant);
    }

    fn load<T>(self, conn: &mut AnyConnection) -> QueryResult<Vec<T>>
    where
        T: QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static,
    {
        let Sql { text, binds, .. } = self;
        on_backend!(conn, c => {
            let mut q = diesel::sql_query(text).into_boxed();
            for b in binds {
                q = match b {
                    Bind::Text(s) => q.bind::<Text, _>(s),
                    Bind::Int(i) => q.bind::<BigInt, _>(i),
                };
            }
            q.load::<T>(c)
        })
    }
}

/// How well a condition drives a query (smaller first), or `None` when it only filters.
fn driver_rank(c: &Condition) -> Option<u8> {
    match c {
        Condition::Token {
            negate: false,
            selective: true,
            ..
        } => Some(1),
        Condition::Compartment { patients, .. } => match patients {
            Patients { ids: Some(_), .. } => Some(1),
            Patients {
                members_of: Some(_),
                ..
            } => Some(0),
            _ => None,
        },
        Condition::Chain { .. } => Some(2),
        Condition::Str { any_of, .. }
            if any_of.iter().all(|(how, _)| *how != StrMatch::Contains) =>
        {
            Some(3)
        }
        _ => None,
    }
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One page of matches in the order of the search (for a backward page, the rows
/// before the cursor, still in the order of the search).
pub fn search(conn: &mut AnyConnection, q: &SearchQuery<'_>) -> QueryResult<Vec<MatchRow>> {
    let mut sql = Sql::new(conn);
    sql.push("SELECT r.res_id, r.version, r.last_updated, r.body");
    sql.select_from(q);
    let backward = q.page.is_some_and(|p| p.backward);
    if let Some(page) = q.page {
        sql.push(" AND ");
        sql.keyset(q.sort, page, 0);
    }
    sql.order_by(q.sort, backward);
    sql.push(" LIMIT ");
    sql.int(q.limit);
    let mut rows: Vec<MatchRow> = sql.load(conn)?;
    if backward {
        rows.reverse();
    }
    Ok(rows)
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The number of all matches.
pub fn count(conn: &mut AnyConnection, q: &SearchQuery<'_>) -> QueryResult<i64> {
    let mut sql = Sql::new(conn);
    sql.push("SELECT COUNT(*) AS n");
    sql.select_from(q);
    let rows: Vec<CountRow> = sql.load(conn)?;
    Ok(rows.first().map_or(0, |r| r.n))
}

#[derive(QueryableByName)]
struct IntValue {
    #[diesel(sql_type = Nullable<BigInt>)]
    v: Option<i64>,
}

#[derive(QueryableByName)]
struct TextValue {
    #[diesel(sql_type = Nullable<Text>)]
    v: Option<String>,
}

/// The cursor that continues a search after (or, `backward`, before) the row `id`.
pub fn page_at(
    conn: &mut AnyConnection,
    q: &SearchQuery<'_>,
    id: &str,
    backward: bool,
) -> QueryResult<Page> {
    let mut keys = Vec::with_capacity(q.sort.keys.len());
    for key in &q.sort.keys {
        let mut sql = Sql::new(conn);
        sql.push("SELECT ");
        sql.sort_value(key);
        sql.push(" AS v FROM resources r WHERE r.tenant = ");
        sql.str(q.tenant);
        sql.push(" AND r.res_type = ");
        sql.str(q.res_type);
        sql.push(" AND r.res_id = ");
        sql.str(id);
        let value = match key.by {
            SortBy::LastUpdated | SortBy::Date(_) => {
                let rows: Vec<IntValue> = sql.load(conn)?;
                rows.into_iter().next().and_then(|r| r.v).map(KeyValue::Int)
            }
            SortBy::Token(_) | SortBy::Str(_) => {
                let rows: Vec<TextValue> = sql.load(conn)?;
                rows.into_iter()
                    .next()
                    .and_then(|r| r.v)
                    .map(KeyValue::Text)
            }
        };
        keys.push(value);
    }
    Ok(Page {
        backward,
        keys,
        id: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_literally() {
        assert_eq!(like_escape("50%_a\\b"), "50\\%\\_a\\\\b");
    }

    use diesel::connection::SimpleConnection;

    /// A temporary SQLite file, removed when dropped.
    struct TempDb(std::path::PathBuf);

    impl Drop for TempDb {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = self.0.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// A fresh SQLite database with the migrations applied, and `n` Patients with a
    /// name each.
    fn patients(n: usize, limit: Option<std::time::Duration>) -> (AnyConnection, Deadline, TempDb) {
        let path = std::env::temp_dir().join(format!("query-{}.db", uuid::Uuid::now_v7()));
        let url = path.display().to_string();
        let manager = super::super::Manager {
            url,
            backend: super::super::Backend::Sqlite,
            limits: Default::default(),
            sqlite_max_mib: None,
        };
        let (mut conn, deadline) = manager.open_limited(limit).expect("connection");
        super::super::run_migrations(&mut conn).expect("migrations");
        conn.batch_execute(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO resources SELECT 't', 'Patient', printf('p%06d', i), 1, 0, 0, '{{}}' FROM n; \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO search_tokens SELECT 't', 'Patient', printf('p%06d', i), 'name', '', \
             printf('name%06d', i) FROM n;"
        ))
        .expect("rows");
        (conn, deadline, TempDb(path))
    }

    use super::super::deadline::{Deadline, is_timeout};

    #[test]
    fn a_thousand_references_are_one_in_list() {
        let (mut conn, _, _file) = patients(50, None);
        let cond = Condition::Token {
            param: "name".into(),
            any_of: (1..=1000)
                .map(|i| TokenMatch {
                    system: None,
                    code: Some(format!("name{i:06}")),
                })
                .collect(),
            negate: false,
            selective: true,
        };
        let conds = [cond];
        let rows = search(&mut conn, &SearchQuery::new("t", "Patient", &conds, 100));
        // as a chain of 1,000 ORs, SQLite refused it: "Expression tree is too large"
        assert_eq!(rows.map(|r| r.len()).ok(), Some(50));
    }

    #[test]
    fn a_search_past_its_time_limit_is_stopped_and_the_connection_stays_usable() {
        let (mut conn, deadline, _file) =
            patients(20_000, Some(std::time::Duration::from_millis(5)));
        let conds = [Condition::Str {
            param: "name".into(),
            any_of: (0..100)
                .map(|i| (StrMatch::Contains, format!("zz{i}")))
                .collect(),
        }];
        let q = SearchQuery::new("t", "Patient", &conds, 10);
        let stopped = {
            let _armed = deadline.arm();
            std::thread::sleep(std::time::Duration::from_millis(10));
            count(&mut conn, &q)
        };
        match stopped {
            Err(e) => assert!(is_timeout(&e), "{e}"),
            Ok(n) => panic!("not stopped: {n}"),
        }
        // unarmed, the same statement runs to its end on the same connection
        assert_eq!(count(&mut conn, &q).ok(), Some(0));
        let all = [Condition::Str {
            param: "name".into(),
            any_of: vec![(StrMatch::Prefix, "name0000".into())],
        }];
        let q = SearchQuery::new("t", "Patient", &all, 100);
        assert_eq!(search(&mut conn, &q).map(|r| r.len()).ok(), Some(99));
    }
}
