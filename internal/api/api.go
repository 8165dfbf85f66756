// Package api implements the ICE live snapshot actions on top of the RPC protocol (rpc), the
// domain rules (snapshot) and the state (store). One function per action: decode parameters,
// apply the rules, answer with ICE's response fields.
package api

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/netpolicy"
	"github.com/livesnap/livesnap/internal/ratelimit"
	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// Version is the ICE API version livesnap speaks.
const Version = "2020-11-09"

// ProbeFunc checks that a job's input stream is live (nil), absent (an error wrapping
// ErrStreamNotFound), or otherwise unusable.
type ProbeFunc func(ctx context.Context, in snapshot.StreamInput) error

// ErrStreamNotFound is what a ProbeFunc wraps when the stream is not being published.
var ErrStreamNotFound = errors.New("stream not found")

// Service serves the ICE actions.
type Service struct {
	Store store.Store
	// Blobs removes objects for DeleteLiveSnapshotFiles with DeleteOriginalFile=true.
	Blobs blob.Writer
	// Probe checks a stream before a job starts; nil treats every stream as live.
	Probe ProbeFunc
	// MinInterval is the smallest TimeInterval accepted (ICE: 5 s). Operators may lower it,
	// e.g. for tests; the maximum stays 3600 s.
	MinInterval int
	// StorageTypes lists the SnapshotOutput.StorageType values this node can write.
	StorageTypes []string
	// Outputs refuses SnapshotOutputs the operator did not configure (a *blob.RouteError) and
	// names their buckets for ownership; nil accepts every output of a listed StorageType,
	// each StorageType, Endpoint and Bucket a bucket of its own.
	Outputs OutputChecker
	// StreamTypes lists the StreamInput.Type values this node can pull.
	StreamTypes []string
	// CheckStream refuses a StreamInput the source could never open (source.CheckURL), without
	// connecting; nil checks only the scheme and host.
	CheckStream func(in snapshot.StreamInput) error
	// NetPolicy refuses stream and callback URLs whose literal IP address it forbids (names
	// are checked again on the resolved address when connecting); nil allows all.
	NetPolicy *netpolicy.Policy
	// RateLimit bounds requests per access key (400 Throttling.User), shared by every node
	// on the store; nil means unlimited.
	RateLimit *ratelimit.Shared
	// JobsChanged is called after a job's status changes, to wake the runner; may be nil.
	JobsChanged func()
	Now         func() time.Time
	Logger      *slog.Logger
}

// OutputChecker tells whether this node may write to a SnapshotOutput, and to which bucket as
// ownership sees it (blob.Router does).
type OutputChecker interface {
	// Bucket returns the bucket out writes to, or a *blob.RouteError when no route takes out.
	Bucket(out snapshot.SnapshotOutput) (blob.Bucket, error)
}

// Principal is who an authenticated call acts as.
type Principal struct {
	Account auth.Account
	Key     auth.AccessKey
}

// Actions returns the action table for rpc.Server.
func (s *Service) Actions() map[string]rpc.Handler {
	return map[string]rpc.Handler{
		"CreateLiveSnapshotTemplate": s.createTemplate,
		"UpdateLiveSnapshotTemplate": s.updateTemplate,
		"DeleteLiveSnapshotTemplate": s.deleteTemplate,
		"GetLiveSnapshotTemplate":    s.getTemplate,
		"ListLiveSnapshotTemplates":  s.listTemplates,
		"SubmitLiveSnapshotJob":      s.submitJob,
		"GetLiveSnapshotJob":         s.getJob,
		"ListLiveSnapshotJobs":       s.listJobs,
		"SendLiveSnapshotJobCommand": s.sendCommand,
		"ListLiveSnapshotFiles":      s.listFiles,
		"DeleteLiveSnapshotFiles":    s.deleteFiles,
	}
}

// LookupKey resolves an access key for rpc.Server.
func (s *Service) LookupKey(ctx context.Context, id string) (rpc.Credential, error) {
	k, err := s.Store.GetAccessKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return rpc.Credential{}, rpc.ErrKeyNotFound
	}
	if err != nil {
		return rpc.Credential{}, err
	}
	a, err := s.Store.GetAccount(ctx, k.AccountID)
	if err != nil {
		return rpc.Credential{}, err
	}
	return rpc.Credential{AccessKeyID: k.ID, Secret: k.Secret, Principal: Principal{Account: a, Key: k}}, nil
}

// Authorize applies account state and key policy once the signature has been verified.
func (s *Service) Authorize(ctx context.Context, call *rpc.Call) error {
	p, ok := call.Principal.(Principal)
	if !ok {
		return rpc.ErrInternal
	}
	switch {
	case p.Account.Disabled || p.Key.Disabled:
		return errUserDisable
	case !p.Account.ServiceEnabled:
		return errOperationDenied
	case !auth.Allows(p.Key.Policy, call.Action):
		return errForbidden
	}
	ok, err := s.RateLimit.Allow(ctx, p.Key.ID)
	if err != nil {
		return err
	}
	if !ok {
		return errThrottled
	}
	return nil
}

// ICE's operation-specific errors (spec sections 4-7, 2.8).
var (
	errUserDisable       = rpc.NewError(403, "UserDisable", "User is disable.")
	errOperationDenied   = rpc.NewError(403, "OperationDenied", "Your account has not enabled the ICE service.")
	errForbidden         = rpc.NewError(403, "Forbidden", "User not authorized to operate on the specified resource.")
	errThrottled         = rpc.NewError(400, "Throttling.User", "Request was denied due to user flow control.")
	errTemplateNotFound  = rpc.NewError(404, "TemplateNotFound", "No such template.")
	errJobNotFound       = rpc.NewError(404, "JobNotFound", "No such job.")
	errJobAlreadyStarted = rpc.NewError(409, "JobAlreadyStarted", "Job is already started.")
	errJobLimitExceeded  = rpc.NewError(400, "JobLimitExceeded", "Job limit exceeded.")
	errStreamNotFound    = rpc.NewError(400, "StreamNotFound", "No such stream.")
	errMalformedStart    = rpc.NewError(400, "MalformedStartTime", "Specified parameter StartTime is not valid.")
	errMalformedEnd      = rpc.NewError(400, "MalformedEndTime", "Specified parameter EndTime is not valid.")
	errEndTimeMismatch   = rpc.NewError(400, "EndTimeMismatch", "Specified end time does not math the specified start time.")
	errBucketNotAuth     = rpc.NewError(403, "BucketNotAuthorized", "Bucket is not authorised.")
)

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func account(call *rpc.Call) int64 { return call.Principal.(Principal).Account.ID }

func newID() string { return uuid.NewString() }

func (s *Service) jobsChanged() {
	if s.JobsChanged != nil {
		s.JobsChanged()
	}
}
