// Package postgres implements store.Store on PostgreSQL, for clusters of livesnap nodes that
// share one database. The queries are sqlstore's, run through pgx's database/sql driver; this
// package connects, owns PostgreSQL's migrations (numbered as SQLite's) and supplies the
// dialect: row locks, SKIP LOCKED claims and advisory locks.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/livesnap/livesnap/internal/store"
	"github.com/livesnap/livesnap/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect is PostgreSQL's. Transactions run at READ COMMITTED: rows a transaction decides on
// are locked (FOR UPDATE / FOR SHARE), claimers pass over each other's rows (SKIP LOCKED), and
// named critical sections are transaction-scoped advisory locks, per schema.
var Dialect = sqlstore.Dialect{
	Name:            "postgres",
	Numbered:        true,
	ForUpdate:       " FOR UPDATE",
	ForShare:        " FOR SHARE",
	SkipLocked:      " FOR UPDATE SKIP LOCKED",
	Lock:            `SELECT pg_advisory_xact_lock(hashtext(COALESCE(current_schema(), '') || ':livesnap:' || CAST(? AS TEXT)))`,
	Like:            "ILIKE",
	Least:           "LEAST",
	Greatest:        "GREATEST",
	OverlayConflict: "(job_id) WHERE is_overlay",
	Retryable:       retryable,
}

// retryable: deadlock detected or serialization failure; the transaction can run again.
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

// DB is a store.Store on PostgreSQL.
type DB struct {
	*sqlstore.DB
}

var _ store.Store = (*DB)(nil)

// Connection pool bounds; pool_max_conns in the URL overrides the size.
const (
	defaultPoolSize = 10
	maxPoolSize     = 200
	connectTimeout  = 15 * time.Second
)

// serverDefaults are session settings a URL may override: a client that hangs inside a
// transaction (stopped, partitioned) must not hold row locks for long, and no statement waits
// for a lock forever.
var serverDefaults = map[string]string{
	"application_name":                    "livesnap",
	"idle_in_transaction_session_timeout": "30000", // ms
	"lock_timeout":                        "20000", // ms
}

// Open connects to the database at rawURL (postgres://user:password@host:port/db?sslmode=...,
// plus pool_max_conns=N) and applies pending migrations. Errors never contain the password.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	s, err := open(ctx, rawURL)
	if err != nil {
		return nil, scrub(fmt.Errorf("postgres %s: %w", Redact(rawURL), err), rawURL)
	}
	return s, nil
}

func open(ctx context.Context, rawURL string) (*DB, error) {
	connString, poolSize, err := splitPoolSize(rawURL)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	for k, v := range serverDefaults {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(poolSize)
	db.SetMaxIdleConns(poolSize)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s := &DB{sqlstore.New(db, Dialect)}
	files, _ := fs.Sub(migrations, "migrations")
	if err := s.Migrate(ctx, files); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// scrub removes rawURL's password from err's message (drivers quote connection strings in
// some errors); err's chain is kept when there is nothing to remove.
func scrub(err error, rawURL string) error {
	u, perr := url.Parse(rawURL)
	if perr != nil {
		return fmt.Errorf("postgres %s: not a URL like postgres://user:password@host:port/database", Redact(rawURL))
	}
	msg := err.Error()
	for _, pw := range []string{func() string { p, _ := u.User.Password(); return p }(), u.Query().Get("password")} {
		if len(pw) > 0 && strings.Contains(msg, pw) {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// splitPoolSize takes our own pool_max_conns parameter out of the URL (the server would refuse
// it as an unknown setting).
func splitPoolSize(rawURL string) (string, int, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", 0, fmt.Errorf("not a URL like postgres://user:password@host:port/database")
	}
	q := u.Query()
	size := defaultPoolSize
	if v := q.Get("pool_max_conns"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPoolSize {
			return "", 0, fmt.Errorf("pool_max_conns must be from 1 to %d", maxPoolSize)
		}
		size = n
		q.Del("pool_max_conns")
		u.RawQuery = q.Encode()
	}
	return u.String(), size, nil
}

// Redact returns rawURL with any password replaced by "xxxxx", for messages and logs. A URL
// that does not parse is shown only by its scheme.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		scheme, _, found := strings.Cut(rawURL, "://")
		if !found || len(scheme) > 16 || strings.ContainsAny(scheme, ":@/ ") {
			return "(unparsable URL)"
		}
		return scheme + "://(unparsable)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
