//! SQL of subscriptions: the delivery state kept with each Subscription resource, its
//! filters, the outbox of events, and the workers' claims.

use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::connection::AnyConnection;
use super::schema::{subscription_events, subscription_filters, subscriptions};

/// The statuses.
pub const REQUESTED: &str = "requested";
pub const ACTIVE: &str = "active";
pub const ERROR: &str = "error";
pub const OFF: &str = "off";

/// `next_attempt` of a subscription with nothing to do.
pub const NEVER: i64 = i64::MAX;

/// Where and how notifications of a subscription are sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Channel {
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    /// empty, id-only or full-resource
    pub content: String,
    pub heartbeat_secs: Option<u32>,
    pub timeout_secs: u32,
    pub max_count: u32,
}

/// Who subscribed: its notifications carry only what its token could read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subscriber {
    pub client: String,
    pub scope: String,
    pub patient: Option<String>,
    pub admin: bool,
    /// The person's sign-in of its token, if any: its notifications stop when it is
    /// revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl SubscriptionRow {
    pub fn channel(&self) -> Option<Channel> {
        serde_json::from_str(&self.channel).ok()
    }

    pub fn subscriber(&self) -> Option<Subscriber> {
        serde_json::from_str(&self.subscriber).ok()
    }
}

/// A subscription's row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = subscriptions)]
#[allow(
    dead_code,
    reason = "the row is the whole table row; the server reads some columns only"
)]
pub struct SubscriptionRow {
    pub tenant: String,
    pub id: String,
    pub topic: String,
    pub status: String,
    /// JSON of a [`Channel`].
    pub channel: String,
    /// JSON of a [`Subscriber`].
    pub subscriber: String,
    pub filters: i32,
    pub events: i64,
    pub delivered: i64,
    pub failures: i32,
    pub last_error: Option<String>,
    pub next_attempt: i64,
    pub last_sent: Option<i64>,
    pub owner: Option<String>,
    pub lease_until: Option<i64>,
}

/// What a client's write of a Subscription sets.
pub struct Setup<'a> {
    pub tenant: &'a str,
    pub id: &'a str,
    pub topic: &'a str,
    pub status: &'a str,
    pub channel: &'a Channel,
    pub subscriber: &'a Subscriber,
    pub filters: &'a [(String, String)],
    /// When a worker should act (now for a handshake, never when off).
    pub next_attempt: i64,
}

