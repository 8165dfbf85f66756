package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"time"
)

// maxCachedStmts bounds the prepared statements kept per database: the store's queries are a
// fixed set plus a few built for a count of values, so the bound is only a guard.
const maxCachedStmts = 256

// prepareTimeout bounds one background prepare (it waits for a free connection of the pool).
const prepareTimeout = 30 * time.Second

// stmtCache keeps one prepared statement per query text, for drivers that keep none of their
// own (SQLite's; pgx caches its statements itself). database/sql prepares a statement once per
// connection of its pool and reuses it, in transactions too (Tx.StmtContext), so a query is
// parsed once instead of at every call: parsing was about a third of the store's CPU per
// snapshot (docs/benchmarks.md).
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool // being prepared
	closed  bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt), pending: make(map[string]bool)}
}

// get returns the prepared statement of query, or nil where there is none (yet): the query
// then runs as text. A query holding more than one statement (a migration) is never prepared,
// since a prepared statement would be its first statement only. Inside a transaction (inTx)
// a missing statement is prepared in the background: the transaction holds a connection, and
// preparing on the pool could wait for that very connection.
func (c *stmtCache) get(query string, inTx bool) *sql.Stmt {
	if c == nil || strings.Contains(query, ";") {
		return nil
	}
	c.mu.Lock()
	st, ok := c.m[query]
	if ok || c.closed || c.pending[query] || len(c.m)+len(c.pending) >= maxCachedStmts {
		c.mu.Unlock()
		return st
	}
	c.pending[query] = true
	c.mu.Unlock()
	if inTx {
		go c.prepare(query)
		return nil
	}
	return c.prepare(query)
}

// prepare prepares query on the pool and keeps it; nil if that failed (the query runs as text,
// and a later call tries again) or the cache was closed meanwhile.
func (c *stmtCache) prepare(query string) *sql.Stmt {
	ctx, cancel := context.WithTimeout(context.Background(), prepareTimeout)
	defer cancel()
	st, err := c.db.PrepareContext(ctx, query)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, query)
	if err != nil {
		return nil
	}
	if c.closed {
		st.Close()
		return nil
	}
	c.m[query] = st
	return st
}

// close closes every cached statement; statements still being prepared are closed when ready.
func (c *stmtCache) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

// CachedQueries returns the queries kept prepared (for tests).
func (s *DB) CachedQueries() []string {
	c := s.stmts
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.m))
	for q := range c.m {
		out = append(out, q)
	}
	return out
}

// CachedStatements returns how many queries are kept prepared (for tests).
func (s *DB) CachedStatements() int { return len(s.CachedQueries()) }
