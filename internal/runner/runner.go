// Package runner runs the capture pipelines of started jobs: one supervisor per job, rebuilt
// when the job's generation changes, stopped when the job stops. It reconnects to streams with
// backoff and records every capture as objects plus file records.
package runner

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/metrics"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/store"
)

// OpenFunc opens a job's input stream; readTimeout is the longest silence before Read fails
// with source.ErrStalled.
type OpenFunc func(ctx context.Context, in snapshot.StreamInput, readTimeout time.Duration) (source.Stream, error)

// Manager keeps exactly one supervisor running for every started job in the store.
type Manager struct {
	Store store.Store
	Blobs blob.Writer
	Open  OpenFunc
	// Poll is how often the store is re-read when nobody calls Wake; 0 → 1 s.
	Poll    time.Duration
	Logger  *slog.Logger
	Metrics *metrics.Metrics // nil: no metrics
	// Decoders is shared by every pipeline: a stream holds a decoder only while a snapshot
	// is being made. Nil: a pool of GOMAXPROCS decoders made on first use.
	Decoders *decode.Pool

	wake    chan struct{}
	mu      sync.Mutex
	running map[string]*supervisor

	// sessions counts open stream sessions per job, to prove there is never more than one.
	sessionsMu  sync.Mutex
	sessions    map[string]int
	maxSessions int
}

// sessionStarted and sessionEnded track open stream sessions per job.
func (m *Manager) sessionStarted(job string) {
	m.sessionsMu.Lock()
	defer m.sessionsMu.Unlock()
	if m.sessions == nil {
		m.sessions = make(map[string]int)
	}
	m.sessions[job]++
	m.maxSessions = max(m.maxSessions, m.sessions[job])
}

func (m *Manager) sessionEnded(job string) {
	m.sessionsMu.Lock()
	defer m.sessionsMu.Unlock()
	if m.sessions[job]--; m.sessions[job] == 0 {
		delete(m.sessions, job)
	}
}

// MaxConcurrentSessions is the most stream sessions one job ever had open at once (1 when the
// one-pipeline-per-job rule holds).
func (m *Manager) MaxConcurrentSessions() int {
	m.sessionsMu.Lock()
	defer m.sessionsMu.Unlock()
	return m.maxSessions
}

func (m *Manager) decoders() *decode.Pool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Decoders == nil {
		m.Decoders = &decode.Pool{}
	}
	return m.Decoders
}

// Wake makes the manager re-read the store now (called after a job command).
func (m *Manager) Wake() {
	m.init()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) init() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.wake == nil {
		m.wake = make(chan struct{}, 1)
		m.running = make(map[string]*supervisor)
	}
}

// Run reconciles until ctx ends, then stops every supervisor and waits for them.
func (m *Manager) Run(ctx context.Context) error {
	m.init()
	poll := m.Poll
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if err := m.reconcile(ctx); err != nil && ctx.Err() == nil {
			m.logger().Error("reconcile jobs", "err", err)
		}
		select {
		case <-ctx.Done():
			m.stopAll()
			m.decoders().Close()
			return nil
		case <-t.C:
		case <-m.wake:
		}
	}
}

// reconcile starts supervisors for new started jobs (or new generations) and stops the rest.
func (m *Manager) reconcile(ctx context.Context) error {
	jobs, err := m.Store.ListStartedJobs(ctx)
	if err != nil {
		return err
	}
	want := make(map[string]snapshot.Job, len(jobs))
	for _, j := range jobs {
		want[j.ID] = j
	}
	m.mu.Lock()
	var stopping []*supervisor
	for id, sup := range m.running {
		if j, ok := want[id]; !ok || j.Generation != sup.job.Generation {
			stopping = append(stopping, sup)
			delete(m.running, id)
		}
	}
	m.mu.Unlock()
	// Stop before starting, so there is never more than one pipeline per job.
	for _, sup := range stopping {
		sup.stop()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, j := range want {
		if _, ok := m.running[id]; ok {
			continue
		}
		sup := newSupervisor(ctx, m, j)
		m.running[id] = sup
	}
	return nil
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	sups := make([]*supervisor, 0, len(m.running))
	for id, s := range m.running {
		sups = append(sups, s)
		delete(m.running, id)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sups {
		wg.Add(1)
		go func() { defer wg.Done(); s.stop() }()
	}
	wg.Wait()
}

// Running returns how many pipelines run now.
func (m *Manager) Running() int {
	m.init()
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.running)
}

// gauge moves the jobs-by-run-state gauge.
func (m *Manager) gauge(state string, delta float64) {
	if m.Metrics != nil && state != "" {
		m.Metrics.JobsByRunState.WithLabelValues(state).Add(delta)
	}
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}
