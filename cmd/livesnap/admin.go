package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/store"
	"github.com/livesnap/livesnap/internal/store/postgres"
	"github.com/livesnap/livesnap/internal/store/sqlite"
)

// storeFlag defines --store: where the state lives. Its default stays empty (LIVESNAP_STORE is
// read by openStore), so -h never prints a password from the environment.
func storeFlag(fs *flag.FlagSet) *string {
	return fs.String("store", "",
		"state store: postgres://user:password@host:port/db?sslmode=... or sqlite://PATH (env LIVESNAP_STORE; default: SQLite in <data>/livesnap.db)")
}

// openStore opens the state store: storeURL's, or SQLite in the data directory when it is
// empty; access key secrets are sealed by LIVESNAP_MASTER_KEY when it is set. Errors never
// show a password.
func openStore(dataDir, storeURL string) (store.Store, func() error, error) {
	var sealer *auth.Sealer
	if mk := os.Getenv("LIVESNAP_MASTER_KEY"); mk != "" {
		var err error
		if sealer, err = auth.NewSealer(mk); err != nil {
			return nil, nil, fmt.Errorf("LIVESNAP_MASTER_KEY: %w", err)
		}
	}
	if storeURL == "" {
		storeURL = os.Getenv("LIVESNAP_STORE")
	}
	var db store.Store
	switch scheme, rest, _ := strings.Cut(storeURL, "://"); {
	case storeURL == "":
		s, err := sqlite.Open(filepath.Join(dataDir, "livesnap.db"))
		if err != nil {
			return nil, nil, err
		}
		db = s
	case scheme == "sqlite":
		if rest == "" {
			return nil, nil, fmt.Errorf("--store sqlite://PATH: the path is missing")
		}
		s, err := sqlite.Open(rest)
		if err != nil {
			return nil, nil, err
		}
		db = s
	case scheme == "postgres" || scheme == "postgresql":
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := postgres.Open(ctx, storeURL)
		if err != nil {
			return nil, nil, err
		}
		db = s
	default:
		return nil, nil, fmt.Errorf("--store %s: want postgres://user:password@host:port/database or sqlite://PATH", postgres.Redact(storeURL))
	}
	return store.WithSealedSecrets(db, sealer), db.Close, nil
}

// accounts runs `livesnap accounts SUBCOMMAND`: administration straight on the store, safe
// while serve runs.
func accounts(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: livesnap accounts create|disable|enable|enable-service|disable-service|set-limit|rotate-callback-secret [flags]")
	}
	sub := args[0]
	fs := flag.NewFlagSet("accounts "+sub, flag.ContinueOnError)
	dataDir := fs.String("data", env("LIVESNAP_DATA", "./data"), "data directory")
	storeURL := storeFlag(fs)
	id := fs.Int64("account", 0, "account id (UserId)")
	serviceEnabled := fs.Bool("service-enabled", true, "with create: whether the account may use the ICE actions")
	limit := fs.Int("limit", 0, "with set-limit: the number of jobs the account may run at once")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	db, closeDB, err := openStore(*dataDir, *storeURL)
	if err != nil {
		return err
	}
	defer closeDB()
	ctx := context.Background()
	if sub == "create" {
		a, err := db.CreateAccount(ctx, auth.Account{ServiceEnabled: *serviceEnabled})
		if err != nil {
			return err
		}
		// The callback secret is shown once, here: receivers need it to check signatures.
		return printJSON(stdout, map[string]any{"UserId": a.ID, "CallbackSecret": a.CallbackSecret})
	}
	if *id == 0 {
		return fmt.Errorf("--account is required")
	}
	a, err := db.GetAccount(ctx, *id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no account %d", *id)
	}
	if err != nil {
		return err
	}
	switch sub {
	case "disable":
		a.Disabled = true
	case "enable":
		a.Disabled = false
	case "enable-service":
		a.ServiceEnabled = true
	case "disable-service":
		a.ServiceEnabled = false
	case "set-limit":
		if *limit < 1 || *limit > 100000 {
			return fmt.Errorf("--limit must be from 1 to 100000")
		}
		a.JobLimit = *limit
	case "rotate-callback-secret":
		secret := auth.NewCallbackSecret()
		if err := db.SetCallbackSecret(ctx, a.ID, secret); err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"UserId": a.ID, "CallbackSecret": secret})
	default:
		return fmt.Errorf("unknown accounts command %q", sub)
	}
	if err := db.UpdateAccount(ctx, a); err != nil {
		return err
	}
	return printJSON(stdout, map[string]any{"UserId": a.ID, "Disabled": a.Disabled, "ServiceEnabled": a.ServiceEnabled, "JobLimit": a.JobLimit})
}

// keys runs `livesnap keys SUBCOMMAND`.
func keys(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: livesnap keys create|list|disable|enable|delete [flags]")
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	dataDir := fs.String("data", env("LIVESNAP_DATA", "./data"), "data directory")
	storeURL := storeFlag(fs)
	account := fs.Int64("account", 0, "account id (UserId)")
	policy := fs.String("policy", "ice:*", "with create: allowed actions, comma-separated (e.g. 'ice:Get*,ice:List*')")
	keyID := fs.String("key", "", "access key id (disable, enable, delete)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	db, closeDB, err := openStore(*dataDir, *storeURL)
	if err != nil {
		return err
	}
	defer closeDB()
	ctx := context.Background()
	switch sub {
	case "create":
		if _, err := db.GetAccount(ctx, *account); err != nil {
			return fmt.Errorf("--account %d: %w", *account, err)
		}
		pol, err := parsePolicy(*policy)
		if err != nil {
			return err
		}
		id, secret := auth.NewKeyPair()
		if err := db.CreateAccessKey(ctx, auth.AccessKey{ID: id, AccountID: *account, Secret: secret, Policy: pol}); err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"UserId": *account, "AccessKeyId": id, "AccessKeySecret": secret, "Policy": pol})
	case "list":
		list, err := db.ListAccessKeys(ctx, *account)
		if err != nil {
			return err
		}
		out := []map[string]any{}
		for _, k := range list {
			out = append(out, map[string]any{"UserId": k.AccountID, "AccessKeyId": k.ID, "Disabled": k.Disabled, "Policy": k.Policy,
				"CreateTime": k.CreateTime.UTC().Format("2006-01-02T15:04:05Z")})
		}
		return printJSON(stdout, out)
	case "disable", "enable", "delete":
		if *keyID == "" {
			return fmt.Errorf("--key is required")
		}
		if sub == "delete" {
			err = db.DeleteAccessKey(ctx, *keyID)
		} else {
			err = db.SetAccessKeyDisabled(ctx, *keyID, sub == "disable")
		}
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no access key %s", *keyID)
		}
		if err != nil {
			return err
		}
		return printJSON(stdout, map[string]any{"AccessKeyId": *keyID, "Result": sub + "d"})
	}
	return fmt.Errorf("unknown keys command %q", sub)
}

// parsePolicy checks a comma-separated list of "ice:<Action pattern>" entries.
func parsePolicy(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		pat, ok := strings.CutPrefix(p, "ice:")
		if !ok || pat == "" || strings.Trim(pat, "*ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
			return nil, fmt.Errorf("policy entry %q: want ice:<Action> with letters and * only", p)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty policy")
	}
	return out, nil
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
