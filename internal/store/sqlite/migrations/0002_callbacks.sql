-- Per-account secret that signs callbacks (X-Livesnap-Signature).
ALTER TABLE accounts ADD COLUMN callback_secret TEXT NOT NULL DEFAULT '';

-- The callback outbox: written in the same transaction as the file records it announces, so a
-- recorded snapshot always gets its callback, and delivered (at least once) by a dispatcher.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL,
    job_id          TEXT NOT NULL,
    url             TEXT NOT NULL,
    body            BLOB NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    create_ms       INTEGER NOT NULL,
    done_ms         INTEGER,           -- delivered, or given up (dead = 1)
    dead            INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox(next_attempt_ms) WHERE done_ms IS NULL;
