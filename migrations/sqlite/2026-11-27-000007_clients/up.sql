-- Systems registered to get access tokens (SMART Backend Services): the clinic they act
-- for, the scopes they may be granted, and the public keys (a JWKS document, or the URL
-- of one) that check their signed client assertions. A client id is unique across
-- clinics: the token endpoint finds the clinic from it.
CREATE TABLE clients (
    tenant     TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    scope      TEXT   NOT NULL, -- the scopes it may be granted, space separated
    jwks       TEXT,            -- a JWKS document
    jwks_url   TEXT,            -- or where to fetch one
    created_at BIGINT NOT NULL, -- microseconds since the Unix epoch
    PRIMARY KEY (tenant, client_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX clients_id ON clients (client_id);

-- The ids (jti) of client assertions already used, until they expire: an assertion
-- sent twice is refused.
CREATE TABLE client_assertions (
    tenant     TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL, -- seconds since the Unix epoch
    PRIMARY KEY (tenant, client_id, jti)
) WITHOUT ROWID;
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);
