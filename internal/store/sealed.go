package store

import (
	"context"

	"github.com/livesnap/livesnap/internal/auth"
)

// WithSealedSecrets returns s with access key secrets encrypted at rest by sealer. With a nil
// sealer new secrets are stored plain, and reading a sealed one fails with auth.ErrSealed.
func WithSealedSecrets(s Store, sealer *auth.Sealer) Store {
	return sealedStore{Store: s, sealer: sealer}
}

type sealedStore struct {
	Store
	sealer *auth.Sealer
}

func (s sealedStore) CreateAccessKey(ctx context.Context, k auth.AccessKey) error {
	if s.sealer != nil {
		k.Secret = s.sealer.Seal(k.ID, k.Secret)
	}
	return s.Store.CreateAccessKey(ctx, k)
}

func (s sealedStore) CreateFirstAccount(ctx context.Context, a auth.Account, k auth.AccessKey) (auth.Account, bool, error) {
	if s.sealer != nil {
		k.Secret = s.sealer.Seal(k.ID, k.Secret)
	}
	return s.Store.CreateFirstAccount(ctx, a, k)
}

func (s sealedStore) GetAccessKey(ctx context.Context, id string) (auth.AccessKey, error) {
	k, err := s.Store.GetAccessKey(ctx, id)
	if err != nil {
		return k, err
	}
	k.Secret, err = s.sealer.Open(k.ID, k.Secret)
	return k, err
}

// ListAccessKeys never returns secrets: listing is for administration, not for signing.
func (s sealedStore) ListAccessKeys(ctx context.Context, accountID int64) ([]auth.AccessKey, error) {
	keys, err := s.Store.ListAccessKeys(ctx, accountID)
	for i := range keys {
		keys[i].Secret = ""
	}
	return keys, err
}
