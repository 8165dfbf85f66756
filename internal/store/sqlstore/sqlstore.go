// Package sqlstore implements store.Store on database/sql once, for every SQL database livesnap
// runs on (sqlite/, postgres/): the queries are shared, written with ? placeholders, and a
// Dialect says what differs.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// Dialect is what differs between the databases. Queries are written in the SQL both speak
// (RETURNING, ON CONFLICT, row values, CAST(? AS BIGINT) where a parameter's type would be
// ambiguous); the rest is here.
type Dialect struct {
	// Name prefixes errors ("sqlite", "postgres").
	Name string
	// Numbered placeholders: $1, $2, ... instead of ?.
	Numbered bool
	// ForUpdate and ForShare end a SELECT whose rows must stay as read until the transaction
	// ends; SkipLocked does so too, passing over rows that other transactions hold. Empty where
	// every writing transaction holds the one database lock (SQLite's BEGIN IMMEDIATE).
	ForUpdate, ForShare, SkipLocked string
	// Lock is a statement with one text parameter, a name, that serializes the transactions
	// that run it with that name until they end; empty where writers are serialized anyway.
	Lock string
	// Like is the operator for an ASCII case-insensitive LIKE.
	Like string
	// Least and Greatest are the two-argument minimum and maximum functions.
	Least, Greatest string
	// OverlayConflict is the ON CONFLICT target of a job's one overwrite record; it repeats
	// the predicate of the partial unique index files_overlay.
	OverlayConflict string
	// Retryable reports errors after which a transaction can simply run again (deadlocks,
	// serialization failures); nil: none.
	Retryable func(error) bool
}

// DB is a store.Store on a *sql.DB.
type DB struct {
	sql *sql.DB
	d   Dialect
	db  conn
}

var _ store.Store = (*DB)(nil)

// New returns the store on db, which speaks d. Migrate it before use.
func New(db *sql.DB, d Dialect) *DB {
	return &DB{sql: db, d: d, db: conn{db, d.Numbered}}
}

// Close closes the database.
func (s *DB) Close() error { return s.sql.Close() }

// SQL returns the underlying database (for tests and administration).
func (s *DB) SQL() *sql.DB { return s.sql }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs queries written with ? placeholders on a database or in a transaction.
type conn struct {
	q        querier
	numbered bool
}

func (c conn) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.bind(query), args...)
}

func (c conn) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.bind(query), args...)
}

func (c conn) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.bind(query), args...)
}

// bind numbers the ? placeholders of query ($1, $2, ...) when the dialect wants that. Our
// queries have no ? inside string literals; quoted text is skipped anyway.
func (c conn) bind(query string) string {
	if !c.numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		switch ch := query[i]; {
		case ch == '\'':
			quoted = !quoted
			b.WriteByte(ch)
		case ch == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// maxTxAttempts bounds how often a transaction runs again after a retryable error.
const maxTxAttempts = 5

// tx runs fn in a transaction, again (from the start) after a deadlock or serialization
// failure; fn must not keep state from a failed attempt.
func (s *DB) tx(ctx context.Context, fn func(c conn) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, fn)
		if err == nil || s.d.Retryable == nil || !s.d.Retryable(err) || attempt == maxTxAttempts || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
	}
}

func (s *DB) tryTx(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(conn{tx, s.d.Numbered}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// lock serializes a critical section named name for the rest of the transaction.
func (s *DB) lock(ctx context.Context, c conn, name string) error {
	if s.d.Lock == "" {
		return nil
	}
	_, err := c.Exec(ctx, s.d.Lock, name)
	return err
}

// wrap adds the database and the operation to unexpected errors; the store's own errors
// (ErrNotFound, ErrConflict, ...) pass unchanged so callers can compare them.
func (s *DB) wrap(op string, err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrLimitExceeded) {
		return err
	}
	return fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
}

// Migrate applies the numbered migrations (files NNNN_name.sql at the root of files) that the
// database has not recorded yet, in order, in one transaction under the dialect's lock, so
// concurrent starters neither race nor apply one twice.
func (s *DB) Migrate(ctx context.Context, files fs.FS) error {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return err
	}
	type migration struct {
		version int
		name    string
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", e.Name())
		}
		if other, dup := seen[v]; dup {
			return fmt.Errorf("migrations %s and %s have the same number", other, e.Name())
		}
		seen[v] = e.Name()
		ms = append(ms, migration{v, e.Name()})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	err = s.tx(ctx, func(c conn) error {
		if err := s.lock(ctx, c, "migrate"); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
			return err
		}
		for _, m := range ms {
			var n int
			if err := c.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			body, err := fs.ReadFile(files, m.name)
			if err != nil {
				return err
			}
			if _, err := c.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := c.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, m.version); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap("migrate", err)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMs(v int64) time.Time { return time.UnixMilli(v).UTC() }

// policyOrDefault stores the default capture policy explicitly.
func policyOrDefault(p string) string {
	if p == "" {
		return snapshot.PolicyKeyframe
	}
	return p
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// placeholders returns "?, ?, ..." for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
