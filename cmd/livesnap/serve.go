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
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livesnap/livesnap/internal/api"
	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/callback"
	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/metrics"
	"github.com/livesnap/livesnap/internal/netpolicy"
	"github.com/livesnap/livesnap/internal/ratelimit"
	"github.com/livesnap/livesnap/internal/redact"
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
	CallbackSecret  string `json:",omitempty"` // signs the account's callbacks
}

// serveConfig is everything `serve` is told. Runner children get it as JSON in
// LIVESNAP_RUNNER_CONFIG, so a setting is defined once and reaches every process.
type serveConfig struct {
	Listen       string
	Data         string
	Store        string // store URL; empty: SQLite in Data
	MinInterval  int
	ProbeTimeout time.Duration
	Rate, Burst  float64
	AllowNet     string
	DenyNet      string
	LogLevel     string
	// FFmpegLogLevel is what FFmpeg's own log shows on stderr (ffmpeg's -loglevel names).
	FFmpegLogLevel string
	Runners        int // runner child processes; 0: run the pipelines in this process
	APIOnly        bool
	RunnerOnly     bool
	LeaseTTL       time.Duration
	// StorageConfig is the JSON file of outputs (blob.Config); empty: oss at any endpoint
	// into <data>/objects.
	StorageConfig string
}

func parseServeFlags(args []string) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", env("LIVESNAP_LISTEN", "127.0.0.1:8080"), "API listen address (env LIVESNAP_LISTEN)")
	fs.StringVar(&c.Data, "data", env("LIVESNAP_DATA", "./data"), "state and snapshot directory (env LIVESNAP_DATA)")
	storeURL := storeFlag(fs)
	fs.IntVar(&c.MinInterval, "min-interval", envInt("LIVESNAP_MIN_INTERVAL", 5), "smallest TimeInterval accepted, seconds (env LIVESNAP_MIN_INTERVAL)")
	fs.DurationVar(&c.ProbeTimeout, "probe-timeout", 5*time.Second, "how long start/submit wait for a stream's first video")
	fs.Float64Var(&c.Rate, "rate-limit", envFloat("LIVESNAP_RATE_LIMIT", 100), "requests per second per access key (0: unlimited)")
	fs.Float64Var(&c.Burst, "rate-burst", envFloat("LIVESNAP_RATE_BURST", 200), "burst of requests per access key")
	fs.StringVar(&c.AllowNet, "allow-net", env("LIVESNAP_ALLOW_NET", ""), "networks (CIDRs) stream and callback URLs may reach; empty: all but --deny-net")
	fs.StringVar(&c.DenyNet, "deny-net", env("LIVESNAP_DENY_NET", strings.Join(netpolicy.DefaultDeny, ",")), "networks (CIDRs) never reached")
	fs.StringVar(&c.LogLevel, "log-level", env("LIVESNAP_LOG_LEVEL", "info"), "debug, info, warn or error")
	fs.IntVar(&c.Runners, "runners", envInt("LIVESNAP_RUNNERS", runtime.NumCPU()), "runner processes (env LIVESNAP_RUNNERS); 0 runs the pipelines inside this process")
	fs.BoolVar(&c.APIOnly, "api-only", false, "serve the API only; other nodes run the pipelines")
	fs.BoolVar(&c.RunnerOnly, "runner-only", false, "run pipelines only (no API); for nodes of a cluster")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", runner.DefaultLeaseTTL, "how long a runner's job leases last without renewal (a dead runner's jobs move after this)")
	fs.StringVar(&c.StorageConfig, "storage-config", env("LIVESNAP_STORAGE_CONFIG", ""), "JSON file of SnapshotOutputs and their backends (env LIVESNAP_STORAGE_CONFIG); empty: oss at any endpoint into <data>/objects")
	fs.StringVar(&c.FFmpegLogLevel, "ffmpeg-log-level", env("LIVESNAP_FFMPEG_LOG_LEVEL", "fatal"), "FFmpeg's own log on stderr: quiet, fatal, error, warning, info")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.Store = *storeURL
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("serve takes no arguments (got %q)", fs.Args())
	case c.MinInterval < 1 || c.MinInterval > 3600:
		return c, fmt.Errorf("--min-interval must be from 1 to 3600")
	case c.APIOnly && c.RunnerOnly:
		return c, fmt.Errorf("--api-only and --runner-only exclude each other")
	case c.Runners < 0 || c.Runners > 256:
		return c, fmt.Errorf("--runners must be from 0 to 256")
	case c.LeaseTTL < 3*time.Second || c.LeaseTTL > 5*time.Minute:
		return c, fmt.Errorf("--lease-ttl must be from 3s to 5m")
	}
	if _, err := c.netPolicy(); err != nil {
		return c, err
	}
	if _, err := c.logLevel(); err != nil {
		return c, err
	}
	if err := decode.SetLogLevel(c.FFmpegLogLevel); err != nil {
		return c, fmt.Errorf("--ffmpeg-log-level: %w", err)
	}
	return c, nil
}

