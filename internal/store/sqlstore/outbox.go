package sqlstore

import (
	"context"
	"time"

	"github.com/livesnap/livesnap/internal/store"
)

// ClaimCallbacks implements store.Store. Rows another dispatcher is claiming are passed over,
// so dispatchers on many nodes never wait for each other.
func (s *DB) ClaimCallbacks(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]store.Callback, error) {
	var out []store.Callback
	err := s.tx(ctx, func(c conn) error {
		out = nil
		// The account's secret comes from subqueries rather than a join, so only outbox rows
		// are locked.
		rows, err := c.Query(ctx, `SELECT o.id, o.account_id, o.job_id, o.url, o.body, o.attempts, o.create_ms,
				(SELECT a.callback_secret FROM accounts a WHERE a.id = o.account_id)
			FROM outbox o
			WHERE o.done_ms IS NULL AND o.next_attempt_ms <= ? AND EXISTS (SELECT 1 FROM accounts a WHERE a.id = o.account_id)
			ORDER BY o.next_attempt_ms, o.id LIMIT ?`+s.d.SkipLocked, ms(now), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var cb store.Callback
			var created int64
			if err := rows.Scan(&cb.ID, &cb.AccountID, &cb.JobID, &cb.URL, &cb.Body, &cb.Attempts, &created, &cb.Secret); err != nil {
				rows.Close()
				return err
			}
			cb.CreatedAt = fromMs(created)
			out = append(out, cb)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, cb := range out {
			if _, err := c.Exec(ctx, `UPDATE outbox SET next_attempt_ms = ? WHERE id = ?`, ms(now.Add(lease)), cb.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, s.wrap("claim callbacks", err)
}

// CallbackDone implements store.Store.
func (s *DB) CallbackDone(ctx context.Context, id int64, at time.Time, dead bool, lastErr string) error {
	_, err := s.db.Exec(ctx, `UPDATE outbox SET done_ms = ?, dead = ?, attempts = attempts + 1, last_error = ? WHERE id = ?`,
		ms(at), dead, lastErr, id)
	return s.wrap("callback done", err)
}

// CallbackRetry implements store.Store.
func (s *DB) CallbackRetry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	_, err := s.db.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?, last_error = ? WHERE id = ?`,
		ms(next), lastErr, id)
	return s.wrap("callback retry", err)
}
