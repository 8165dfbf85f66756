// Package runner runs the capture pipelines of started jobs. A Manager is one lease holder:
// it claims started jobs from the store (store.Leases), renews its leases in one batch, runs
// one supervisor per held job (rebuilt when the job's generation changes), and gives up or
// stops pipelines whose leases it no longer holds. Any number of Managers, in any number of
// processes and nodes, share one store; each started job runs in exactly one of them.
package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/metrics"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/store"
)

// Lease timing defaults.
const (
	// DefaultLeaseTTL is how long a lease lasts without renewal: a holder that dies loses
	// its jobs to the others after at most this long.
	DefaultLeaseTTL = 10 * time.Second
	// DefaultPoll is how often the store's jobs version is checked for commands.
	DefaultPoll = 250 * time.Millisecond
)

// OpenFunc opens a job's input stream; readTimeout is the longest silence before Read fails
// with source.ErrStalled.
type OpenFunc func(ctx context.Context, in snapshot.StreamInput, readTimeout time.Duration) (source.Stream, error)

// Manager is one lease holder running the pipelines of the jobs it holds.
type Manager struct {
	Store store.Store
	Blobs blob.Writer
	Open  OpenFunc
	// HolderID names this holder in the store; it must be unique among live holders.
	// Empty: host-pid-random.
	HolderID string
	// LeaseTTL: 0 → DefaultLeaseTTL. Leases are renewed every LeaseTTL/3.
	LeaseTTL time.Duration
	// Poll is how often the store is checked for job commands; 0 → DefaultPoll.
	Poll time.Duration
	// MaxJobs caps the jobs this holder takes (0: no cap beyond its fair share).
	MaxJobs int
	Logger  *slog.Logger
	Metrics *metrics.Metrics // nil: no metrics
	// Decoders is shared by every pipeline: a stream holds a decoder only while a snapshot
	// is being made. Nil: a pool of GOMAXPROCS decoders made on first use.
	Decoders *decode.Pool

	wake    chan struct{}
	mu      sync.Mutex
	running map[string]*supervisor
	// validUntil is when the leases last renewed stop being ours for sure (monotonic clock,
	// with a safety margin). Pipelines write nothing after it.
	validUntil  time.Time
	lastRelease time.Time

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

// Wake makes the manager look at the store now (called after a job command in-process).
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
		if m.HolderID == "" {
			m.HolderID = NewHolderID()
		}
	}
}

// NewHolderID returns host-pid-random, unique enough for a lease holder.
func NewHolderID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

func (m *Manager) ttl() time.Duration {
	if m.LeaseTTL > 0 {
		return m.LeaseTTL
	}
	return DefaultLeaseTTL
}

// margin is how long before a lease's expiry in the store this holder stops writing: room
// for clock differences between nodes and for a write that is already under way.
func (m *Manager) margin() time.Duration { return min(m.ttl()/5, 2*time.Second) }

// Run holds leases and runs their pipelines until ctx ends; then it stops every pipeline and
// releases its leases so other holders take the jobs over at once.
func (m *Manager) Run(ctx context.Context) error {
	m.init()
	log := m.logger().With("holder", m.HolderID)
	poll := m.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	renewEvery := m.ttl() / 3
	t := time.NewTicker(poll)
	defer t.Stop()
	defer m.shutdown(log)

	var nextRenew time.Time
	version := int64(-1)
	woken := true
	for {
		v, verr := m.Store.JobsVersion(ctx)
		if verr != nil && ctx.Err() == nil {
			log.Warn("read jobs version", "err", verr)
		}
		if woken || (verr == nil && v != version) || !time.Now().Before(nextRenew) {
			start := time.Now()
			if err := m.cycle(ctx, log); err != nil {
				if ctx.Err() == nil {
					log.Error("lease cycle", "err", err)
				}
			} else {
				nextRenew = start.Add(renewEvery)
				if verr == nil {
					version = v
				}
			}
		}
		if m.leasesLost() {
			m.stopAll()
		}
		woken = false
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-m.wake:
			woken = true
		}
	}
}

