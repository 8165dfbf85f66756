package store

import (
	"context"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
)

// WithSealedSecrets returns s with access key secrets and callback secrets encrypted at rest
// by sealer. With a nil sealer new secrets are stored plain, and reading a sealed one fails
// with auth.ErrSealed.
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
	a, plain := s.sealAccount(a)
	got, created, err := s.Store.CreateFirstAccount(ctx, a, k)
	if created {
		got.CallbackSecret = plain
	}
	return got, created, err
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

// callbackAD is the associated data of sealed callback secrets: account ids are assigned by
// the store, so the secret is sealed before its account has an id.
const callbackAD = "livesnap callback secret"

// sealAccount gives a a callback secret if it has none, and returns a with that secret sealed
// for storage, and the plain secret.
func (s sealedStore) sealAccount(a auth.Account) (auth.Account, string) {
	if a.CallbackSecret == "" {
		a.CallbackSecret = auth.NewCallbackSecret()
	}
	plain := a.CallbackSecret
	if s.sealer != nil {
		a.CallbackSecret = s.sealer.Seal(callbackAD, plain)
	}
	return a, plain
}

func (s sealedStore) CreateAccount(ctx context.Context, a auth.Account) (auth.Account, error) {
	a, plain := s.sealAccount(a)
	got, err := s.Store.CreateAccount(ctx, a)
	got.CallbackSecret = plain
	return got, err
}

func (s sealedStore) GetAccount(ctx context.Context, id int64) (auth.Account, error) {
	a, err := s.Store.GetAccount(ctx, id)
	if err != nil {
		return a, err
	}
	a.CallbackSecret, err = s.sealer.Open(callbackAD, a.CallbackSecret)
	return a, err
}

func (s sealedStore) SetCallbackSecret(ctx context.Context, accountID int64, secret string) error {
	if s.sealer != nil {
		secret = s.sealer.Seal(callbackAD, secret)
	}
	return s.Store.SetCallbackSecret(ctx, accountID, secret)
}

func (s sealedStore) ClaimCallbacks(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Callback, error) {
	cbs, err := s.Store.ClaimCallbacks(ctx, now, limit, lease)
	for i := range cbs {
		if cbs[i].Secret, err = s.sealer.Open(callbackAD, cbs[i].Secret); err != nil {
			return nil, err
		}
	}
	return cbs, err
}
