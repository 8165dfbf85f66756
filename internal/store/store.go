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
	// Leases share the started jobs among runner processes (see Leases).
	Leases
	// Buckets give every output bucket one owning account (see Buckets).
	Buckets

	// CreateAccount stores a new account and returns it with its assigned ID.
	CreateAccount(ctx context.Context, a auth.Account) (auth.Account, error)
	// CreateFirstAccount creates account a and its first access key k (k.AccountID is set),
	// both or neither, only if the store has no account yet; false when it had one. Of nodes
	// bootstrapping an empty store at once, exactly one does.
	CreateFirstAccount(ctx context.Context, a auth.Account, k auth.AccessKey) (auth.Account, bool, error)
	GetAccount(ctx context.Context, id int64) (auth.Account, error)
	CountAccounts(ctx context.Context) (int, error)
	// UpdateAccount stores an account's state, service flag and job limit.
	UpdateAccount(ctx context.Context, a auth.Account) error
	// SetCallbackSecret replaces the secret that signs an account's callbacks (ErrNotFound if
	// there is no such account). Callbacks already queued are signed with the new one.
	SetCallbackSecret(ctx context.Context, accountID int64, secret string) error
	CreateAccessKey(ctx context.Context, k auth.AccessKey) error
	GetAccessKey(ctx context.Context, id string) (auth.AccessKey, error)
	// ListAccessKeys returns an account's keys (all accounts' with accountID 0), oldest first.
	ListAccessKeys(ctx context.Context, accountID int64) ([]auth.AccessKey, error)
	SetAccessKeyDisabled(ctx context.Context, id string, disabled bool) error
	DeleteAccessKey(ctx context.Context, id string) error

	// UseNonce records a request nonce; false if the key already used it and it has not expired.
	UseNonce(ctx context.Context, keyID, nonce string, expiresAt time.Time) (bool, error)
	// TakeToken takes one token from key's bucket, which refills at rate tokens a second up to
	// burst, as of now; false when there is none. Every process on the store shares the bucket.
	TakeToken(ctx context.Context, key string, rate, burst float64, now time.Time) (bool, error)

	CreateTemplate(ctx context.Context, t snapshot.Template) error
	GetTemplate(ctx context.Context, accountID int64, id string) (snapshot.Template, error)

	// UpdateTemplate replaces a template's name, interval and formats (ErrNotFound if absent).
	UpdateTemplate(ctx context.Context, t snapshot.Template) error
	DeleteTemplate(ctx context.Context, accountID int64, id string) error
	// ListTemplates returns one page of an account's templates and the total matching count.
	ListTemplates(ctx context.Context, q TemplateQuery) ([]snapshot.Template, int64, error)

	CreateJob(ctx context.Context, j snapshot.Job) error
	GetJob(ctx context.Context, accountID int64, id string) (snapshot.Job, error)
	// SetJobStatus atomically moves a job from status from to status to (ErrConflict if it is
	// no longer in from). With newGeneration its Generation grows by one. With limit > 0 and to
	// == started, it fails with ErrLimitExceeded when the account already has limit other
	// started jobs. A move to any status but started drops the job's lease; a restart (started
	// to started) keeps it, and the holder sees the new Generation when it renews.
	SetJobStatus(ctx context.Context, accountID int64, id, from, to string, newGeneration bool, limit int, now time.Time) (snapshot.Job, error)
	// ListJobs returns one page of an account's jobs and the total matching count.
	ListJobs(ctx context.Context, q JobQuery) ([]snapshot.Job, int64, error)

	// SetJobRuntime records what a job's pipeline is doing now.
	SetJobRuntime(ctx context.Context, r JobRuntime) error
	// GetJobRuntime returns a job's last recorded runtime status (ErrNotFound if none).
	GetJobRuntime(ctx context.Context, jobID string) (JobRuntime, error)

	// NextSequence hands out the job's next {Sequence} value (1, 2, ...), never the same twice.
	NextSequence(ctx context.Context, jobID string) (int64, error)
	// RecordCapture stores the records of one capture in one transaction: sequence records
	// are added, the job's overwrite record (IsOverlay) is created or moved forward, and the
	// capture's callbacks are queued in the outbox. It fails with ErrConflict, writing
	// nothing, unless the job is still started at c.Generation (and, with c.Holder set, still
	// leased by c.Holder with fencing token c.Token): a pipeline that was stopped, replaced or
	// taken over can never add records.
	RecordCapture(ctx context.Context, c Capture) error
	// ListFiles returns the job's records with CreateTime in [Start, End], ordered by time
	// (records of one millisecond: sequence records by object name, then the overwrite record;
	// Desc reverses the whole order), at most Limit of them.
	ListFiles(ctx context.Context, q FileQuery) ([]snapshot.File, error)
	// ClaimCallbacks returns up to limit queued callbacks that are due at now and hides them
	// from other claimers until now+lease (a dispatcher that dies lets them come back).
	ClaimCallbacks(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Callback, error)
	// CallbackDone marks a callback delivered (dead=false) or given up (dead=true).
	CallbackDone(ctx context.Context, id int64, at time.Time, dead bool, lastErr string) error
	// CallbackRetry records a failed attempt and when to try again.
	CallbackRetry(ctx context.Context, id int64, next time.Time, lastErr string) error

	// DeleteFiles removes the job's sequence records whose CreateTime is one of at, returning
	// them, and whether some instant matched only the overwrite record (which is never deleted).
	DeleteFiles(ctx context.Context, accountID int64, jobID string, at []time.Time) (deleted []snapshot.File, overlayMatched bool, err error)
}

// JobRuntime is the live status of a job's pipeline.
type JobRuntime struct {
	JobID        string
	Generation   int64
	RunState     string // connecting, capturing, waiting_for_stream, stalled, no_video
	LastSnapshot time.Time
	LastError    string
	Snapshots    int64 // in this generation
	Misses       int64
	Updated      time.Time
}

// Capture is what one snapshot writes to the store.
type Capture struct {
	JobID      string
	Generation int64
	// Holder and Token fence the write when Holder is set: RecordCapture then also requires
	// that Holder still holds the job's lease with fencing token Token (see Leases).
	Holder    string
	Token     int64
	Files     []snapshot.File
	Callbacks []Callback // URL and Body set; the rest is the store's
}

// Callback is one queued callback delivery.
type Callback struct {
	ID        int64
	AccountID int64
	JobID     string
	URL       string
	Body      []byte
	Attempts  int // attempts made before this claim
	Secret    string
	CreatedAt time.Time
}

// Page selects a page of a list: Offset records skipped, at most Limit returned.
type Page struct {
	Offset, Limit int
	Desc          bool // by CreateTime, newest first
}

// TemplateQuery selects templates of one account. Keyword matches an id exactly or a name
// partly, and takes precedence over IDs.
type TemplateQuery struct {
	AccountID int64
	Keyword   string
	IDs       []string
	Type      string
	Page
}

// JobQuery selects jobs of one account created in [Start, End]. Keyword matches an id exactly
// or a name partly.
type JobQuery struct {
	AccountID  int64
	Keyword    string
	Status     string
	Start, End time.Time
	Page
}

// FileQuery selects file records of one job.
type FileQuery struct {
	AccountID  int64
	JobID      string
	Start, End time.Time // inclusive, millisecond precision
	Desc       bool
	Limit      int
}