func (c serveConfig) netPolicy() (*netpolicy.Policy, error) {
	return netpolicy.Parse(c.AllowNet, c.DenyNet)
}

func (c serveConfig) logLevel() (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return level, fmt.Errorf("--log-level: %w", err)
	}
	return level, nil
}

func (c serveConfig) logger(attrs ...any) *slog.Logger {
	level, _ := c.logLevel()
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With(attrs...)
}

func (c serveConfig) openStore() (store.Store, func() error, error) {
	return openStore(c.Data, c.Store)
}

// outputs builds the object outputs: the storage configuration file when there is one, else
// oss at any endpoint into <data>/objects. With logger it logs where each output goes (never
// a secret).
func (c serveConfig) outputs(logger *slog.Logger) (*blob.Router, error) {
	objects := filepath.Join(c.Data, "objects")
	if c.StorageConfig == "" {
		return blob.DefaultRouter(objects), nil
	}
	cfg, err := blob.LoadConfig(c.StorageConfig)
	if err != nil {
		return nil, err
	}
	r, err := cfg.Router(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("storage config %s: %w", c.StorageConfig, err)
	}
	if logger != nil {
		if st, err := os.Stat(c.StorageConfig); err == nil && st.Mode().Perm()&0o077 != 0 && cfg.InlineSecrets() {
			logger.Warn("the storage config holds secrets and others may read it: chmod 600, or name environment variables in SecretAccessKeyEnv", "file", c.StorageConfig)
		}
		for _, rt := range r.Routes() {
			logger.Info("storage output", "storage_type", rt.StorageType, "endpoint", rt.Endpoint, "buckets", strings.Join(rt.Buckets, ","),
				"accounts", fmt.Sprint(rt.Accounts), "backend", rt.Backend)
		}
	}
	return r, nil
}

// newManager builds a lease holder that runs pipelines in this process.
func (c serveConfig) newManager(db store.Store, blobs blob.Writer, holder string, logger *slog.Logger, met *metrics.Metrics) (*runner.Manager, error) {
	policy, err := c.netPolicy()
	if err != nil {
		return nil, err
	}
	met.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "livesnap_c_heap_bytes",
		Help: "C heap in use (FFmpeg's contexts, packets and frames) in this process."},
		func() float64 { return float64(decode.CHeapInUse()) }))
	return &runner.Manager{
		Store:    db,
		Blobs:    blobs,
		HolderID: holder,
		LeaseTTL: c.LeaseTTL,
		Open: func(ctx context.Context, in snapshot.StreamInput, readTimeout time.Duration) (source.Stream, error) {
			return source.Open(ctx, in.Type, in.URL, source.Options{ReadTimeout: readTimeout, DialContext: policy.DialContext(10 * time.Second),
				CoalesceReads: source.LiveReadPeriod,
				CheckAddr:     policy.Check, RTSPTransport: in.Transport})
		},
		Logger:  logger,
		Metrics: met,
	}, nil
}

