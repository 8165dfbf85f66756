-- Job leases (store.Leases): which runner process (lease holder) runs a started job, until
-- when, and the fencing token RecordCapture checks. The token only ever grows: every claim
-- adds one, and dropping a lease keeps it.
ALTER TABLE jobs ADD COLUMN lease_holder TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN lease_expires_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_lease_holder ON jobs(lease_holder) WHERE lease_holder <> '';

-- Runner processes that hold (or may claim) leases, with their last heartbeat.
CREATE TABLE lease_holders (
    id           TEXT COLLATE "C" PRIMARY KEY,
    node         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);

-- One row that grows whenever a job's status or generation changes, so holders notice commands
-- by polling one number.
CREATE TABLE jobs_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO jobs_version (id, version) VALUES (1, 0);
