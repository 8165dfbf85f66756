package sqlite

import (
	"bytes"
	"context"
	"errors"

	"github.com/livesnap/livesnap/internal/auth"
	"os"
	"path/filepath"
	"testing"

	"github.com/livesnap/livesnap/internal/store"
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
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	if err := s.CreateAccessKey(ctx, auth.AccessKey{ID: "LTAIx", AccountID: a.ID, Secret: "very-plain-secret", Policy: auth.FullAccess}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, _ := os.ReadFile(path)
	wal, _ := os.ReadFile(path + "-wal")
	if bytes.Contains(raw, []byte("very-plain-secret")) || bytes.Contains(wal, []byte("very-plain-secret")) {
		t.Fatal("the secret is in the state file in plain text")
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
}
