// Package sqlite implements store.Store on an embedded SQLite file (pure Go, WAL mode), the
// single-node default. Several processes may share the file (serve, admin commands, runners).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a store.Store on SQLite.
type DB struct {
	db *sql.DB
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed, mode 0600) the SQLite file at path and applies pending
// migrations.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Create the file ourselves so that it is private from the start: it holds access key secrets.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate") // writers take the lock up front: read-check-write is atomic
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	s := &DB{db: db}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// migrate applies the numbered migrations not yet recorded in schema_migrations, in order.
func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return err
	}
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		version, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", e.Name())
		}
		body, err := migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			return err
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", e.Name(), err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, version)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// policyOrDefault stores the default capture policy explicitly.
func policyOrDefault(p string) string {
	if p == "" {
		return snapshot.PolicyKeyframe
	}
	return p
}

func fromMs(v int64) time.Time { return time.UnixMilli(v).UTC() }

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// CreateAccount implements store.Store.
func (s *DB) CreateAccount(ctx context.Context, a auth.Account) (auth.Account, error) {
	if a.JobLimit == 0 {
		a.JobLimit = auth.DefaultJobLimit
	}
	if a.CreateTime.IsZero() {
		a.CreateTime = time.Now()
	}
	if a.CallbackSecret == "" {
		a.CallbackSecret = auth.NewCallbackSecret()
	}
	// Account ids look like Alibaba Cloud UserIds: large numbers, not 1, 2, 3.
	res, err := s.db.ExecContext(ctx, `INSERT INTO accounts (id, disabled, service_enabled, job_limit, callback_secret, create_ms)
		VALUES (COALESCE(NULLIF(?, 0), (SELECT COALESCE(MAX(id), 1000000000000000) + 1 FROM accounts)), ?, ?, ?, ?, ?)`,
		a.ID, a.Disabled, a.ServiceEnabled, a.JobLimit, a.CallbackSecret, ms(a.CreateTime))
	if err != nil {
		return a, err
	}
	a.ID, err = res.LastInsertId()
	return a, err
}

// GetAccount implements store.Store.
func (s *DB) GetAccount(ctx context.Context, id int64) (auth.Account, error) {
	a := auth.Account{ID: id}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT disabled, service_enabled, job_limit, callback_secret, create_ms FROM accounts WHERE id = ?`, id).
		Scan(&a.Disabled, &a.ServiceEnabled, &a.JobLimit, &a.CallbackSecret, &created)
	a.CreateTime = fromMs(created)
	return a, notFound(err)
}

// CountAccounts implements store.Store.
func (s *DB) CountAccounts(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM accounts`).Scan(&n)
	return n, err
}

// CreateAccessKey implements store.Store.
func (s *DB) CreateAccessKey(ctx context.Context, k auth.AccessKey) error {
	policy, err := json.Marshal(k.Policy)
	if err != nil {
		return err
	}
	if k.CreateTime.IsZero() {
		k.CreateTime = time.Now()
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO access_keys (id, account_id, secret, disabled, policy, create_ms) VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, k.AccountID, k.Secret, k.Disabled, string(policy), ms(k.CreateTime))
	return err
}

