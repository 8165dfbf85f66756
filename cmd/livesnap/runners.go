package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/metrics"
	"github.com/livesnap/livesnap/internal/runner"
	"github.com/livesnap/livesnap/internal/store"
)

// runnerConfigEnv carries serve's configuration to its runner children.
const runnerConfigEnv = "LIVESNAP_RUNNER_CONFIG"

// Restart backoff for runner children that exit.
const (
	minRunnerBackoff = 500 * time.Millisecond
	maxRunnerBackoff = 30 * time.Second
	// A runner that ran this long before exiting is restarted at once.
	runnerHealthyAfter = time.Minute
)

// runnerProcs keeps N runner child processes alive: re-executions of this binary, each one
// lease holder. A child that exits (a codec crash, an OOM kill) is restarted with backoff,
// and its leases are released at once so its jobs move without waiting for the TTL.
type runnerProcs struct {
	cfg    serveConfig
	db     store.Store
	log    *slog.Logger
	exe    string
	dir    string // private directory for the children's metrics sockets
	prefix string // holder ids: prefix + index + restart
}

func newRunnerProcs(cfg serveConfig, db store.Store, log *slog.Logger) (*runnerProcs, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for runner processes: %w", err)
	}
	dir, err := os.MkdirTemp("", "livesnap-runners-")
	if err != nil {
		return nil, err
	}
	return &runnerProcs{cfg: cfg, db: db, log: log, exe: exe, dir: dir, prefix: runner.NewHolderID()}, nil
}

func (p *runnerProcs) socket(i int) string {
	return filepath.Join(p.dir, fmt.Sprintf("runner-%d.sock", i))
}

// gatherers collects each child's metrics, labelled process="runner-N".
func (p *runnerProcs) gatherers() []prometheus.Gatherer {
	var out []prometheus.Gatherer
	for i := 1; i <= p.cfg.Runners; i++ {
		out = append(out, metrics.Labeled{G: metrics.Remote{Socket: p.socket(i)}, Name: "process", Value: fmt.Sprintf("runner-%d", i)})
	}
	return out
}

// run starts the children and keeps them running until ctx ends; then it stops them
// (SIGTERM, then SIGKILL after 15 s) and waits.
func (p *runnerProcs) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 1; i <= p.cfg.Runners; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); p.keep(ctx, i) }()
	}
	wg.Wait()
}

func (p *runnerProcs) cleanup() { os.RemoveAll(p.dir) }

// keep runs runner i, restarting it whenever it exits, until ctx ends.
func (p *runnerProcs) keep(ctx context.Context, i int) {
	// The child is told to die with the thread that started it (Pdeathsig); keep this
	// goroutine on one thread for the child's whole life.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	backoff := minRunnerBackoff
	for restart := 0; ctx.Err() == nil; restart++ {
		holder := fmt.Sprintf("%s-r%d.%d", p.prefix, i, restart)
		log := p.log.With("runner", i, "holder", holder)
		started := time.Now()
		err := p.runOnce(ctx, i, holder)
		// Whatever the way it ended, its leases are free now.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if rerr := p.db.ReleaseHolder(rctx, holder); rerr != nil {
			log.Warn("release leases of exited runner", "err", rerr)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > runnerHealthyAfter {
			backoff = minRunnerBackoff
		}
		log.Error("runner process exited; restarting", "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxRunnerBackoff)
	}
}

// runOnce starts runner i and waits for it to exit.
func (p *runnerProcs) runOnce(ctx context.Context, i int, holder string) error {
	cfg, err := json.Marshal(p.cfg)
	if err != nil {
		return err
	}
	os.Remove(p.socket(i))
	cmd := exec.Command(p.exe, "runner", "--holder", holder, "--metrics-socket", p.socket(i), "--index", strconv.Itoa(i))
	cmd.Env = append(os.Environ(), runnerConfigEnv+"="+string(cfg))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// The parent's end of this pipe closes when the parent dies, however it dies: the child
	// watches for that as well as for Pdeathsig.
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdin = pr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	pr.Close()
	defer pw.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return err
	case <-ctx.Done():
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return err
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		return <-exited
	}
}

// runnerChild is `livesnap runner`: one lease holder process, started by serve (not meant to
// be run by hand). It exits when its parent goes away.
func runnerChild(args []string) error {
	fs := flag.NewFlagSet("runner", flag.ContinueOnError)
	holder := fs.String("holder", "", "lease holder id (unique among live holders)")
	socket := fs.String("metrics-socket", "", "Unix socket to serve /metrics on")
	index := fs.Int("index", 0, "runner number, for logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg serveConfig
	raw := os.Getenv(runnerConfigEnv)
	if raw == "" || *holder == "" {
		return errors.New("runner is started by `livesnap serve`, not by hand")
	}
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return fmt.Errorf("%s: %w", runnerConfigEnv, err)
	}
	logger := cfg.logger("runner", *index)
	slog.SetDefault(logger)
	// serve starts about one runner per CPU: each one on its own share of the CPUs spends less
	// on scheduler wake-ups across idle threads (and decodes that many pictures at once).
	if os.Getenv("GOMAXPROCS") == "" && cfg.Runners > 0 {
		runtime.GOMAXPROCS(max(1, runtime.NumCPU()/cfg.Runners))
	}
	if err := decode.SetLogLevel(cfg.FFmpegLogLevel); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		io.Copy(io.Discard, os.Stdin) // returns when the parent's end closes
		stop()
	}()

	db, closeDB, err := cfg.openStore()
	if err != nil {
		return err
	}
	defer closeDB()
	met := metrics.New()
	if *socket != "" {
		ln, err := net.Listen("unix", *socket)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: runnerDebugMux(met), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}
	outputs, err := cfg.outputs(nil)
	if err != nil {
		return err
	}
	mgr, err := cfg.newManager(db, outputs, *holder, logger, met)
	if err != nil {
		return err
	}
	logger.Info("runner started", "holder", *holder, "pid", os.Getpid())
	return mgr.Run(ctx)
}

// runnerDebugMux serves a runner's /metrics (which serve gathers) and Go's profiles under
// /debug/pprof/ on its Unix socket, which only the service's own user can reach: a runner's
// CPU and heap are then profiled in place (`curl --unix-socket runner-0.sock
// http://x/debug/pprof/heap`).
func runnerDebugMux(met *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", met.Handler())
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	return mux
}