/// The row of a subscription.
pub fn get(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> QueryResult<Option<SubscriptionRow>> {
    subscriptions::table
        .filter(subscriptions::tenant.eq(tenant))
        .filter(subscriptions::id.eq(id))
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()
}

/// Creates or resets the row of a subscription a client wrote; its event count and
/// delivery position are kept across a client's changes.
pub fn set_up(conn: &mut AnyConnection, s: &Setup<'_>) -> QueryResult<()> {
    let existing = get(conn, s.tenant, s.id)?;
    let (events, delivered) = existing
        .as_ref()
        .map_or((0, 0), |r| (r.events, r.delivered));
    remove(conn, s.tenant, s.id, false)?;
    on_backend!(conn, c => diesel::insert_into(subscriptions::table)
        .values((
            subscriptions::tenant.eq(s.tenant),
            subscriptions::id.eq(s.id),
            subscriptions::topic.eq(s.topic),
            subscriptions::status.eq(s.status),
            subscriptions::channel.eq(to_json(s.channel)),
            subscriptions::subscriber.eq(to_json(s.subscriber)),
            subscriptions::filters.eq(s.filters.len() as i32),
            subscriptions::events.eq(events),
            subscriptions::delivered.eq(delivered),
            subscriptions::failures.eq(0),
            subscriptions::next_attempt.eq(s.next_attempt),
        ))
        .execute(c))?;
    for (param, value) in s.filters {
        on_backend!(conn, c => diesel::insert_into(subscription_filters::table)
            .values((
                subscription_filters::tenant.eq(s.tenant),
                subscription_filters::topic.eq(s.topic),
                subscription_filters::param.eq(param),
                subscription_filters::value.eq(value),
                subscription_filters::subscription.eq(s.id),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// Removes a subscription's row and filters (and, `events`, its events).
pub fn remove(conn: &mut AnyConnection, tenant: &str, id: &str, events: bool) -> QueryResult<()> {
    on_backend!(conn, c => diesel::delete(
        subscription_filters::table
            .filter(subscription_filters::tenant.eq(tenant))
            .filter(subscription_filters::subscription.eq(id)),
    )
    .execute(c))?;
    on_backend!(conn, c => diesel::delete(
        subscriptions::table
            .filter(subscriptions::tenant.eq(tenant))
            .filter(subscriptions::id.eq(id)),
    )
    .execute(c))?;
    if events {
        on_backend!(conn, c => diesel::delete(
            subscription_events::table
                .filter(subscription_events::tenant.eq(tenant))
                .filter(subscription_events::subscription.eq(id)),
        )
        .execute(c))?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

/// A SQL text with `?` placeholders, written for the backend at hand.
fn placeholders(conn: &AnyConnection, sql: &str) -> String {
    if !matches!(conn, AnyConnection::Postgresql(_)) {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Whether the clinic has any subscription to `topic` (one cached lookup: the common
/// case of none costs a write almost nothing).
pub fn any_of_topic(conn: &mut AnyConnection, tenant: &str, topic: &str) -> QueryResult<bool> {
    let found: Option<String> = on_backend!(conn, c => subscriptions::table
        .filter(subscriptions::tenant.eq(tenant))
        .filter(subscriptions::topic.eq(topic))
        .select(subscriptions::id)
        .first(c)
        .optional())?;
    Ok(found.is_some())
}

/// The subscriptions (not off) of `topic` whose every filter matches one of `values`
/// (the focus's `(name, value)` pairs), and those without filters.
pub fn matching(
    conn: &mut AnyConnection,
    tenant: &str,
    topic: &str,
    values: &[(&str, String)],
) -> QueryResult<Vec<String>> {
    let mut sql = String::from(
        "SELECT s.id AS id FROM subscriptions s WHERE s.tenant = ? AND s.topic = ? \
         AND s.filters = 0 AND s.status <> 'off'",
    );
    if !values.is_empty() {
        sql.push_str(
            " UNION SELECT f.subscription AS id FROM subscription_filters f \
             JOIN subscriptions s ON s.tenant = f.tenant AND s.id = f.subscription \
             WHERE f.tenant = ? AND f.topic = ? AND s.status <> 'off' AND (",
        );
        for i in 0..values.len() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str("(f.param = ? AND f.value = ?)");
        }
        sql.push_str(") GROUP BY f.subscription, s.filters HAVING COUNT(*) = s.filters");
    }
    let sql = placeholders(conn, &sql);
    let rows: Vec<IdRow> = on_backend!(conn, c => {
        let mut q = diesel::sql_query(sql).into_boxed();
        q = q.bind::<Text, _>(tenant.to_string()).bind::<Text, _>(topic.to_string());
        if !values.is_empty() {
            q = q.bind::<Text, _>(tenant.to_string()).bind::<Text, _>(topic.to_string());
            for (name, value) in values {
                q = q.bind::<Text, _>(name.to_string()).bind::<Text, _>(value.clone());
            }
        }
        q.load(c)
    })?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    events: i64,
}

/// One event of a subscription, numbered after its last.
pub struct NewEvent<'a> {
    pub tenant: &'a str,
    pub subscription: &'a str,
    pub res_type: &'a str,
    pub res_id: &'a str,
    pub version: i64,
    pub occurred: i64,
}

/// Appends an event to a subscription's outbox, in the caller's transaction, and makes
/// the subscription due now. Returns its number.
pub fn append(conn: &mut AnyConnection, e: &NewEvent<'_>) -> QueryResult<i64> {
    let sql = placeholders(
        conn,
        "UPDATE subscriptions SET events = events + 1, \
         next_attempt = CASE WHEN next_attempt > ? THEN ? ELSE next_attempt END \
         WHERE tenant = ? AND id = ? RETURNING events",
    );
    let rows: Vec<Count> = on_backend!(conn, c => diesel::sql_query(sql)
        .bind::<BigInt, _>(e.occurred)
        .bind::<BigInt, _>(e.occurred)
        .bind::<Text, _>(e.tenant)
        .bind::<Text, _>(e.subscription)
        .load(c))?;
    let Some(number) = rows.first().map(|r| r.events) else {
        return Ok(0);
    };
    on_backend!(conn, c => diesel::insert_into(subscription_events::table)
        .values((
            subscription_events::tenant.eq(e.tenant),
            subscription_events::subscription.eq(e.subscription),
            subscription_events::number.eq(number),
            subscription_events::res_type.eq(e.res_type),
            subscription_events::res_id.eq(e.res_id),
            subscription_events::version.eq(e.version),
            subscription_events::occurred.eq(e.occurred),
        ))
        .execute(c))?;
    Ok(number)
}

/// A stored event.
#[derive(Debug, Clone, Queryable)]
pub struct EventRow {
    pub number: i64,
    pub res_type: String,
    pub res_id: String,
    pub version: i64,
    pub occurred: i64,
}

/// The events of a subscription numbered from `from` to `to` (inclusive), in order,
/// `limit` at most.
pub fn events(
    conn: &mut AnyConnection,
    tenant: &str,
    subscription: &str,
    from: i64,
    to: i64,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    subscription_events::table
        .filter(subscription_events::tenant.eq(tenant))
        .filter(subscription_events::subscription.eq(subscription))
        .filter(subscription_events::number.ge(from))
        .filter(subscription_events::number.le(to))
        .order(subscription_events::number.asc())
        .limit(limit)
        .select((
            subscription_events::number,
            subscription_events::res_type,
            subscription_events::res_id,
            subscription_events::version,
            subscription_events::occurred,
        ))
        .load(conn)
}

/// Whether any subscription is due (a read: idle workers look often, and only claim,
/// which is a write, when there is work).
pub fn any_due(conn: &mut AnyConnection, now: i64) -> QueryResult<bool> {
    let found: Option<String> = on_backend!(conn, c => subscriptions::table
        .filter(subscriptions::next_attempt.le(now))
        .select(subscriptions::id)
        .first(c)
        .optional())?;
    Ok(found.is_some())
}

/// Claims up to `limit` subscriptions that are due, across clinics (a lease until
/// `lease_until`): one conditional update each, so two workers never deliver the same
/// subscription at once and its notifications stay in order.
pub fn claim_due(
    conn: &mut AnyConnection,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> QueryResult<Vec<SubscriptionRow>> {
    let free = || {
        subscriptions::lease_until
            .is_null()
            .or(subscriptions::lease_until.lt(now))
    };
    let due: Vec<(String, String)> = subscriptions::table
        .filter(subscriptions::next_attempt.le(now))
        .filter(free())
        .order(subscriptions::next_attempt.asc())
        .limit(limit)
        .select((subscriptions::tenant, subscriptions::id))
        .load(conn)?;
    let mut out = Vec::new();
    for (tenant, id) in due {
        let won = on_backend!(conn, c => diesel::update(
            subscriptions::table
                .filter(subscriptions::tenant.eq(&tenant))
                .filter(subscriptions::id.eq(&id))
                .filter(subscriptions::next_attempt.le(now))
                .filter(free()),
        )
        .set((
            subscriptions::owner.eq(owner),
            subscriptions::lease_until.eq(lease_until),
        ))
        .execute(c))?;
        if won == 1
            && let Some(row) = get(conn, &tenant, &id)?
        {
            out.push(row);
        }
    }
    Ok(out)
}

/// A delivery that reached the endpoint: the position moves to `delivered`, the
/// failures are forgotten, and the subscription is due again now when more events came
/// meanwhile, else at `idle_next` (its next heartbeat, or never).
pub fn delivered(
    conn: &mut AnyConnection,
    row: &SubscriptionRow,
    owner: &str,
    delivered: i64,
    status: &str,
    now: i64,
    idle_next: i64,
) -> QueryResult<bool> {
    let sql = placeholders(
        conn,
        "UPDATE subscriptions SET delivered = ?, failures = 0, last_error = NULL, status = ?, \
         last_sent = ?, next_attempt = CASE WHEN events > ? THEN ? ELSE ? END, \
         owner = NULL, lease_until = NULL WHERE tenant = ? AND id = ? AND owner = ?",
    );
    let n = on_backend!(conn, c => diesel::sql_query(sql)
        .bind::<BigInt, _>(delivered)
        .bind::<Text, _>(status)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(delivered)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(idle_next)
        .bind::<Text, _>(&row.tenant)
        .bind::<Text, _>(&row.id)
        .bind::<Text, _>(owner)
        .execute(c))?;
    Ok(n == 1)
}

/// A delivery that failed: one more failure, retried at `retry_at`, with the status
/// the caller decided (`error` after too many failures).
pub fn failed(
    conn: &mut AnyConnection,
    row: &SubscriptionRow,
    owner: &str,
    status: &str,
    error: &str,
    retry_at: i64,
) -> QueryResult<bool> {
    let n = on_backend!(conn, c => diesel::update(
        subscriptions::table
            .filter(subscriptions::tenant.eq(&row.tenant))
            .filter(subscriptions::id.eq(&row.id))
            .filter(subscriptions::owner.eq(owner)),
    )
    .set((
        subscriptions::failures.eq(subscriptions::failures + 1),
        subscriptions::last_error.eq(error),
        subscriptions::status.eq(status),
        subscriptions::next_attempt.eq(retry_at),
        subscriptions::owner.eq(None::<String>),
        subscriptions::lease_until.eq(None::<i64>),
    ))
    .execute(c))?;
    Ok(n == 1)
}

/// Releases a claim without a delivery (nothing was due after all): due again now when
/// events came meanwhile, else at `idle_next`.
pub fn release(
    conn: &mut AnyConnection,
    row: &SubscriptionRow,
    owner: &str,
    now: i64,
    idle_next: i64,
) -> QueryResult<()> {
    let sql = placeholders(
        conn,
        "UPDATE subscriptions SET next_attempt = CASE WHEN events > delivered THEN ? ELSE ? END, \
         owner = NULL, lease_until = NULL WHERE tenant = ? AND id = ? AND owner = ?",
    );
    on_backend!(conn, c => diesel::sql_query(sql)
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(idle_next)
        .bind::<Text, _>(&row.tenant)
        .bind::<Text, _>(&row.id)
        .bind::<Text, _>(owner)
        .execute(c))?;
    Ok(())
}