// cycle is one round of lease work: heartbeat, renew, claim up to the fair share or give one
// job away, then make the running pipelines match the leases held.
func (m *Manager) cycle(ctx context.Context, log *slog.Logger) error {
	ttl := m.ttl()
	start := time.Now()
	stats, err := m.Store.Heartbeat(ctx, store.Holder{ID: m.HolderID, Node: hostname(), PID: os.Getpid()}, start, ttl)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	leases, err := m.Store.RenewLeases(ctx, m.HolderID, start, ttl)
	if err != nil {
		return fmt.Errorf("renew leases: %w", err)
	}
	m.setValidUntil(start.Add(ttl - m.margin()))

	fair, minOther := fairShare(stats, m.HolderID)
	if m.MaxJobs > 0 {
		fair = min(fair, m.MaxJobs)
	}
	if want := fair - len(leases); want > 0 {
		claimed, err := m.Store.ClaimJobs(ctx, m.HolderID, start, ttl, want)
		if err != nil {
			log.Error("claim jobs", "err", err)
		}
		for _, l := range claimed {
			log.Info("claimed job", "job", l.Job.ID, "token", l.Token)
		}
		leases = append(leases, claimed...)
	} else if len(leases) > fair && len(leases)-minOther >= 2 && time.Since(m.lastRelease) >= ttl/3 {
		// Another holder has much less to do (it just joined, say): hand one job over per
		// round, so the work spreads out without stopping many healthy pipelines at once.
		slices.SortFunc(leases, func(a, b store.Lease) int { return strings.Compare(a.Job.ID, b.Job.ID) })
		give := leases[len(leases)-1]
		leases = leases[:len(leases)-1]
		m.stopJobs([]string{give.Job.ID}) // stop before releasing: never two pipelines
		if err := m.Store.ReleaseLeases(ctx, m.HolderID, []string{give.Job.ID}); err != nil {
			log.Warn("release job", "job", give.Job.ID, "err", err)
		} else {
			log.Info("released job to a less loaded holder", "job", give.Job.ID)
		}
		m.lastRelease = time.Now()
	}
	m.reconcile(ctx, leases)
	return nil
}

// fairShare is how many jobs each live holder should run (rounded up), and the smallest load
// among the other holders (the caller's fair share when it is alone).
func fairShare(stats store.LeaseStats, self string) (fair, minOther int) {
	n := max(len(stats.Holders), 1)
	fair = (stats.StartedJobs + n - 1) / n
	minOther = -1
	for _, h := range stats.Holders {
		if h.ID != self && (minOther < 0 || h.Leases < minOther) {
			minOther = h.Leases
		}
	}
	if minOther < 0 {
		minOther = fair
	}
	return fair, minOther
}

// reconcile stops pipelines of jobs no longer held (or held at another generation or token)
// and starts one for every held job without one.
func (m *Manager) reconcile(ctx context.Context, leases []store.Lease) {
	want := make(map[string]store.Lease, len(leases))
	for _, l := range leases {
		want[l.Job.ID] = l
	}
	var stale []string
	m.mu.Lock()
	for id, sup := range m.running {
		if l, ok := want[id]; !ok || l.Job.Generation != sup.job.Generation || l.Token != sup.token {
			stale = append(stale, id)
		}
	}
	m.mu.Unlock()
	m.stopJobs(stale) // stop before starting, so there is never more than one pipeline per job
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, l := range want {
		if _, ok := m.running[id]; !ok {
			m.running[id] = newSupervisor(ctx, m, l.Job, l.Token)
		}
	}
}

// stopJobs stops the given jobs' pipelines, concurrently, and waits for them.
func (m *Manager) stopJobs(ids []string) {
	m.mu.Lock()
	var sups []*supervisor
	for _, id := range ids {
		if s, ok := m.running[id]; ok {
			sups = append(sups, s)
			delete(m.running, id)
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sups {
		wg.Add(1)
		go func() { defer wg.Done(); s.stop() }()
	}
	wg.Wait()
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	ids := make([]string, 0, len(m.running))
	for id := range m.running {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	m.stopJobs(ids)
}

// shutdown stops every pipeline, then gives every lease back.
func (m *Manager) shutdown(log *slog.Logger) {
	m.stopAll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Store.ReleaseHolder(ctx, m.HolderID); err != nil {
		log.Warn("release leases at shutdown", "err", err)
	}
	m.decoders().Close()
}

func (m *Manager) setValidUntil(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.validUntil = t
}

// leaseValid reports whether this holder's leases are still certainly its own.
func (m *Manager) leaseValid() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Now().Before(m.validUntil)
}

// leasesLost reports pipelines running on leases that could not be renewed in time.
func (m *Manager) leasesLost() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.running) > 0 && !time.Now().Before(m.validUntil)
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

func hostname() string {
	h, _ := os.Hostname()
	return h
}