// GetAccessKey implements store.Store.
func (s *DB) GetAccessKey(ctx context.Context, id string) (auth.AccessKey, error) {
	k := auth.AccessKey{ID: id}
	var policy string
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT account_id, secret, disabled, policy, create_ms FROM access_keys WHERE id = ?`, id).
		Scan(&k.AccountID, &k.Secret, &k.Disabled, &policy, &created)
	if err != nil {
		return k, notFound(err)
	}
	k.CreateTime = fromMs(created)
	return k, json.Unmarshal([]byte(policy), &k.Policy)
}

// UseNonce implements store.Store. Expired nonces are pruned on the way.
func (s *DB) UseNonce(ctx context.Context, keyID, nonce string, expiresAt time.Time) (bool, error) {
	fresh := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := ms(time.Now())
		if _, err := tx.ExecContext(ctx, `DELETE FROM nonces WHERE key_id = ? AND nonce = ? AND expires_ms < ?`, keyID, nonce, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO nonces (key_id, nonce, expires_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, keyID, nonce, ms(expiresAt))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		fresh = n == 1
		// Keep the table small: prune a bounded batch of expired entries per call.
		_, err = tx.ExecContext(ctx, `DELETE FROM nonces WHERE rowid IN (SELECT rowid FROM nonces WHERE expires_ms < ? LIMIT 100)`, now)
		return err
	})
	return fresh, err
}

// CreateTemplate implements store.Store.
func (s *DB) CreateTemplate(ctx context.Context, t snapshot.Template) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO templates (id, account_id, name, type, time_interval, overwrite_format, sequence_format,
		capture_policy, width, height, quality, create_ms, modified_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.AccountID, t.Name, t.Type, t.TimeInterval, t.OverwriteFormat, t.SequenceFormat,
		policyOrDefault(t.Image.Policy), t.Image.Width, t.Image.Height, t.Image.Quality, ms(t.CreateTime), ms(t.LastModified))
	return err
}

// GetTemplate implements store.Store.
func (s *DB) GetTemplate(ctx context.Context, accountID int64, id string) (snapshot.Template, error) {
	t := snapshot.Template{AccountID: accountID, ID: id}
	var created, modified int64
	err := s.db.QueryRowContext(ctx, `SELECT name, type, time_interval, overwrite_format, sequence_format,
		capture_policy, width, height, quality, create_ms, modified_ms
		FROM templates WHERE account_id = ? AND id = ?`, accountID, id).
		Scan(&t.Name, &t.Type, &t.TimeInterval, &t.OverwriteFormat, &t.SequenceFormat,
			&t.Image.Policy, &t.Image.Width, &t.Image.Height, &t.Image.Quality, &created, &modified)
	t.CreateTime, t.LastModified = fromMs(created), fromMs(modified)
	return t, notFound(err)
}

const jobColumns = `account_id, id, name, template_id, template_name, time_interval, overwrite_format, sequence_format,
	status, input_type, input_url, output_type, output_endpoint, output_bucket, callback_url, create_ms, modified_ms, generation,
	capture_policy, width, height, quality, input_transport`

type scanner interface{ Scan(...any) error }

func scanJob(row scanner) (snapshot.Job, error) {
	var j snapshot.Job
	var created, modified int64
	err := row.Scan(&j.AccountID, &j.ID, &j.Name, &j.TemplateID, &j.TemplateName, &j.TimeInterval, &j.OverwriteFormat, &j.SequenceFormat,
		&j.Status, &j.Input.Type, &j.Input.URL, &j.Output.StorageType, &j.Output.Endpoint, &j.Output.Bucket, &j.CallbackURL,
		&created, &modified, &j.Generation, &j.Image.Policy, &j.Image.Width, &j.Image.Height, &j.Image.Quality, &j.Input.Transport)
	j.CreateTime, j.LastModified = fromMs(created), fromMs(modified)
	return j, err
}

// CreateJob implements store.Store.
func (s *DB) CreateJob(ctx context.Context, j snapshot.Job) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (`+jobColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.AccountID, j.ID, j.Name, j.TemplateID, j.TemplateName, j.TimeInterval, j.OverwriteFormat, j.SequenceFormat,
		j.Status, j.Input.Type, j.Input.URL, j.Output.StorageType, j.Output.Endpoint, j.Output.Bucket, j.CallbackURL,
		ms(j.CreateTime), ms(j.LastModified), j.Generation,
		policyOrDefault(j.Image.Policy), j.Image.Width, j.Image.Height, j.Image.Quality, j.Input.Transport)
	return err
}

