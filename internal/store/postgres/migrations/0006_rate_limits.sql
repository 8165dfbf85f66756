-- Per-access-key token buckets, shared by every API node on the store: tokens as of
-- updated_ms; the refill since then is computed when a token is taken.
CREATE TABLE rate_buckets (
    key_id     TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_ms BIGINT NOT NULL
);
