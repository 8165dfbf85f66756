package ratelimit

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/store/sqlite"
)

// counting passes TakeToken to a real store and counts the calls.
type counting struct {
	Buckets
	calls atomic.Int32
}

func (c *counting) TakeToken(ctx context.Context, key string, rate, burst float64, now time.Time) (bool, error) {
	c.calls.Add(1)
	return c.Buckets.TakeToken(ctx, key, rate, burst, now)
}

// Two API nodes on one store enforce one key's rate together; each node's local bucket turns
// its own flood away before the store.
func TestSharedAcrossNodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	var nodes []*Shared
	var stores []*counting
	for i := 0; i < 2; i++ {
		db, err := sqlite.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		c := &counting{Buckets: db}
		stores = append(stores, c)
		nodes = append(nodes, &Shared{Rate: 1, Burst: 3, Buckets: c, Now: clock,
			Local: &Limiter{Rate: 1, Burst: 3, Now: clock}})
	}
	allow := func(node int) bool {
		t.Helper()
		ok, err := nodes[node].Allow(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i, want := range []struct {
		node int
		ok   bool
	}{{0, true}, {0, true}, {1, true}, {1, false}, {0, false}} {
		if got := allow(want.node); got != want.ok {
			t.Fatalf("request %d on node %d: %v, want %v", i, want.node, got, want.ok)
		}
	}
	// Node 0's local bucket is empty now: its flood never reaches the store.
	before := stores[0].calls.Load()
	for i := 0; i < 50; i++ {
		allow(0)
	}
	if n := stores[0].calls.Load() - before; n != 0 {
		t.Fatalf("%d store calls for a flood the local bucket refuses", n)
	}
	now = now.Add(time.Second)
	if !allow(1) || allow(0) {
		t.Fatal("one token a second, for the first node to ask")
	}
	var off *Shared
	if ok, err := off.Allow(context.Background(), "k"); !ok || err != nil {
		t.Fatal("a nil Shared allows everything")
	}
}
