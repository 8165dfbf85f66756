-- PostgreSQL's version of sqlite/migrations/0001_init.sql (same numbers, same tables).
-- Text that lists are ordered by is COLLATE "C": byte order, as in SQLite, whatever the
-- database's locale.
-- Accounts own everything; id is the ICE UserId.
CREATE TABLE accounts (
    id              BIGINT PRIMARY KEY,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    service_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    job_limit       INTEGER NOT NULL,
    create_ms       BIGINT NOT NULL
);

CREATE TABLE access_keys (
    id         TEXT COLLATE "C" PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    secret     TEXT NOT NULL,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    policy     TEXT NOT NULL, -- JSON array of action patterns
    create_ms  BIGINT NOT NULL
);

CREATE TABLE nonces (
    key_id     TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX nonces_expiry ON nonces(expires_ms);

CREATE TABLE templates (
    id               TEXT COLLATE "C" PRIMARY KEY,
    account_id       BIGINT NOT NULL REFERENCES accounts(id),
    name             TEXT NOT NULL,
    type             TEXT NOT NULL,
    time_interval    INTEGER NOT NULL,
    overwrite_format TEXT NOT NULL,
    sequence_format  TEXT NOT NULL,
    create_ms        BIGINT NOT NULL,
    modified_ms      BIGINT NOT NULL
);
CREATE INDEX templates_account ON templates(account_id, create_ms);

CREATE TABLE jobs (
    id               TEXT COLLATE "C" PRIMARY KEY,
    account_id       BIGINT NOT NULL REFERENCES accounts(id),
    name             TEXT NOT NULL,
    template_id      TEXT NOT NULL,
    template_name    TEXT NOT NULL,
    time_interval    INTEGER NOT NULL,
    overwrite_format TEXT NOT NULL,
    sequence_format  TEXT NOT NULL,
    status           TEXT NOT NULL,
    input_type       TEXT NOT NULL,
    input_url        TEXT NOT NULL,
    output_type      TEXT NOT NULL,
    output_endpoint  TEXT NOT NULL,
    output_bucket    TEXT NOT NULL,
    callback_url     TEXT NOT NULL,
    create_ms        BIGINT NOT NULL,
    modified_ms      BIGINT NOT NULL,
    generation       BIGINT NOT NULL DEFAULT 0,
    last_sequence    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_account ON jobs(account_id, create_ms);
CREATE INDEX jobs_status ON jobs(status);

CREATE TABLE files (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id BIGINT NOT NULL,
    job_id     TEXT NOT NULL REFERENCES jobs(id),
    endpoint   TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    object     TEXT COLLATE "C" NOT NULL,
    create_ms  BIGINT NOT NULL,
    is_overlay BOOLEAN NOT NULL
);
CREATE INDEX files_job_time ON files(job_id, create_ms, object);
-- One overwrite record per job; it moves forward with every capture.
CREATE UNIQUE INDEX files_overlay ON files(job_id) WHERE is_overlay;
