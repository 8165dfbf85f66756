package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// RecordCapture implements store.Store. The job row is read with a share lock, so a
// concurrent stop, restart or claim either waits for the capture or makes it fail.
func (s *DB) RecordCapture(ctx context.Context, c store.Capture) error {
	for _, f := range c.Files {
		if f.JobID != c.JobID {
			return fmt.Errorf("record for job %s in a capture of job %s", f.JobID, c.JobID)
		}
	}
	err := s.tx(ctx, func(tx conn) error {
		var account int64
		check := `SELECT account_id FROM jobs WHERE id = ? AND status = ? AND generation = ?`
		args := []any{c.JobID, snapshot.StatusStarted, c.Generation}
		if c.Holder != "" {
			// The fence: only the current lease holder, with the token of its claim, may write.
			check += ` AND lease_holder = ? AND lease_token = ?`
			args = append(args, c.Holder, c.Token)
		}
		err := tx.QueryRow(ctx, check+s.d.ForShare, args...).Scan(&account)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrConflict
		}
		if err != nil {
			return err
		}
		now := ms(time.Now())
		for _, cb := range c.Callbacks {
			if _, err := tx.Exec(ctx, `INSERT INTO outbox (account_id, job_id, url, body, next_attempt_ms, create_ms) VALUES (?, ?, ?, ?, ?, ?)`,
				account, c.JobID, cb.URL, cb.Body, now, now); err != nil {
				return err
			}
		}
		for _, f := range c.Files {
			if f.IsOverlay {
				// The overwrite record only moves forward in time (a late writer never rewinds it).
				_, err := tx.Exec(ctx, `INSERT INTO files (account_id, job_id, endpoint, bucket, object, create_ms, is_overlay)
					VALUES (?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT `+s.d.OverlayConflict+` DO UPDATE SET
						object = excluded.object, endpoint = excluded.endpoint, bucket = excluded.bucket, create_ms = excluded.create_ms
					WHERE excluded.create_ms >= files.create_ms`,
					f.AccountID, f.JobID, f.Endpoint, f.Bucket, f.Object, ms(f.CreateTime), true)
				if err != nil {
					return err
				}
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO files (account_id, job_id, endpoint, bucket, object, create_ms, is_overlay) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				f.AccountID, f.JobID, f.Endpoint, f.Bucket, f.Object, ms(f.CreateTime), false); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap("record capture", err)
}

// ListFiles implements store.Store.
func (s *DB) ListFiles(ctx context.Context, q store.FileQuery) ([]snapshot.File, error) {
	order := "ASC"
	if q.Desc {
		order = "DESC"
	}
	rows, err := s.db.Query(ctx, `SELECT endpoint, bucket, object, create_ms, is_overlay FROM files
		WHERE account_id = ? AND job_id = ? AND create_ms BETWEEN ? AND ?
		ORDER BY create_ms `+order+`, is_overlay `+order+`, object `+order+`, id `+order+` LIMIT ?`,
		q.AccountID, q.JobID, ms(q.Start), ms(q.End), q.Limit)
	if err != nil {
		return nil, s.wrap("list files", err)
	}
	defer rows.Close()
	var out []snapshot.File
	for rows.Next() {
		f := snapshot.File{AccountID: q.AccountID, JobID: q.JobID}
		var created int64
		if err := rows.Scan(&f.Endpoint, &f.Bucket, &f.Object, &created, &f.IsOverlay); err != nil {
			return nil, s.wrap("list files", err)
		}
		f.CreateTime = fromMs(created)
		out = append(out, f)
	}
	return out, s.wrap("list files", rows.Err())
}

// DeleteFiles implements store.Store.
func (s *DB) DeleteFiles(ctx context.Context, accountID int64, jobID string, at []time.Time) ([]snapshot.File, bool, error) {
	var deleted []snapshot.File
	overlay := false
	err := s.tx(ctx, func(c conn) error {
		deleted, overlay = nil, false
		for _, t := range at {
			rows, err := c.Query(ctx, `DELETE FROM files WHERE account_id = ? AND job_id = ? AND create_ms = ? AND is_overlay = ?
				RETURNING endpoint, bucket, object, create_ms`, accountID, jobID, ms(t), false)
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				f := snapshot.File{AccountID: accountID, JobID: jobID}
				var created int64
				if err := rows.Scan(&f.Endpoint, &f.Bucket, &f.Object, &created); err != nil {
					rows.Close()
					return err
				}
				f.CreateTime = fromMs(created)
				deleted = append(deleted, f)
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if n == 0 {
				var c2 int
				if err := c.QueryRow(ctx, `SELECT count(*) FROM files WHERE account_id = ? AND job_id = ? AND create_ms = ? AND is_overlay = ?`,
					accountID, jobID, ms(t), true).Scan(&c2); err != nil {
					return err
				}
				overlay = overlay || c2 > 0
			}
		}
		return nil
	})
	return deleted, overlay, s.wrap("delete files", err)
}
