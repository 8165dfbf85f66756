package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/livesnap/livesnap/internal/api"
	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/callback"
	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/metrics"
	"github.com/livesnap/livesnap/internal/netpolicy"
	"github.com/livesnap/livesnap/internal/ratelimit"
	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/runner"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/store"
)

// credentials is the content of <data>/credentials.json.
type credentials struct {
	UserId          int64
	AccessKeyId     string
	AccessKeySecret string
	Endpoint        string
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", env("LIVESNAP_LISTEN", "127.0.0.1:8080"), "API listen address (env LIVESNAP_LISTEN)")
	dataDir := fs.String("data", env("LIVESNAP_DATA", "./data"), "state and snapshot directory (env LIVESNAP_DATA)")
	minInterval := fs.Int("min-interval", envInt("LIVESNAP_MIN_INTERVAL", 5), "smallest TimeInterval accepted, seconds (env LIVESNAP_MIN_INTERVAL)")
	probeTimeout := fs.Duration("probe-timeout", 5*time.Second, "how long start/submit wait for a stream's first video")
	rate := fs.Float64("rate-limit", envFloat("LIVESNAP_RATE_LIMIT", 100), "requests per second per access key (0: unlimited)")
	burst := fs.Float64("rate-burst", envFloat("LIVESNAP_RATE_BURST", 200), "burst of requests per access key")
	allowNet := fs.String("allow-net", env("LIVESNAP_ALLOW_NET", ""), "networks (CIDRs) stream and callback URLs may reach; empty: all but --deny-net")
	denyNet := fs.String("deny-net", env("LIVESNAP_DENY_NET", strings.Join(netpolicy.DefaultDeny, ",")), "networks (CIDRs) never reached")
	logLevel := fs.String("log-level", env("LIVESNAP_LOG_LEVEL", "info"), "debug, info, warn or error")
	ffmpegLog := fs.String("ffmpeg-log-level", env("LIVESNAP_FFMPEG_LOG_LEVEL", "fatal"), "FFmpeg's own log on stderr: quiet, fatal, error, warning, info")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *minInterval < 1 || *minInterval > 3600 {
		return fmt.Errorf("--min-interval must be from 1 to 3600")
	}
	policy, err := netpolicy.Parse(*allowNet, *denyNet)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if err := decode.SetLogLevel(*ffmpegLog); err != nil {
		return fmt.Errorf("--ffmpeg-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)

	db, closeDB, err := openStore(*dataDir)
	if err != nil {
		return err
	}
	defer closeDB()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if err := bootstrap(context.Background(), db, *dataDir, ln.Addr().String()); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	met := metrics.New()
	mgr := &runner.Manager{
		Store: db,
		Blobs: &blob.Local{Root: filepath.Join(*dataDir, "objects")},
		Open: func(ctx context.Context, in snapshot.StreamInput, readTimeout time.Duration) (source.Stream, error) {
			return source.Open(ctx, in.Type, in.URL, source.Options{ReadTimeout: readTimeout, DialContext: policy.DialContext(10 * time.Second),
				CheckAddr: policy.Check, RTSPTransport: in.Transport})
		},
		Logger:  logger,
		Metrics: met,
	}
	svc := &api.Service{
		Store: db,
		Probe: func(ctx context.Context, in snapshot.StreamInput) error {
			err := source.ProbeWith(ctx, in.Type, in.URL, source.Options{ConnectTimeout: *probeTimeout, DialContext: policy.DialContext(*probeTimeout),
				CheckAddr: policy.Check, RTSPTransport: in.Transport})
			if errors.Is(err, source.ErrStreamNotFound) || errors.Is(err, source.ErrStalled) || errors.Is(err, source.ErrEnded) {
				return fmt.Errorf("%w: %v", api.ErrStreamNotFound, err)
			}
			return err
		},
		MinInterval:  *minInterval,
		StorageTypes: []string{"oss"},
		StreamTypes:  source.Types,
		JobsChanged:  mgr.Wake,
		RateLimit:    &ratelimit.Limiter{Rate: *rate, Burst: max(*burst, 1)},
		Blobs:        mgr.Blobs,
		NetPolicy:    policy,
		Logger:       logger,
	}
	rpcServer := &rpc.Server{
		Version:   api.Version,
		Actions:   svc.Actions(),
		Keys:      svc.LookupKey,
		Nonces:    storeNonces{db},
		Authorize: svc.Authorize,
		Logger:    logger,
	}
	mux := http.NewServeMux()
	mux.Handle("/", rpcServer)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		// Ready when the store answers.
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := db.CountAccounts(ctx); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", met.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}

	dispatcher := &callback.Dispatcher{Store: db, Client: callback.NewClient(policy.DialContext(5 * time.Second)), Logger: logger,
		Delivered: met.CallbacksOK.Inc, Failed: met.CallbacksFailed.Inc}
	runnerDone := make(chan struct{})
	go func() {
		defer close(runnerDone)
		go dispatcher.Run(ctx)
		mgr.Run(ctx)
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	logger.Info("livesnap serving", "version", version, "listen", ln.Addr().String(), "data", *dataDir)
	err = srv.Serve(ln)
	<-runnerDone
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// bootstrap creates the first account and its root key on an empty store, prints them and
// writes them to <data>/credentials.json (mode 0600). LIVESNAP_ROOT_ACCESS_KEY_ID and
// LIVESNAP_ROOT_ACCESS_KEY_SECRET, when set, give the root key instead of a random one.
func bootstrap(ctx context.Context, db store.Store, dataDir, endpoint string) error {
	id, secret := os.Getenv("LIVESNAP_ROOT_ACCESS_KEY_ID"), os.Getenv("LIVESNAP_ROOT_ACCESS_KEY_SECRET")
	if (id == "") != (secret == "") {
		return fmt.Errorf("set both LIVESNAP_ROOT_ACCESS_KEY_ID and LIVESNAP_ROOT_ACCESS_KEY_SECRET, or neither")
	}
	n, err := db.CountAccounts(ctx)
	if err != nil || n > 0 {
		if err == nil && id != "" {
			if _, kerr := db.GetAccessKey(ctx, id); errors.Is(kerr, store.ErrNotFound) {
				return fmt.Errorf("LIVESNAP_ROOT_ACCESS_KEY_ID %s is not a key of this store (the store was bootstrapped with another key)", id)
			}
		}
		return err
	}
	if id == "" {
		id, secret = auth.NewKeyPair()
	}
	acct, err := db.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	if err != nil {
		return err
	}
	if err := db.CreateAccessKey(ctx, auth.AccessKey{ID: id, AccountID: acct.ID, Secret: secret, Policy: auth.FullAccess}); err != nil {
		return err
	}
	creds := credentials{UserId: acct.ID, AccessKeyId: id, AccessKeySecret: secret, Endpoint: endpoint}
	b, _ := json.MarshalIndent(creds, "", "  ")
	path := filepath.Join(dataDir, "credentials.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "livesnap: created account %d with root access key\n  AccessKeyId:     %s\n  AccessKeySecret: %s\n  (saved to %s, mode 0600)\n",
		acct.ID, id, secret, path)
	return nil
}

// storeNonces adapts the store's nonce table to rpc.NonceChecker, so replay protection
// survives restarts and is shared by every process on the store.
type storeNonces struct{ s store.Store }

func (n storeNonces) UseNonce(ctx context.Context, keyID, nonce string, expiresAt time.Time) (bool, error) {
	return n.s.UseNonce(ctx, keyID, nonce, expiresAt)
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
