// Package ratelimit keeps one token bucket per access key: Shared in the store, so every API
// node enforces one key's rate together, and Limiter in memory (bounded) in front of it.
package ratelimit

import (
	"sync"
	"time"
)

// Limiter allows Rate requests per second per key, with bursts up to Burst.
type Limiter struct {
	Rate  float64
	Burst float64
	// MaxKeys bounds memory: when full, idle buckets (those that have refilled) are dropped
	// first; a full table of busy keys makes new keys share one overflow bucket rather than grow.
	MaxKeys int
	Now     func() time.Time

	mu       sync.Mutex
	buckets  map[string]*bucket
	overflow bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// Allow takes one token from key's bucket, reporting whether there was one and, if not, how
// long until there will be.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil || l.Rate <= 0 {
		return true, 0
	}
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[string]*bucket)
	}
	b, ok := l.buckets[key]
	if !ok {
		if max := l.maxKeys(); len(l.buckets) >= max {
			l.evictIdle(now)
		}
		if len(l.buckets) >= l.maxKeys() {
			b = &l.overflow
		} else {
			b = &bucket{tokens: l.Burst, last: now}
			l.buckets[key] = b
		}
	}
	b.tokens = min(l.Burst, b.tokens+now.Sub(b.last).Seconds()*l.Rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.Rate * float64(time.Second))
}

func (l *Limiter) maxKeys() int {
	if l.MaxKeys > 0 {
		return l.MaxKeys
	}
	return 100000
}

// evictIdle drops buckets that would be full again by now: forgetting them changes nothing.
func (l *Limiter) evictIdle(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.Rate >= l.Burst {
			delete(l.buckets, k)
		}
	}
}
