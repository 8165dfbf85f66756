package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/livesnap/livesnap/internal/store"
)

// ClaimBucket implements store.Buckets. The primary key decides a race: of concurrent inserts
// one succeeds and the others do nothing (PostgreSQL makes them wait for its commit), so the
// owner read afterwards is the same for every claimer.
func (s *DB) ClaimBucket(ctx context.Context, accountID int64, b store.BucketKey) (int64, error) {
	b = b.Normal()
	owner, err := s.BucketOwner(ctx, b)
	if !errors.Is(err, store.ErrNotFound) {
		return owner, err // owned already (the usual case: no write), or an error
	}
	if _, err := s.db.Exec(ctx, `INSERT INTO bucket_owners (storage_type, endpoint, bucket, account_id, create_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (storage_type, endpoint, bucket) DO NOTHING`, b.StorageType, b.Endpoint, b.Bucket, accountID, ms(time.Now())); err != nil {
		return 0, s.wrap("claim bucket", err)
	}
	return s.BucketOwner(ctx, b)
}

// BucketOwner implements store.Buckets.
func (s *DB) BucketOwner(ctx context.Context, b store.BucketKey) (int64, error) {
	b = b.Normal()
	var owner int64
	err := s.db.QueryRow(ctx, `SELECT account_id FROM bucket_owners WHERE storage_type = ? AND endpoint = ? AND bucket = ?`,
		b.StorageType, b.Endpoint, b.Bucket).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, store.ErrNotFound
	}
	return owner, s.wrap("bucket owner", err)
}

// JobOutputs implements store.Buckets.
func (s *DB) JobOutputs(ctx context.Context) ([]store.JobOutput, error) {
	rows, err := s.db.Query(ctx, `SELECT account_id, output_type, output_endpoint, output_bucket, min(create_ms) AS first FROM jobs
		GROUP BY account_id, output_type, output_endpoint, output_bucket
		ORDER BY first, account_id, output_type, output_endpoint, output_bucket`)
	if err != nil {
		return nil, s.wrap("job outputs", err)
	}
	defer rows.Close()
	var out []store.JobOutput
	for rows.Next() {
		var o store.JobOutput
		var first int64
		if err := rows.Scan(&o.AccountID, &o.Output.StorageType, &o.Output.Endpoint, &o.Output.Bucket, &first); err != nil {
			return nil, s.wrap("job outputs", err)
		}
		o.First = fromMs(first)
		out = append(out, o)
	}
	return out, s.wrap("job outputs", rows.Err())
}
