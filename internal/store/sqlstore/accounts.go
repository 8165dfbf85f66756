package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
)

// CreateAccount implements store.Store.
func (s *DB) CreateAccount(ctx context.Context, a auth.Account) (auth.Account, error) {
	err := s.tx(ctx, func(c conn) error {
		var err error
		a, err = s.createAccount(ctx, c, a)
		return err
	})
	return a, s.wrap("create account", err)
}

// CreateFirstAccount implements store.Store.
func (s *DB) CreateFirstAccount(ctx context.Context, a auth.Account, k auth.AccessKey) (auth.Account, bool, error) {
	created := false
	err := s.tx(ctx, func(c conn) error {
		created = false
		var n int
		// createAccount takes the accounts lock too; taking it first makes the count hold.
		if err := s.lock(ctx, c, "accounts"); err != nil {
			return err
		}
		if err := c.QueryRow(ctx, `SELECT count(*) FROM accounts`).Scan(&n); err != nil || n > 0 {
			return err
		}
		acct, err := s.createAccount(ctx, c, a)
		if err != nil {
			return err
		}
		k.AccountID = acct.ID
		if err := createAccessKey(ctx, c, k); err != nil {
			return err
		}
		a, created = acct, true
		return nil
	})
	return a, created, s.wrap("create first account", err)
}

// createAccount inserts a in transaction c, with defaults filled in and an id assigned.
func (s *DB) createAccount(ctx context.Context, c conn, a auth.Account) (auth.Account, error) {
	if a.JobLimit == 0 {
		a.JobLimit = auth.DefaultJobLimit
	}
	if a.CreateTime.IsZero() {
		a.CreateTime = time.Now()
	}
	if a.CallbackSecret == "" {
		a.CallbackSecret = auth.NewCallbackSecret()
	}
	// Account ids look like Alibaba Cloud UserIds: large numbers, not 1, 2, 3. The next one is
	// the largest plus one, so concurrent creators take turns.
	if err := s.lock(ctx, c, "accounts"); err != nil {
		return a, err
	}
	err := c.QueryRow(ctx, `INSERT INTO accounts (id, disabled, service_enabled, job_limit, callback_secret, create_ms)
		VALUES (COALESCE(NULLIF(CAST(? AS BIGINT), 0), (SELECT COALESCE(MAX(id), 1000000000000000) + 1 FROM accounts)), ?, ?, ?, ?, ?)
		RETURNING id`,
		a.ID, a.Disabled, a.ServiceEnabled, a.JobLimit, a.CallbackSecret, ms(a.CreateTime)).Scan(&a.ID)
	return a, err
}

// GetAccount implements store.Store.
func (s *DB) GetAccount(ctx context.Context, id int64) (auth.Account, error) {
	a := auth.Account{ID: id}
	var created int64
	err := s.db.QueryRow(ctx, `SELECT disabled, service_enabled, job_limit, callback_secret, create_ms FROM accounts WHERE id = ?`, id).
		Scan(&a.Disabled, &a.ServiceEnabled, &a.JobLimit, &a.CallbackSecret, &created)
	a.CreateTime = fromMs(created)
	return a, s.wrap("get account", notFound(err))
}

// CountAccounts implements store.Store.
func (s *DB) CountAccounts(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM accounts`).Scan(&n)
	return n, s.wrap("count accounts", err)
}

// UpdateAccount implements store.Store.
func (s *DB) UpdateAccount(ctx context.Context, a auth.Account) error {
	res, err := s.db.Exec(ctx, `UPDATE accounts SET disabled = ?, service_enabled = ?, job_limit = ? WHERE id = ?`,
		a.Disabled, a.ServiceEnabled, a.JobLimit, a.ID)
	return s.wrap("update account", affectedOne(res, err))
}

// SetCallbackSecret implements store.Store.
func (s *DB) SetCallbackSecret(ctx context.Context, accountID int64, secret string) error {
	if secret == "" {
		return fmt.Errorf("set callback secret: empty secret")
	}
	res, err := s.db.Exec(ctx, `UPDATE accounts SET callback_secret = ? WHERE id = ?`, secret, accountID)
	return s.wrap("set callback secret", affectedOne(res, err))
}

// CreateAccessKey implements store.Store.
func (s *DB) CreateAccessKey(ctx context.Context, k auth.AccessKey) error {
	return s.wrap("create access key", createAccessKey(ctx, s.db, k))
}

func createAccessKey(ctx context.Context, c conn, k auth.AccessKey) error {
	policy, err := json.Marshal(k.Policy)
	if err != nil {
		return err
	}
	if k.CreateTime.IsZero() {
		k.CreateTime = time.Now()
	}
	_, err = c.Exec(ctx, `INSERT INTO access_keys (id, account_id, secret, disabled, policy, create_ms) VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, k.AccountID, k.Secret, k.Disabled, string(policy), ms(k.CreateTime))
	return err
}

// GetAccessKey implements store.Store.
func (s *DB) GetAccessKey(ctx context.Context, id string) (auth.AccessKey, error) {
	k := auth.AccessKey{ID: id}
	var policy string
	var created int64
	err := s.db.QueryRow(ctx, `SELECT account_id, secret, disabled, policy, create_ms FROM access_keys WHERE id = ?`, id).
		Scan(&k.AccountID, &k.Secret, &k.Disabled, &policy, &created)
	if err != nil {
		return k, s.wrap("get access key", notFound(err))
	}
	k.CreateTime = fromMs(created)
	return k, s.wrap("get access key", json.Unmarshal([]byte(policy), &k.Policy))
}

