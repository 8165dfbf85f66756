package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// Every output bucket belongs to one account, so that no account can write objects under
// another's names or delete them: the accounts the storage config pins the bucket's route to,
// else the first account that submitted a job to it (recorded in the store).

// bucketOf names out's bucket for ownership.
func (s *Service) bucketOf(out snapshot.SnapshotOutput) (blob.Bucket, error) {
	if s.Outputs == nil {
		return blob.Bucket{StorageType: out.StorageType, Endpoint: strings.ToLower(out.Endpoint), Name: out.Bucket}, nil
	}
	return s.Outputs.Bucket(out)
}

func bucketKey(b blob.Bucket) store.BucketKey {
	return store.BucketKey{StorageType: b.StorageType, Endpoint: b.Endpoint, Bucket: b.Name}
}

// claimBucket lets account acct submit a job writing to out: its bucket is pinned to acct, or
// owned by acct, or owned by nobody yet and claimed for acct now (atomically, so of two
// accounts racing for a new bucket exactly one gets it). Otherwise 403 BucketNotAuthorized.
func (s *Service) claimBucket(ctx context.Context, acct int64, out snapshot.SnapshotOutput) error {
	b, err := s.bucketOf(out)
	if err != nil {
		return outputError(err)
	}
	if len(b.Accounts) > 0 {
		if !slices.Contains(b.Accounts, acct) {
			return errBucketNotAuth
		}
		return nil // the operator decides; the store's owner is not consulted
	}
	owner, err := s.Store.ClaimBucket(ctx, acct, bucketKey(b))
	if err != nil {
		return fmt.Errorf("claim bucket %s: %w", b.Name, err)
	}
	if owner != acct {
		return errBucketNotAuth
	}
	return nil
}

// ownsBucket allows deleting objects of out's bucket to its owner only (403
// BucketNotAuthorized otherwise, also when the configuration no longer has the output).
func (s *Service) ownsBucket(ctx context.Context, acct int64, out snapshot.SnapshotOutput) error {
	b, err := s.bucketOf(out)
	if err != nil {
		return errBucketNotAuth
	}
	if len(b.Accounts) > 0 {
		if !slices.Contains(b.Accounts, acct) {
			return errBucketNotAuth
		}
		return nil
	}
	owner, err := s.Store.BucketOwner(ctx, bucketKey(b))
	if errors.Is(err, store.ErrNotFound) || err == nil && owner != acct {
		return errBucketNotAuth
	}
	if err != nil {
		return fmt.Errorf("bucket owner %s: %w", b.Name, err)
	}
	return nil
}

// ClaimBucketsOfExistingJobs gives every bucket that jobs already write to, and that has no
// owner yet, to the account of its oldest job: the first account that submitted a job to it.
// It is for jobs submitted before buckets had owners (or while their route was pinned), and
// runs when serve starts; claims are idempotent, so every node may run it. An account whose
// jobs write to a bucket another account owns is logged: those jobs keep running, but the
// account cannot submit more there or delete objects there.
func (s *Service) ClaimBucketsOfExistingJobs(ctx context.Context) error {
	uses, err := s.Store.JobOutputs(ctx)
	if err != nil {
		return err
	}
	for _, u := range uses {
		b, err := s.bucketOf(u.Output)
		if err != nil || len(b.Accounts) > 0 {
			continue // not writable any more, or assigned by the operator
		}
		owner, err := s.Store.ClaimBucket(ctx, u.AccountID, bucketKey(b))
		if err != nil {
			return fmt.Errorf("claim bucket %s: %w", b.Name, err)
		}
		if owner != u.AccountID {
			s.logger().Warn("jobs of an account write to a bucket another account owns", "account", u.AccountID, "owner", owner,
				"storage_type", b.StorageType, "endpoint", b.Endpoint, "bucket", b.Name)
		}
	}
	return nil
}