func serve(args []string) error {
	cfg, err := parseServeFlags(args)
	if err != nil {
		return err
	}
	policy, _ := cfg.netPolicy()
	logger := cfg.logger()
	slog.SetDefault(logger)
	outputs, err := cfg.outputs(logger)
	if err != nil {
		return err
	}

	db, closeDB, err := cfg.openStore()
	if err != nil {
		return err
	}
	defer closeDB()

	var ln net.Listener
	if !cfg.RunnerOnly {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return err
		}
		if err := bootstrap(context.Background(), db, cfg.Data, ln.Addr().String()); err != nil {
			return err
		}
		// Buckets that jobs from before bucket ownership write to go to their oldest job's account.
		if err := (&api.Service{Store: db, Outputs: outputs, Logger: logger}).ClaimBucketsOfExistingJobs(context.Background()); err != nil {
			return fmt.Errorf("bucket owners: %w", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	met := metrics.New()
	gatherers := prometheus.Gatherers{metrics.Labeled{G: met.Registry, Name: "process", Value: "serve"}}

	// The pipelines: in runner child processes (a codec crash takes down one runner, never
	// the API), or in this process with --runners 0.
	var wake func()
	var background []func()
	if !cfg.APIOnly {
		if cfg.Runners == 0 {
			mgr, err := cfg.newManager(db, outputs, "", logger, met)
			if err != nil {
				return err
			}
			wake = mgr.Wake
			background = append(background, func() { mgr.Run(ctx) })
		} else {
			procs, err := newRunnerProcs(cfg, db, logger)
			if err != nil {
				return err
			}
			defer procs.cleanup()
			gatherers = append(gatherers, procs.gatherers()...)
			background = append(background, func() { procs.run(ctx) })
		}
	}

	dispatcher := &callback.Dispatcher{Store: db, Client: callback.NewClient(policy.DialContext(5 * time.Second)), Logger: logger,
		Delivered: met.CallbacksOK.Inc, Failed: met.CallbacksFailed.Inc}
	background = append(background, func() { dispatcher.Run(ctx) })

	done := make(chan struct{}, len(background))
	for _, f := range background {
		go func() { defer func() { done <- struct{}{} }(); f() }()
	}
	defer func() {
		logger.Info("livesnap stopping: waiting for the runners and background work")
		for range background {
			<-done
		}
		logger.Info("livesnap stopped")
	}()

	if cfg.RunnerOnly {
		logger.Info("livesnap running pipelines only", "version", version, "runners", cfg.Runners)
		<-ctx.Done()
		return nil
	}
	srv := &http.Server{Handler: cfg.apiHandler(db, outputs, policy, wake, met, gatherers, logger), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	logger.Info("livesnap serving", "version", version, "listen", ln.Addr().String(), "data", cfg.Data, "runners", cfg.Runners, "api_only", cfg.APIOnly)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		stop()
		return err
	}
	return nil
}

// apiHandler is the HTTP side: the ICE RPC endpoint, health, readiness and metrics.
func (c serveConfig) apiHandler(db store.Store, outputs *blob.Router, policy *netpolicy.Policy, jobsChanged func(), met *metrics.Metrics,
	gatherers prometheus.Gatherers, logger *slog.Logger) http.Handler {
	svc := &api.Service{
		Store: db,
		Probe: func(ctx context.Context, in snapshot.StreamInput) error {
			err := c.probe(ctx, in)
			if errors.Is(err, netpolicy.ErrRefused) {
				// Not "no such stream": the operator's policy refuses where the name leads.
				logger.Info("stream refused by the network policy", "url", redact.URL(in.URL), "err", err)
			}
			return err
		},
		MinInterval:  c.MinInterval,
		StorageTypes: outputs.StorageTypes(),
		Outputs:      outputs,
		StreamTypes:  source.Types,
		CheckStream:  func(in snapshot.StreamInput) error { return source.CheckURL(in.Type, in.URL) },
		JobsChanged:  jobsChanged,
		RateLimit:    sharedRateLimit(c.Rate, c.Burst, db),
		Blobs:        outputs,
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
	mux.Handle("GET /metrics", metrics.HandlerFor(gatherers))
	return mux
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
	acct, created, err := db.CreateFirstAccount(ctx, auth.Account{ServiceEnabled: true}, auth.AccessKey{ID: id, Secret: secret, Policy: auth.FullAccess})
	if err != nil {
		return err
	}
	if !created { // another node bootstrapped the store just now: check as for any bootstrapped store
		return bootstrap(ctx, db, dataDir, endpoint)
	}
	creds := credentials{UserId: acct.ID, AccessKeyId: id, AccessKeySecret: secret, Endpoint: endpoint, CallbackSecret: acct.CallbackSecret}
	b, _ := json.MarshalIndent(creds, "", "  ")
	path := filepath.Join(dataDir, "credentials.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "livesnap: created account %d with root access key\n  AccessKeyId:     %s\n  AccessKeySecret: %s\n  CallbackSecret:  %s\n  (saved to %s, mode 0600)\n",
		acct.ID, id, secret, acct.CallbackSecret, path)
	return nil
}

// storeNonces adapts the store's nonce table to rpc.NonceChecker, so replay protection
// survives restarts and is shared by every process on the store.
type storeNonces struct{ s store.Store }

func (n storeNonces) UseNonce(ctx context.Context, keyID, nonce string, expiresAt time.Time) (bool, error) {
	return n.s.UseNonce(ctx, keyID, nonce, expiresAt)
}

// sharedRateLimit counts each key's requests in the store, so every node on it enforces one
// rate together, with this node's own bucket in front to turn floods away cheaply.
func sharedRateLimit(rate, burst float64, db store.Store) *ratelimit.Shared {
	burst = max(burst, 1)
	return &ratelimit.Shared{Rate: rate, Burst: burst, Buckets: db, Local: &ratelimit.Limiter{Rate: rate, Burst: burst}}
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
