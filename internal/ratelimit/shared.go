package ratelimit

import (
	"context"
	"fmt"
	"time"
)

// Buckets keeps token buckets where every node sees them (store.Store is one).
type Buckets interface {
	TakeToken(ctx context.Context, key string, rate, burst float64, now time.Time) (bool, error)
}

// Shared allows Rate requests per second per key, with bursts up to Burst, counted over every
// node that shares Buckets. Local, when set, is a node's own bucket of the same size in front:
// a node never lets more through than that anyway, so it turns a flood away without a write
// to the store.
type Shared struct {
	Rate    float64
	Burst   float64
	Buckets Buckets
	Local   *Limiter
	Now     func() time.Time
}

// Allow takes one token from key's shared bucket. A nil Shared, or Rate <= 0, allows all.
func (s *Shared) Allow(ctx context.Context, key string) (bool, error) {
	if s == nil || s.Rate <= 0 {
		return true, nil
	}
	if ok, _ := s.Local.Allow(key); !ok {
		return false, nil
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	ok, err := s.Buckets.TakeToken(ctx, key, s.Rate, max(s.Burst, 1), now)
	if err != nil {
		return false, fmt.Errorf("rate limit of %s: %w", key, err)
	}
	return ok, nil
}
