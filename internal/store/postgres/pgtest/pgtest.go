// Package pgtest gives tests a PostgreSQL server: the one LIVESNAP_TEST_POSTGRES names (.ci/run
// starts one), or else a throwaway cluster it starts itself with scripts/test-postgres.sh when
// Debian's PostgreSQL is installed, so `go test ./...` works on a developer's machine too.
// Each test gets its own schema or database.
package pgtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

const (
	envURL     = "LIVESNAP_TEST_POSTGRES"
	envRequire = "LIVESNAP_REQUIRE_SERVICES"
)

var (
	once     sync.Once
	baseURL  string // the server's test database
	startErr error
	ownDir   string  // the cluster this process started, if any
	admin    *sql.DB // on baseURL, for creating and dropping schemas and databases
)

// Main runs the tests and then stops the server they started, if any. Call it from TestMain:
// os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if admin != nil {
		admin.Close()
	}
	if ownDir != "" {
		exec.Command(script(), "stop", ownDir).Run()
	}
	return code
}

// script is scripts/test-postgres.sh of this source tree.
func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "scripts", "test-postgres.sh")
}

func start() {
	if v := os.Getenv(envURL); v != "" {
		baseURL = v
	} else if _, err := os.Stat(script()); err != nil {
		startErr = fmt.Errorf("%s is unset and %s is missing", envURL, script())
		return
	} else {
		// The script's watchdog stops the server if this process dies without Main's cleanup.
		out, err := exec.Command(script(), "start", strconv.Itoa(os.Getpid())).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			startErr = fmt.Errorf("%s is unset and starting a throwaway server failed: %v %s", envURL, err, bytes.TrimSpace(stderr))
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), "=")
			switch k {
			case envURL:
				baseURL = v
			case envURL + "_DIR":
				ownDir = v
			}
		}
		if baseURL == "" {
			startErr = fmt.Errorf("scripts/test-postgres.sh printed no URL")
			return
		}
	}
	db, err := sql.Open("pgx", baseURL)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = db.PingContext(ctx)
	}
	if err != nil {
		startErr = fmt.Errorf("the test server does not answer: %v", err)
		return
	}
	admin = db
}

// URL returns the test server's URL, on a database the tests may create schemas in. Without a
// server the test is skipped, or fails when LIVESNAP_REQUIRE_SERVICES=1 (as in CI).
func URL(t testing.TB) string {
	t.Helper()
	once.Do(start)
	if startErr != nil {
		if os.Getenv(envRequire) == "1" {
			t.Fatalf("PostgreSQL required (%s=1): %v", envRequire, startErr)
		}
		t.Skipf("no PostgreSQL: %v", startErr)
	}
	return baseURL
}

func newName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func adminExec(t testing.TB, query string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.ExecContext(ctx, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// Schema returns the URL of a new, empty schema (as search_path) in the test database; it is
// dropped when the test ends.
func Schema(t testing.TB) string {
	t.Helper()
	base := URL(t)
	name := newName("t_")
	adminExec(t, `CREATE SCHEMA `+name)
	t.Cleanup(func() { adminExec(t, `DROP SCHEMA `+name+` CASCADE`) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s does not parse", envURL)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Database returns the URL of a new, empty database on the test server; it is dropped when
// the test ends.
func Database(t testing.TB) string {
	t.Helper()
	base := URL(t)
	name := newName("livesnap_test_")
	adminExec(t, `CREATE DATABASE `+name)
	t.Cleanup(func() { adminExec(t, `DROP DATABASE `+name+` WITH (FORCE)`) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s does not parse", envURL)
	}
	u.Path = "/" + name
	return u.String()
}