// GetJob implements store.Store.
func (s *DB) GetJob(ctx context.Context, accountID int64, id string) (snapshot.Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE account_id = ? AND id = ?`, accountID, id))
	return j, notFound(err)
}

// SetJobStatus implements store.Store.
func (s *DB) SetJobStatus(ctx context.Context, accountID int64, id, from, to string, newGeneration bool, limit int, now time.Time) (snapshot.Job, error) {
	var out snapshot.Job
	err := s.tx(ctx, func(tx *sql.Tx) error {
		j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE account_id = ? AND id = ?`, accountID, id))
		if err != nil {
			return notFound(err)
		}
		if j.Status != from {
			return store.ErrConflict
		}
		if limit > 0 && to == snapshot.StatusStarted {
			var running int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE account_id = ? AND status = ? AND id <> ?`,
				accountID, snapshot.StatusStarted, id).Scan(&running); err != nil {
				return err
			}
			if running >= limit {
				return store.ErrLimitExceeded
			}
		}
		gen := j.Generation
		if newGeneration {
			gen++
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, generation = ?, modified_ms = ? WHERE id = ?`, to, gen, ms(now), id); err != nil {
			return err
		}
		j.Status, j.Generation, j.LastModified = to, gen, now.UTC().Truncate(time.Millisecond)
		out = j
		return nil
	})
	return out, err
}

// ListStartedJobs implements store.Store.
func (s *DB) ListStartedJobs(ctx context.Context) ([]snapshot.Job, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE status = ? ORDER BY id`, snapshot.StatusStarted)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var jobs []snapshot.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// NextSequence implements store.Store.
func (s *DB) NextSequence(ctx context.Context, jobID string) (int64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `UPDATE jobs SET last_sequence = last_sequence + 1 WHERE id = ? RETURNING last_sequence`, jobID).Scan(&seq)
	return seq, notFound(err)
}

// RecordCapture implements store.Store.
func (s *DB) RecordCapture(ctx context.Context, c store.Capture) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var account int64
		err := tx.QueryRowContext(ctx, `SELECT account_id FROM jobs WHERE id = ? AND status = ? AND generation = ?`,
			c.JobID, snapshot.StatusStarted, c.Generation).Scan(&account)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrConflict
		}
		if err != nil {
			return err
		}
		now := ms(time.Now())
		for _, cb := range c.Callbacks {
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (account_id, job_id, url, body, next_attempt_ms, create_ms) VALUES (?, ?, ?, ?, ?, ?)`,
				account, c.JobID, cb.URL, cb.Body, now, now); err != nil {
				return err
			}
		}
		for _, f := range c.Files {
			if f.JobID != c.JobID {
				return fmt.Errorf("record for job %s in a capture of job %s", f.JobID, c.JobID)
			}
			if f.IsOverlay {
				// The overwrite record only moves forward in time (a late writer never rewinds it).
				_, err := tx.ExecContext(ctx, `INSERT INTO files (account_id, job_id, endpoint, bucket, object, create_ms, is_overlay)
					VALUES (?, ?, ?, ?, ?, ?, 1)
					ON CONFLICT (job_id) WHERE is_overlay = 1 DO UPDATE SET
						object = excluded.object, endpoint = excluded.endpoint, bucket = excluded.bucket, create_ms = excluded.create_ms
					WHERE excluded.create_ms >= files.create_ms`,
					f.AccountID, f.JobID, f.Endpoint, f.Bucket, f.Object, ms(f.CreateTime))
				if err != nil {
					return err
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO files (account_id, job_id, endpoint, bucket, object, create_ms, is_overlay) VALUES (?, ?, ?, ?, ?, ?, 0)`,
				f.AccountID, f.JobID, f.Endpoint, f.Bucket, f.Object, ms(f.CreateTime)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListFiles implements store.Store.
func (s *DB) ListFiles(ctx context.Context, q store.FileQuery) ([]snapshot.File, error) {
	order := "ASC"
	if q.Desc {
		order = "DESC"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT endpoint, bucket, object, create_ms, is_overlay FROM files
		WHERE account_id = ? AND job_id = ? AND create_ms BETWEEN ? AND ?
		ORDER BY create_ms `+order+`, is_overlay `+order+`, object `+order+`, id `+order+` LIMIT ?`,
		q.AccountID, q.JobID, ms(q.Start), ms(q.End), q.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []snapshot.File
	for rows.Next() {
		f := snapshot.File{AccountID: q.AccountID, JobID: q.JobID}
		var created int64
		if err := rows.Scan(&f.Endpoint, &f.Bucket, &f.Object, &created, &f.IsOverlay); err != nil {
			return nil, err
		}
		f.CreateTime = fromMs(created)
		out = append(out, f)
	}
	return out, rows.Err()
}
