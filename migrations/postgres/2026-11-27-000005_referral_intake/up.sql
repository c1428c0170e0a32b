-- Business identifiers of patients, referrals (ServiceRequest) and Tasks are unique in a
-- tenant: a referral pushed twice, even at the same instant, cannot make a second set.
CREATE UNIQUE INDEX search_tokens_unique_identifier
    ON search_tokens (tenant, res_type, system, code)
    WHERE param = 'identifier' AND res_type IN ('Patient', 'ServiceRequest', 'Task');

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
