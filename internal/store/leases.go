package store

import (
	"context"
	"time"

	"github.com/livesnap/livesnap/internal/snapshot"
)

// Leases is how runner processes (lease holders) share the started jobs of one store: every
// started job is held by at most one live holder at a time, and every lease carries a fencing
// token that RecordCapture checks, so a holder that lost a job can never add records after
// the new holder has it.
//
// Times come from the caller (now), so holders' clocks must agree to well within the TTL
// (NTP does). A lease is live while now < Expires; a holder is live while its last heartbeat
// is within the TTL.
//
// Every method is atomic and safe to call concurrently from many processes and nodes.
type Leases interface {
	// Heartbeat records that holder h is alive at now (creating its row on the first call, and
	// updating Node and PID), drops holders whose heartbeat is older than ttl together with
	// their leases, and returns the live holders with their current lease counts and the
	// number of started jobs in the store, for balancing.
	Heartbeat(ctx context.Context, h Holder, now time.Time, ttl time.Duration) (LeaseStats, error)

	// ClaimJobs takes up to max started jobs that have no live lease (never held, released, or
	// expired), oldest started first, for holderID until now+ttl. Each claimed job's fencing
	// token grows by one. With PostgreSQL, concurrent claimers never block on or take the same
	// job (FOR UPDATE SKIP LOCKED).
	ClaimJobs(ctx context.Context, holderID string, now time.Time, ttl time.Duration, max int) ([]Lease, error)

	// RenewLeases extends every live lease of holderID to now+ttl and returns them with the
	// jobs' current state (a restart shows as a new Generation). Leases of jobs that are no
	// longer started are dropped and not returned; leases that expired or that another holder
	// took are not returned either, so the holder must stop those pipelines.
	RenewLeases(ctx context.Context, holderID string, now time.Time, ttl time.Duration) ([]Lease, error)

	// ReleaseLeases gives up holderID's leases on the given jobs (rebalancing, shutdown), so
	// another holder may claim them at once. Jobs holderID does not hold are ignored.
	ReleaseLeases(ctx context.Context, holderID string, jobIDs []string) error

	// ReleaseHolder drops every lease of holderID and the holder itself (a runner that exited
	// or was found dead: its jobs need not wait for the TTL).
	ReleaseHolder(ctx context.Context, holderID string) error

	// JobsVersion is a counter that grows whenever any job's status or generation changes
	// (submit, start, stop, restart). Holders poll it to pick up commands promptly.
	JobsVersion(ctx context.Context) (int64, error)
}

// Holder is one lease holder: a runner process.
type Holder struct {
	ID        string
	Node      string // host name, for operators
	PID       int
	Heartbeat time.Time
	Leases    int // jobs it holds now (in Heartbeat's answer)
}

// LeaseStats is Heartbeat's answer: who is alive and how much work there is.
type LeaseStats struct {
	Holders     []Holder // live holders, including the caller
	StartedJobs int
}

// Lease is a holder's claim on one started job.
type Lease struct {
	Job     snapshot.Job // current state of the job (Generation included)
	Token   int64        // fencing token: grows by one every time the job is claimed
	Expires time.Time
}
