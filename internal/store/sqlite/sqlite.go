// Package sqlite implements store.Store on an embedded SQLite file (pure Go, WAL mode), the
// single-node default. Several processes may share the file (serve, admin commands, runners).
// The queries are sqlstore's; this package opens the file and owns SQLite's migrations.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/livesnap/livesnap/internal/store"
	"github.com/livesnap/livesnap/internal/store/sqlstore"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect is SQLite's: every writing transaction starts with BEGIN IMMEDIATE and so holds the
// database's one write lock, which serializes writers without row locks.
var Dialect = sqlstore.Dialect{
	Name:            "sqlite",
	Like:            "LIKE", // ASCII case-insensitive by default
	Least:           "min",
	Greatest:        "max",
	OverlayConflict: "(job_id) WHERE is_overlay = 1",
}

// DB is a store.Store on SQLite.
type DB struct {
	*sqlstore.DB
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
	s := &DB{sqlstore.New(db, Dialect)}
	files, _ := fs.Sub(migrations, "migrations")
	if err := s.Migrate(context.Background(), files); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return s, nil
}
