package rpc

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"
)

// NonceChecker records nonces; UseNonce returns false if (accessKeyID, nonce) was seen before expiresAt.
type NonceChecker interface {
	UseNonce(ctx context.Context, accessKeyID, nonce string, expiresAt time.Time) (fresh bool, err error)
}

// DefaultMaxNonces is the capacity used by NewMemoryNonces(0). Nonces live until their
// request's timestamp leaves the window (at most 2×TimestampWindow = 30 min by default), so
// 1<<20 entries sustain about 580 signed requests per second; size max as rate × 2 × window.
const DefaultMaxNonces = 1 << 20

// NewMemoryNonces returns a bounded in-memory NonceChecker. Expired entries are pruned on every
// call; when max unexpired nonces are held it refuses new ones with ErrNonceStoreFull (the
// server answers 503) instead of forgetting any, because a forgotten nonce could be replayed
// within its window. max <= 0 means DefaultMaxNonces. The store is per process: run one
// replica, or use a shared NonceChecker, for replay safety across replicas.
func NewMemoryNonces(max int) NonceChecker {
	return newMemoryNonces(max, time.Now)
}

func newMemoryNonces(max int, now func() time.Time) *memoryNonces {
	if max <= 0 {
		max = DefaultMaxNonces
	}
	return &memoryNonces{max: max, now: now, seen: make(map[nonceKey]time.Time)}
}

// nonceKey scopes nonces per access key: one key's traffic cannot burn another key's nonces.
type nonceKey struct{ accessKeyID, nonce string }

type nonceEntry struct {
	key       nonceKey
	expiresAt time.Time
}

// expiryHeap is a min-heap of entries by expiry, so pruning touches only expired entries.
type expiryHeap []nonceEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expiresAt.Before(h[j].expiresAt) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type memoryNonces struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time
	seen  map[nonceKey]time.Time
	byExp expiryHeap
}

// UseNonce implements NonceChecker.
func (m *memoryNonces) UseNonce(_ context.Context, accessKeyID, nonce string, expiresAt time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for len(m.byExp) > 0 && !m.byExp[0].expiresAt.After(now) {
		e := heap.Pop(&m.byExp).(nonceEntry)
		delete(m.seen, e.key)
	}
	k := nonceKey{accessKeyID, nonce}
	// Anything still stored is unexpired (pruned above), so its presence means a replay.
	if _, ok := m.seen[k]; ok {
		return false, nil
	}
	if len(m.seen) >= m.max {
		return false, fmt.Errorf("%w (%d entries)", ErrNonceStoreFull, m.max)
	}
	m.seen[k] = expiresAt
	heap.Push(&m.byExp, nonceEntry{key: k, expiresAt: expiresAt})
	return true, nil
}
