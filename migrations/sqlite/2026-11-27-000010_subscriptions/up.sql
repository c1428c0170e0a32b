-- Topic-based subscriptions (R4 Subscriptions Backport): the delivery state of each
-- Subscription resource, kept with it by the server.
CREATE TABLE subscriptions (
    tenant         TEXT    NOT NULL,
    id             TEXT    NOT NULL, -- the Subscription resource's id
    topic          TEXT    NOT NULL, -- the topic's code
    status         TEXT    NOT NULL, -- requested, active, error, off
    channel        TEXT    NOT NULL, -- JSON: endpoint, headers, content, heartbeat, timeout, max count
    subscriber     TEXT    NOT NULL, -- JSON: the client, its scopes and patient (what it may receive)
    filters        INTEGER NOT NULL, -- how many filter rows it has
    events         BIGINT  NOT NULL, -- events since the subscription started
    delivered      BIGINT  NOT NULL, -- the last event number delivered
    failures       INTEGER NOT NULL, -- failed deliveries in a row
    last_error     TEXT,
    next_attempt   BIGINT  NOT NULL, -- when a worker looks at it next (microseconds)
    last_sent      BIGINT,
    owner          TEXT,             -- the worker delivering it, until lease_until
    lease_until    BIGINT,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
-- the workers' scan for due deliveries across clinics
CREATE INDEX subscriptions_due ON subscriptions (next_attempt);
CREATE INDEX subscriptions_topic ON subscriptions (tenant, topic, filters);

-- The filters of a subscription (all must match), looked up by value at each write.
CREATE TABLE subscription_filters (
    tenant       TEXT NOT NULL,
    topic        TEXT NOT NULL,
    param        TEXT NOT NULL,
    value        TEXT NOT NULL,
    subscription TEXT NOT NULL,
    PRIMARY KEY (tenant, topic, param, value, subscription)
) WITHOUT ROWID;
CREATE INDEX subscription_filters_of ON subscription_filters (tenant, subscription);

-- The outbox: each event of each subscription, written in the transaction of the change
-- that caused it, numbered per subscription; kept for `$events`.
CREATE TABLE subscription_events (
    tenant       TEXT   NOT NULL,
    subscription TEXT   NOT NULL,
    number       BIGINT NOT NULL,
    res_type     TEXT   NOT NULL,
    res_id       TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    occurred     BIGINT NOT NULL,
    PRIMARY KEY (tenant, subscription, number)
) WITHOUT ROWID;
