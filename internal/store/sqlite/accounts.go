package sqlite

import (
	"context"
	"encoding/json"

	"github.com/livesnap/livesnap/internal/auth"
)

// UpdateAccount implements store.Store.
func (s *DB) UpdateAccount(ctx context.Context, a auth.Account) error {
	res, err := s.db.ExecContext(ctx, `UPDATE accounts SET disabled = ?, service_enabled = ?, job_limit = ? WHERE id = ?`,
		a.Disabled, a.ServiceEnabled, a.JobLimit, a.ID)
	return affectedOne(res, err)
}

// ListAccessKeys implements store.Store.
func (s *DB) ListAccessKeys(ctx context.Context, accountID int64) ([]auth.AccessKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, account_id, secret, disabled, policy, create_ms FROM access_keys
		WHERE ? = 0 OR account_id = ? ORDER BY create_ms, id`, accountID, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auth.AccessKey
	for rows.Next() {
		var k auth.AccessKey
		var policy string
		var created int64
		if err := rows.Scan(&k.ID, &k.AccountID, &k.Secret, &k.Disabled, &policy, &created); err != nil {
			return nil, err
		}
		k.CreateTime = fromMs(created)
		if err := json.Unmarshal([]byte(policy), &k.Policy); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// SetAccessKeyDisabled implements store.Store.
func (s *DB) SetAccessKeyDisabled(ctx context.Context, id string, disabled bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE access_keys SET disabled = ? WHERE id = ?`, disabled, id)
	return affectedOne(res, err)
}

// DeleteAccessKey implements store.Store.
func (s *DB) DeleteAccessKey(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM access_keys WHERE id = ?`, id)
	return affectedOne(res, err)
}
