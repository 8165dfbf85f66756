-- What a job's pipeline is doing now (extension fields of GetLiveSnapshotJob), written by
-- whichever runner holds the job, so any API node can answer.
CREATE TABLE job_runtime (
    job_id           TEXT PRIMARY KEY,
    generation       BIGINT NOT NULL,
    run_state        TEXT NOT NULL,
    last_snapshot_ms BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    snapshots        BIGINT NOT NULL DEFAULT 0,
    misses           BIGINT NOT NULL DEFAULT 0,
    updated_ms       BIGINT NOT NULL
);
