package postgres

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/store"
	"github.com/livesnap/livesnap/internal/store/postgres/pgtest"
	"github.com/livesnap/livesnap/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openTest(t *testing.T, u string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t, pgtest.Schema(t)) })
}

// TestConformanceAcrossNodes runs the concurrency tests with one connection pool per node,
// all on one database.
func TestConformanceAcrossNodes(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T, n int) []store.Store {
		u := pgtest.Schema(t)
		var nodes []store.Store
		for i := 0; i < n; i++ {
			nodes = append(nodes, openTest(t, u))
		}
		return nodes
	})
}

// TestConcurrentStartersMigrateOnce: nodes starting at once on an empty database all come up,
// and each migration is applied exactly once.
func TestConcurrentStartersMigrateOnce(t *testing.T) {
	u := pgtest.Schema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(context.Background(), u)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	db := openTest(t, u)
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var applied, distinct int
	if err := db.SQL().QueryRow(`SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied != len(entries) || distinct != len(entries) {
		t.Fatalf("%d migrations recorded (%d distinct), want each of %d once", applied, distinct, len(entries))
	}
}

// TestExpiredNoncesArePurgedInBatches: every UseNonce removes a bounded batch of expired nonces.
func TestExpiredNoncesArePurgedInBatches(t *testing.T) {
	db := openTest(t, pgtest.Schema(t))
	ctx := context.Background()
	old := time.Now().Add(-time.Hour).UnixMilli()
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO nonces (key_id, nonce, expires_ms)
		SELECT 'k', 'n' || i, $1 FROM generate_series(1, 250) AS i`, old); err != nil {
		t.Fatal(err)
	}
	count := func() (n int) {
		if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM nonces`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i, want := range []int{151, 52, 3, 4} { // 250 expired, 100 purged per call, plus each call's own nonce
		if _, err := db.UseNonce(ctx, "k", fmt.Sprintf("fresh-%d", i), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != want {
			t.Fatalf("after call %d: %d nonces, want %d", i+1, n, want)
		}
	}
}

// TestErrorsNeverShowThePassword: bad URLs, a wrong password and an unreachable server all
// give errors that say what is wrong without the password.
func TestErrorsNeverShowThePassword(t *testing.T) {
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cret-Pa55word"
	wrongPassword := *u
	wrongPassword.User = url.UserPassword(u.User.Username(), secret)
	unreachable := wrongPassword
	unreachable.Host = "127.0.0.1:1"
	cases := map[string]string{
		"wrong password":    wrongPassword.String(),
		"unreachable":       unreachable.String(),
		"bad port":          "postgres://u:" + secret + "@127.0.0.1:notaport/db",
		"bad sslmode":       "postgres://u:" + secret + "@127.0.0.1:5432/db?sslmode=sometimes",
		"password in query": "postgres://127.0.0.1:1/db?user=u&password=" + secret,
		"bad pool size":     "postgres://u:" + secret + "@127.0.0.1:5432/db?pool_max_conns=0",
		"not a URL":         "host=127.0.0.1 password=" + secret,
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db, err := Open(ctx, raw)
			if err == nil {
				db.Close()
				t.Fatal("opened")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the password: %v", err)
			}
			t.Logf("%q", err)
		})
	}
}

func TestRedact(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://u:pw@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://h/db?password=pw&user=u":        "postgres://h/db?password=xxxxx&user=u",
		"postgres://h/db":                           "postgres://h/db",
		"postgres://u:pw@h:bad port/db":             "postgres://(unparsable)",
		"u:pw@h":                                    "(unparsable URL)",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}
