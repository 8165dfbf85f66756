package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/store"
	"github.com/livesnap/livesnap/internal/store/sqlstore"
	"github.com/livesnap/livesnap/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := Open(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestConformanceAcrossHandles runs the concurrency tests with several *sql.DB handles on one
// file, as several processes (serve, runners, admin commands) have them.
func TestConformanceAcrossHandles(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T, n int) []store.Store {
		path := filepath.Join(t.TempDir(), "state.db")
		var handles []store.Store
		for i := 0; i < n; i++ {
			db, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			handles = append(handles, db)
		}
		return handles
	})
}

func TestFileIsPrivateAndMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, want 0600", st.Mode().Perm())
	}
	db, err = Open(path) // re-applying must be a no-op
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestConformanceWithSealedSecrets(t *testing.T) {
	sealer, err := auth.NewSealer("test-master-key-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := Open(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return store.WithSealedSecrets(db, sealer)
	})
}

func TestSecretsAreNotStoredPlainWithAMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := auth.NewSealer("test-master-key-0123456789")
	s := store.WithSealedSecrets(db, sealer)
	ctx := context.Background()
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true, CallbackSecret: "plain-callback-secret"})
	if a.CallbackSecret != "plain-callback-secret" {
		t.Fatalf("created account has callback secret %q", a.CallbackSecret)
	}
	if err := s.CreateAccessKey(ctx, auth.AccessKey{ID: "LTAIx", AccountID: a.ID, Secret: "very-plain-secret", Policy: auth.FullAccess}); err != nil {
		t.Fatal(err)
	}
	b, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	if err := s.SetCallbackSecret(ctx, b.ID, "rotated-callback-secret"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, _ := os.ReadFile(path)
	wal, _ := os.ReadFile(path + "-wal")
	for _, secret := range []string{"very-plain-secret", "plain-callback-secret", "rotated-callback-secret", b.CallbackSecret} {
		if bytes.Contains(raw, []byte(secret)) || bytes.Contains(wal, []byte(secret)) {
			t.Fatalf("the secret %q is in the state file in plain text", secret)
		}
	}
	db, _ = Open(path)
	defer db.Close()
	if _, err := store.WithSealedSecrets(db, nil).GetAccessKey(ctx, "LTAIx"); !errors.Is(err, auth.ErrSealed) {
		t.Fatalf("reading a sealed secret without the master key: %v", err)
	}
	k, err := store.WithSealedSecrets(db, sealer).GetAccessKey(ctx, "LTAIx")
	if err != nil || k.Secret != "very-plain-secret" {
		t.Fatalf("with the master key: %q %v", k.Secret, err)
	}
	for id, want := range map[int64]string{a.ID: "plain-callback-secret", b.ID: "rotated-callback-secret"} {
		got, err := store.WithSealedSecrets(db, sealer).GetAccount(ctx, id)
		if err != nil || got.CallbackSecret != want {
			t.Fatalf("callback secret of %d with the master key: %q %v", id, got.CallbackSecret, err)
		}
	}
}

// A state file made by an older livesnap (migrations 1-4, a started job) is upgraded in place:
// its job is claimable and keeps its state.
func TestUpgradesAnOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	old := fstest.MapFS{}
	for _, name := range []string{"0001_init.sql", "0002_callbacks.sql", "0003_runtime.sql", "0004_image_settings.sql"} {
		b, err := migrations.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		old[name] = &fstest.MapFile{Data: b}
	}
	raw, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sqlstore.New(raw, Dialect).Migrate(ctx, old); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO accounts (id, job_limit, create_ms) VALUES (1000000000000001, 10, 0)`,
		`INSERT INTO jobs (id, account_id, name, template_id, template_name, time_interval, overwrite_format, sequence_format,
			status, input_type, input_url, output_type, output_endpoint, output_bucket, callback_url, create_ms, modified_ms, generation)
			VALUES ('old-job', 1000000000000001, 'n', 't', 'T', 5, '', '{Sequence}.jpg', 'started', 'rtmp', 'rtmp://h/a/b', 'oss', 'e', 'b', '', 0, 0, 3)`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ls, err := db.ClaimJobs(ctx, "h1", time.Now(), time.Minute, 10)
	if err != nil || len(ls) != 1 || ls[0].Job.ID != "old-job" || ls[0].Job.Generation != 3 || ls[0].Token != 1 {
		t.Fatalf("claim after the upgrade: %+v %v", ls, err)
	}
	if ok, err := db.TakeToken(ctx, "k", 1, 1, time.Now()); !ok || err != nil {
		t.Fatalf("rate buckets after the upgrade: %v %v", ok, err)
	}
}
