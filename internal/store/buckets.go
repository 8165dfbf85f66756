package store

import (
	"context"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/snapshot"
)

// Buckets records which account owns each output bucket, so that no account writes objects
// into, or deletes objects from, another account's bucket.
type Buckets interface {
	// ClaimBucket makes accountID the owner of bucket b unless an account owns it already, and
	// returns the owner: accountID when it won or owned b before. Of accounts claiming one
	// bucket at once, on any number of handles, exactly one wins.
	ClaimBucket(ctx context.Context, accountID int64, b BucketKey) (owner int64, err error)
	// BucketOwner returns the account that owns bucket b (ErrNotFound if none).
	BucketOwner(ctx context.Context, b BucketKey) (int64, error)
	// JobOutputs returns every distinct account and SnapshotOutput of the store's jobs, each
	// with its oldest job's CreateTime, oldest first: who used which bucket first, for buckets
	// of jobs submitted before buckets had owners.
	JobOutputs(ctx context.Context) ([]JobOutput, error)
}

// BucketKey names one output bucket: a StorageType, an endpoint (compared without regard to
// case) and a bucket name.
type BucketKey struct {
	StorageType, Endpoint, Bucket string
}

// Normal returns k as it is stored: the endpoint in lower case, as host names compare.
func (k BucketKey) Normal() BucketKey {
	k.Endpoint = strings.ToLower(k.Endpoint)
	return k
}

// JobOutput is an account's use of a SnapshotOutput (see Buckets.JobOutputs).
type JobOutput struct {
	AccountID int64
	Output    snapshot.SnapshotOutput
	First     time.Time
}
