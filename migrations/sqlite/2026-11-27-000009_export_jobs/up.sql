-- Bulk Data export jobs ($export): kicked off by a client, run by whichever server
-- process claims them (a lease it renews while it works), kept until they expire.
CREATE TABLE export_jobs (
    tenant       TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    client       TEXT    NOT NULL, -- the client that kicked it off: the only one that sees it
    status       TEXT    NOT NULL, -- accepted, in-progress, completed, failed
    request      TEXT    NOT NULL, -- the kick-off request's URL
    spec         TEXT    NOT NULL, -- what to export (JSON: level, types, _since, filters, scopes)
    created_at   BIGINT  NOT NULL, -- microseconds since the Unix epoch
    owner        TEXT,             -- the process working on it
    lease_until  BIGINT,           -- another process may take it over after this
    attempts     INTEGER NOT NULL DEFAULT 0,
    progress     TEXT,             -- for X-Progress
    result       TEXT,             -- the manifest's parts (JSON) once completed
    error        TEXT,             -- why it failed
    finished_at  BIGINT,
    expires_at   BIGINT,           -- files and row removed after this
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
-- the workers' scan for work across clinics
CREATE INDEX export_jobs_open ON export_jobs (status, lease_until);
CREATE INDEX export_jobs_client ON export_jobs (tenant, client, status);
