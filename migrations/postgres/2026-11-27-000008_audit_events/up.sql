-- The audit trail (served as AuditEvent resources): one row per interaction with the
-- clinic's data and per token issued or refused. Rows of a change are written in the
-- transaction of the change; reads, searches and refusals are written in batches right
-- after. Clients cannot change them.
CREATE TABLE audit_events (
    tenant    TEXT    NOT NULL,
    id        TEXT    NOT NULL, -- time-ordered (UUID v7: its first 48 bits are the millisecond)
    recorded  BIGINT  NOT NULL, -- microseconds since the Unix epoch
    action    TEXT    NOT NULL, -- C, R, U, D or E (R4 audit-event-action)
    subtype   TEXT    NOT NULL, -- the interaction (read, search-type, create, token, ...)
    outcome   TEXT    NOT NULL, -- 0 success, 4 minor failure (refused), 8 serious failure
    status    INTEGER NOT NULL, -- the HTTP status answered
    client    TEXT    NOT NULL, -- the token's client (subject), or what the request claimed
    address   TEXT,             -- the network address of the request
    res_type  TEXT,             -- what: the type, id and version acted on
    res_id    TEXT,
    version   BIGINT,
    patient   TEXT,             -- the patient whose data it is, when known
    query     TEXT,             -- a search's query string
    PRIMARY KEY (tenant, id)
);
-- (no index on `recorded`: the ids are time-ordered, a time range is a range of ids)
CREATE INDEX audit_events_patient ON audit_events (tenant, patient, id) WHERE patient IS NOT NULL;
