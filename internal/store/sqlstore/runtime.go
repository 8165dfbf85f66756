package sqlstore

import (
	"context"

	"github.com/livesnap/livesnap/internal/store"
)

// SetJobRuntime implements store.Store.
func (s *DB) SetJobRuntime(ctx context.Context, r store.JobRuntime) error {
	var last int64
	if !r.LastSnapshot.IsZero() {
		last = ms(r.LastSnapshot)
	}
	_, err := s.db.Exec(ctx, `INSERT INTO job_runtime (job_id, generation, run_state, last_snapshot_ms, last_error, snapshots, misses, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (job_id) DO UPDATE SET generation = excluded.generation, run_state = excluded.run_state,
			last_snapshot_ms = excluded.last_snapshot_ms, last_error = excluded.last_error, snapshots = excluded.snapshots,
			misses = excluded.misses, updated_ms = excluded.updated_ms
		WHERE excluded.generation >= job_runtime.generation`,
		r.JobID, r.Generation, r.RunState, last, r.LastError, r.Snapshots, r.Misses, ms(r.Updated))
	return s.wrap("set job runtime", err)
}

// GetJobRuntime implements store.Store.
func (s *DB) GetJobRuntime(ctx context.Context, jobID string) (store.JobRuntime, error) {
	r := store.JobRuntime{JobID: jobID}
	var last, updated int64
	err := s.db.QueryRow(ctx, `SELECT generation, run_state, last_snapshot_ms, last_error, snapshots, misses, updated_ms
		FROM job_runtime WHERE job_id = ?`, jobID).Scan(&r.Generation, &r.RunState, &last, &r.LastError, &r.Snapshots, &r.Misses, &updated)
	if last > 0 {
		r.LastSnapshot = fromMs(last)
	}
	r.Updated = fromMs(updated)
	return r, s.wrap("get job runtime", notFound(err))
}