// ListAccessKeys implements store.Store.
func (s *DB) ListAccessKeys(ctx context.Context, accountID int64) ([]auth.AccessKey, error) {
	rows, err := s.db.Query(ctx, `SELECT id, account_id, secret, disabled, policy, create_ms FROM access_keys
		WHERE CAST(? AS BIGINT) = 0 OR account_id = ? ORDER BY create_ms, id`, accountID, accountID)
	if err != nil {
		return nil, s.wrap("list access keys", err)
	}
	defer rows.Close()
	var out []auth.AccessKey
	for rows.Next() {
		var k auth.AccessKey
		var policy string
		var created int64
		if err := rows.Scan(&k.ID, &k.AccountID, &k.Secret, &k.Disabled, &policy, &created); err != nil {
			return nil, s.wrap("list access keys", err)
		}
		k.CreateTime = fromMs(created)
		if err := json.Unmarshal([]byte(policy), &k.Policy); err != nil {
			return nil, s.wrap("list access keys", err)
		}
		out = append(out, k)
	}
	return out, s.wrap("list access keys", rows.Err())
}

// SetAccessKeyDisabled implements store.Store.
func (s *DB) SetAccessKeyDisabled(ctx context.Context, id string, disabled bool) error {
	res, err := s.db.Exec(ctx, `UPDATE access_keys SET disabled = ? WHERE id = ?`, disabled, id)
	return s.wrap("set access key state", affectedOne(res, err))
}

// DeleteAccessKey implements store.Store; the key's rate bucket goes with it.
func (s *DB) DeleteAccessKey(ctx context.Context, id string) error {
	err := s.tx(ctx, func(c conn) error {
		res, err := c.Exec(ctx, `DELETE FROM access_keys WHERE id = ?`, id)
		if err := affectedOne(res, err); err != nil {
			return err
		}
		_, err = c.Exec(ctx, `DELETE FROM rate_buckets WHERE key_id = ?`, id)
		return err
	})
	return s.wrap("delete access key", err)
}

// Bounds on TakeToken's arguments.
const (
	maxBucketKey = 128
	maxRate      = 1e9
)

// TakeToken implements store.Store in one statement: the bucket's refill since its last update
// is added (never beyond burst, never for a clock that went back) and a token taken only if
// that makes at least one, so concurrent takers on any node never overdraw it.
func (s *DB) TakeToken(ctx context.Context, key string, rate, burst float64, now time.Time) (bool, error) {
	switch {
	case key == "" || len(key) > maxBucketKey:
		return false, fmt.Errorf("rate bucket key must be 1 to %d bytes", maxBucketKey)
	case !(rate > 0 && rate <= maxRate) || !(burst >= 1 && burst <= maxRate):
		return false, fmt.Errorf("rate %v and burst %v: want 0 < rate and 1 <= burst, both at most %g", rate, burst, maxRate)
	}
	at := ms(now)
	refilled := s.d.Least + `(CAST(? AS DOUBLE PRECISION), rate_buckets.tokens + ` +
		s.d.Greatest + `(0, CAST(? AS BIGINT) - rate_buckets.updated_ms) * CAST(? AS DOUBLE PRECISION) / 1000)`
	var left float64
	err := s.db.QueryRow(ctx, `INSERT INTO rate_buckets (key_id, tokens, updated_ms) VALUES (?, CAST(? AS DOUBLE PRECISION) - 1, ?)
		ON CONFLICT (key_id) DO UPDATE SET tokens = `+refilled+` - 1,
			updated_ms = `+s.d.Greatest+`(rate_buckets.updated_ms, CAST(? AS BIGINT))
		WHERE `+refilled+` >= 1
		RETURNING tokens`,
		key, burst, at, burst, at, rate, at, burst, at, rate).Scan(&left)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, s.wrap("take token", err)
}

// noncePurgeBatch bounds how many expired nonces one UseNonce deletes.
const noncePurgeBatch = 100

// UseNonce implements store.Store: one statement decides, so of two nodes given the same
// nonce at once exactly one wins. Expired nonces are purged on the way, a bounded batch per
// call (rows other calls are purging are passed over).
func (s *DB) UseNonce(ctx context.Context, keyID, nonce string, expiresAt time.Time) (bool, error) {
	fresh := false
	err := s.tx(ctx, func(c conn) error {
		now := ms(time.Now())
		var one int
		// A row comes back when the nonce is new, or replaces an expired use of it.
		err := c.QueryRow(ctx, `INSERT INTO nonces (key_id, nonce, expires_ms) VALUES (?, ?, ?)
			ON CONFLICT (key_id, nonce) DO UPDATE SET expires_ms = excluded.expires_ms WHERE nonces.expires_ms < ?
			RETURNING 1`, keyID, nonce, ms(expiresAt), now).Scan(&one)
		switch {
		case err == nil:
			fresh = true
		case errors.Is(err, sql.ErrNoRows):
			fresh = false
		default:
			return err
		}
		_, err = c.Exec(ctx, `DELETE FROM nonces WHERE (key_id, nonce) IN
			(SELECT key_id, nonce FROM nonces WHERE expires_ms < ? LIMIT ?`+s.d.SkipLocked+`)`, now, noncePurgeBatch)
		return err
	})
	return fresh, s.wrap("use nonce", err)
}
