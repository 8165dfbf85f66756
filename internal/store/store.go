// Package store defines livesnap's persistent state behind one interface, with one
// implementation per database (sqlite/ now, postgres/ later) and a shared conformance suite
// (storetest/) that every implementation passes.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/snapshot"
)

var (
	// ErrNotFound: no such record in this account (another account's record included).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record was not in the expected state (a concurrent change won).
	ErrConflict = errors.New("state changed concurrently")
	// ErrLimitExceeded: starting the job would exceed the account's job limit.
	ErrLimitExceeded = errors.New("job limit exceeded")
)

// Store is livesnap's persistent state. Every method is safe for concurrent use, also from
// several processes sharing the same database.
type Store interface {
	Close() error

	// CreateAccount stores a new account and returns it with its assigned ID.
	CreateAccount(ctx context.Context, a auth.Account) (auth.Account, error)
	GetAccount(ctx context.Context, id int64) (auth.Account, error)
	CountAccounts(ctx context.Context) (int, error)
	CreateAccessKey(ctx context.Context, k auth.AccessKey) error
	GetAccessKey(ctx context.Context, id string) (auth.AccessKey, error)

	// UseNonce records a request nonce; false if the key already used it and it has not expired.
	UseNonce(ctx context.Context, keyID, nonce string, expiresAt time.Time) (bool, error)

	CreateTemplate(ctx context.Context, t snapshot.Template) error
	GetTemplate(ctx context.Context, accountID int64, id string) (snapshot.Template, error)

	CreateJob(ctx context.Context, j snapshot.Job) error
	GetJob(ctx context.Context, accountID int64, id string) (snapshot.Job, error)
	// SetJobStatus atomically moves a job from status from to status to (ErrConflict if it is
	// no longer in from). With newGeneration its Generation grows by one. With limit > 0 and to
	// == started, it fails with ErrLimitExceeded when the account already has limit other
	// started jobs.
	SetJobStatus(ctx context.Context, accountID int64, id, from, to string, newGeneration bool, limit int, now time.Time) (snapshot.Job, error)
	// ListStartedJobs returns every started job of every account (the runner's work list).
	ListStartedJobs(ctx context.Context) ([]snapshot.Job, error)

	// NextSequence hands out the job's next {Sequence} value (1, 2, ...), never the same twice.
	NextSequence(ctx context.Context, jobID string) (int64, error)
	// RecordFiles stores the records of one capture in one transaction: sequence records are
	// added, the job's overwrite record (IsOverlay) is created or moved to the new time.
	RecordFiles(ctx context.Context, files []snapshot.File) error
	// ListFiles returns the job's records with CreateTime in [Start, End], ordered by time
	// (records of one millisecond: sequence records by object name, then the overwrite record;
	// Desc reverses the whole order), at most Limit of them.
	ListFiles(ctx context.Context, q FileQuery) ([]snapshot.File, error)
}

// FileQuery selects file records of one job.
type FileQuery struct {
	AccountID  int64
	JobID      string
	Start, End time.Time // inclusive, millisecond precision
	Desc       bool
	Limit      int
}
