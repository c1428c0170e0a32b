-- Current version of every resource (deleted ones keep a row with deleted = 1).
CREATE TABLE resources (
    tenant       TEXT    NOT NULL,
    res_type     TEXT    NOT NULL,
    res_id       TEXT    NOT NULL,
    version      BIGINT  NOT NULL,
    last_updated BIGINT  NOT NULL, -- microseconds since the Unix epoch, UTC
    deleted      BOOLEAN NOT NULL,
    body         TEXT,             -- canonical JSON; NULL when deleted
    PRIMARY KEY (tenant, res_type, res_id)
) WITHOUT ROWID;
CREATE INDEX resources_last_updated ON resources (tenant, res_type, last_updated);

-- Every version of every resource; seq is the commit sequence used by history.
CREATE TABLE resource_versions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       TEXT    NOT NULL,
    res_type     TEXT    NOT NULL,
    res_id       TEXT    NOT NULL,
    version      BIGINT  NOT NULL,
    last_updated BIGINT  NOT NULL,
    method       TEXT    NOT NULL, -- POST, PUT or DELETE
    body         TEXT,
    UNIQUE (tenant, res_type, res_id, version)
);
CREATE INDEX resource_versions_tenant_seq ON resource_versions (tenant, seq);
CREATE INDEX resource_versions_type_seq ON resource_versions (tenant, res_type, seq);
CREATE INDEX resource_versions_time ON resource_versions (tenant, last_updated);

-- Token search values of current versions (identifier, ...).
CREATE TABLE search_tokens (
    tenant   TEXT NOT NULL,
    res_type TEXT NOT NULL,
    res_id   TEXT NOT NULL,
    param    TEXT NOT NULL,
    system   TEXT NOT NULL,
    code     TEXT NOT NULL,
    PRIMARY KEY (tenant, res_type, res_id, param, system, code)
) WITHOUT ROWID;
CREATE INDEX search_tokens_value ON search_tokens (tenant, res_type, param, code, system);

-- Claims that make conditional creates race-free: one row per (type, search criteria),
-- removed when the claiming resource changes (it may no longer match).
CREATE TABLE conditional_keys (
    tenant   TEXT NOT NULL,
    res_type TEXT NOT NULL,
    criteria TEXT NOT NULL,
    res_id   TEXT NOT NULL,
    PRIMARY KEY (tenant, res_type, criteria)
) WITHOUT ROWID;
CREATE INDEX conditional_keys_resource ON conditional_keys (tenant, res_type, res_id);
