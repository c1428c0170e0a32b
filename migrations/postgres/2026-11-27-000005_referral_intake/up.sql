-- Business identifiers of patients, referrals (ServiceRequest) and Tasks are unique in a
-- tenant: a referral pushed twice, even at the same instant, cannot make a second set.
-- (A table of its own rather than a partial unique index on search_tokens: a partial
-- index makes SQLite prepare every search of that table again for each new value.)
CREATE TABLE unique_identifiers (
    tenant   TEXT NOT NULL,
    res_type TEXT NOT NULL,
    system   TEXT NOT NULL,
    value    TEXT NOT NULL,
    res_id   TEXT NOT NULL,
    PRIMARY KEY (tenant, res_type, system, value)
);
CREATE INDEX unique_identifiers_resource ON unique_identifiers (tenant, res_type, res_id);
INSERT INTO unique_identifiers (tenant, res_type, system, value, res_id)
    SELECT tenant, res_type, system, code, res_id FROM search_tokens
    WHERE param = 'identifier' AND res_type IN ('Patient', 'ServiceRequest', 'Task')
    ON CONFLICT DO NOTHING;

-- The answer of each POST sent with an Idempotency-Key header, written in the
-- transaction of the request: a retry with the same key gets the same answer.
CREATE TABLE idempotency_keys (
    tenant       TEXT    NOT NULL,
    idem_key     TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL, -- method, path and a digest of the body
    status       INTEGER NOT NULL, -- HTTP status of the answer
    res_type     TEXT,             -- the resource written (a create)
    res_id       TEXT,
    version      BIGINT,
    last_updated BIGINT,
    body         TEXT,             -- the resource, or the response Bundle
    created_at   BIGINT  NOT NULL, -- microseconds since the Unix epoch
    PRIMARY KEY (tenant, idem_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (tenant, created_at);
