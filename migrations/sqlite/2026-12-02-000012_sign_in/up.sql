-- People's sign-in (SMART App Launch): apps registered with redirect URIs, the accounts
-- of patients and clinic staff, patients' invitations, and what a person authorised an
-- app to do (a grant) with its single-use codes and rotating refresh tokens. Every
-- secret (code, refresh token, launch) is stored as the SHA-256 of its value; passwords
-- as Argon2id strings.

-- backend: SMART Backend Services (private_key_jwt); public: an app without a secret
-- (PKCE only); confidential: an app with a client secret (client_secret_basic).
ALTER TABLE clients ADD COLUMN kind TEXT NOT NULL DEFAULT 'backend';
ALTER TABLE clients ADD COLUMN redirect_uris TEXT;  -- space separated
ALTER TABLE clients ADD COLUMN secret_hash TEXT;    -- SHA-256 of the client secret (32 random bytes)

CREATE TABLE users (
    tenant        TEXT   NOT NULL,
    user_id       TEXT   NOT NULL,
    username      TEXT,            -- lower case; NULL until a patient chooses one
    password_hash TEXT,            -- Argon2id; NULL until set
    role          TEXT   NOT NULL, -- patient, therapist or admin
    fhir_user     TEXT   NOT NULL, -- Patient/x or Practitioner/x
    setup_hash    TEXT,            -- SHA-256 of a staff member's one-time set-up code
    setup_expires BIGINT,          -- seconds since the Unix epoch
    tokens_after  BIGINT NOT NULL DEFAULT 0, -- grants made before (seconds) are void
    disabled_at   BIGINT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant, user_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX users_username ON users (tenant, username);
CREATE UNIQUE INDEX users_fhir_user ON users (tenant, fhir_user);
CREATE INDEX users_setup ON users (tenant, setup_hash);

CREATE TABLE invitations (
    tenant     TEXT   NOT NULL,
    code_hash  TEXT   NOT NULL,
    patient_id TEXT   NOT NULL,
    created_at BIGINT NOT NULL, -- seconds
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (tenant, code_hash)
) WITHOUT ROWID;
CREATE INDEX invitations_patient ON invitations (tenant, patient_id);

-- What a person (or the server for an EHR launch) authorised one app to do.
CREATE TABLE grants (
    tenant     TEXT   NOT NULL,
    grant_id   TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    user_id    TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    patient    TEXT,
    fhir_user  TEXT,
    created_at BIGINT NOT NULL, -- seconds
    expires_at BIGINT NOT NULL, -- the last refresh
    revoked_at BIGINT,
    PRIMARY KEY (tenant, grant_id)
) WITHOUT ROWID;
CREATE INDEX grants_user ON grants (tenant, user_id);

CREATE TABLE auth_codes (
    tenant         TEXT   NOT NULL,
    code_hash      TEXT   NOT NULL,
    grant_id       TEXT   NOT NULL,
    redirect_uri   TEXT   NOT NULL,
    code_challenge TEXT   NOT NULL,
    nonce          TEXT,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    PRIMARY KEY (tenant, code_hash)
) WITHOUT ROWID;

CREATE TABLE refresh_tokens (
    tenant     TEXT   NOT NULL,
    token_hash TEXT   NOT NULL,
    grant_id   TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (tenant, token_hash)
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_grant ON refresh_tokens (tenant, grant_id);

-- EHR launch contexts: single use, minutes long.
CREATE TABLE launches (
    tenant      TEXT   NOT NULL,
    launch_hash TEXT   NOT NULL,
    patient     TEXT   NOT NULL,
    encounter   TEXT,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (tenant, launch_hash)
) WITHOUT ROWID;
