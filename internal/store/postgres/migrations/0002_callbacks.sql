-- Per-account secret that signs callbacks (X-Livesnap-Signature).
ALTER TABLE accounts ADD COLUMN callback_secret TEXT NOT NULL DEFAULT '';

-- The callback outbox: written in the same transaction as the file records it announces, so a
-- recorded snapshot always gets its callback, and delivered (at least once) by a dispatcher.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      BIGINT NOT NULL,
    job_id          TEXT NOT NULL,
    url             TEXT NOT NULL,
    body            BYTEA NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    create_ms       BIGINT NOT NULL,
    done_ms         BIGINT,            -- delivered, or given up (dead)
    dead            BOOLEAN NOT NULL DEFAULT FALSE,
    last_error      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox(next_attempt_ms) WHERE done_ms IS NULL;
