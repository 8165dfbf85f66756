package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/livesnap/livesnap/internal/store"
)

// ClaimCallbacks implements store.Store.
func (s *DB) ClaimCallbacks(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]store.Callback, error) {
	var out []store.Callback
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT o.id, o.account_id, o.job_id, o.url, o.body, o.attempts, o.create_ms, a.callback_secret
			FROM outbox o JOIN accounts a ON a.id = o.account_id
			WHERE o.done_ms IS NULL AND o.next_attempt_ms <= ? ORDER BY o.next_attempt_ms, o.id LIMIT ?`, ms(now), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c store.Callback
			var created int64
			if err := rows.Scan(&c.ID, &c.AccountID, &c.JobID, &c.URL, &c.Body, &c.Attempts, &created, &c.Secret); err != nil {
				rows.Close()
				return err
			}
			c.CreatedAt = fromMs(created)
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range out {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET next_attempt_ms = ? WHERE id = ?`, ms(now.Add(lease)), c.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// CallbackDone implements store.Store.
func (s *DB) CallbackDone(ctx context.Context, id int64, at time.Time, dead bool, lastErr string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET done_ms = ?, dead = ?, attempts = attempts + 1, last_error = ? WHERE id = ?`,
		ms(at), dead, lastErr, id)
	return err
}

// CallbackRetry implements store.Store.
func (s *DB) CallbackRetry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?, last_error = ? WHERE id = ?`,
		ms(next), lastErr, id)
	return err
}
