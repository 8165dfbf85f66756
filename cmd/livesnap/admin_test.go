package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/livesnap/livesnap/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestOpenStoreChoosesByURL(t *testing.T) {
	dir := t.TempDir()
	for name, u := range map[string]string{"default": "", "sqlite URL": "sqlite://" + filepath.Join(dir, "other", "state.db")} {
		t.Run(name, func(t *testing.T) {
			db, closeDB, err := openStore(dir, u)
			if err != nil {
				t.Fatal(err)
			}
			defer closeDB()
			if _, err := db.CountAccounts(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, p := range []string{filepath.Join(dir, "livesnap.db"), filepath.Join(dir, "other", "state.db")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("no state file: %v", err)
		}
	}
}

func TestOpenStoreErrorsNeverShowThePassword(t *testing.T) {
	const secret = "n0t-for-logs"
	for _, u := range []string{
		"mysql://u:" + secret + "@127.0.0.1/db",
		"postgres://u:" + secret + "@127.0.0.1:1/db",
		"postgres://u:" + secret + "@127.0.0.1:99999/db",
		"postgres://u:" + secret + "@127.0.0.1:1/db?sslmode=bogus",
		"sqlite://",
	} {
		_, _, err := openStore(t.TempDir(), u)
		if err == nil {
			t.Fatalf("%s: opened", strings.ReplaceAll(u, secret, "xxxxx"))
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("the error shows the password: %v", err)
		}
		t.Logf("%v", err)
	}
}

// The flag's help never prints the environment's store URL (it may hold a password).
func TestStoreFlagHelpHidesTheEnvironment(t *testing.T) {
	t.Setenv("LIVESNAP_STORE", "postgres://u:hidden-pw@h/db")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	storeFlag(fs)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.PrintDefaults()
	if strings.Contains(out.String(), "hidden-pw") {
		t.Fatalf("help shows the password: %s", out.String())
	}
}

// The admin commands reach a PostgreSQL store through --store and LIVESNAP_STORE.
func TestAdminCommandsOnPostgres(t *testing.T) {
	u := pgtest.Schema(t)
	var out bytes.Buffer
	if err := accounts([]string{"create", "--store", u}, &out); err != nil {
		t.Fatal(err)
	}
	var acct struct{ UserId int64 }
	if err := json.Unmarshal(out.Bytes(), &acct); err != nil || acct.UserId == 0 {
		t.Fatalf("accounts create printed %q", out.String())
	}
	t.Setenv("LIVESNAP_STORE", u)
	out.Reset()
	if err := keys([]string{"create", "--account", itoa(acct.UserId)}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := keys([]string{"list"}, &out); err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal(out.Bytes(), &list); err != nil || len(list) != 1 {
		t.Fatalf("keys list printed %q", out.String())
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
