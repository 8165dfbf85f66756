-- Accounts own everything; id is the ICE UserId.
CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY,
    disabled        INTEGER NOT NULL DEFAULT 0,
    service_enabled INTEGER NOT NULL DEFAULT 1,
    job_limit       INTEGER NOT NULL,
    create_ms       INTEGER NOT NULL
);

CREATE TABLE access_keys (
    id         TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    secret     TEXT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0,
    policy     TEXT NOT NULL, -- JSON array of action patterns
    create_ms  INTEGER NOT NULL
);

CREATE TABLE nonces (
    key_id     TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
);
CREATE INDEX nonces_expiry ON nonces(expires_ms);

CREATE TABLE templates (
    id               TEXT PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES accounts(id),
    name             TEXT NOT NULL,
    type             TEXT NOT NULL,
    time_interval    INTEGER NOT NULL,
    overwrite_format TEXT NOT NULL,
    sequence_format  TEXT NOT NULL,
    create_ms        INTEGER NOT NULL,
    modified_ms      INTEGER NOT NULL
);
CREATE INDEX templates_account ON templates(account_id, create_ms);

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES accounts(id),
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
    create_ms        INTEGER NOT NULL,
    modified_ms      INTEGER NOT NULL,
    generation       INTEGER NOT NULL DEFAULT 0,
    last_sequence    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_account ON jobs(account_id, create_ms);
CREATE INDEX jobs_status ON jobs(status);

CREATE TABLE files (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    job_id     TEXT NOT NULL REFERENCES jobs(id),
    endpoint   TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    object     TEXT NOT NULL,
    create_ms  INTEGER NOT NULL,
    is_overlay INTEGER NOT NULL
);
CREATE INDEX files_job_time ON files(job_id, create_ms, object);
-- One overwrite record per job; it moves forward with every capture.
CREATE UNIQUE INDEX files_overlay ON files(job_id) WHERE is_overlay = 1;
