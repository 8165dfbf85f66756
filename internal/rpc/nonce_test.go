package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryNonces(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	m := newMemoryNonces(2, clock)
	use := func(id, n string, exp time.Time) (bool, error) { return m.UseNonce(ctx, id, n, exp) }

	if fresh, err := use("k1", "a", now.Add(time.Minute)); !fresh || err != nil {
		t.Fatalf("first use: %v %v", fresh, err)
	}
	if fresh, _ := use("k1", "a", now.Add(time.Minute)); fresh {
		t.Fatal("replay accepted")
	}
	if fresh, _ := use("k2", "a", now.Add(2*time.Minute)); !fresh {
		t.Fatal("nonce is not per access key")
	}
	// Full with two unexpired entries: refuse, never forget.
	if _, err := use("k1", "b", now.Add(time.Minute)); !errors.Is(err, ErrNonceStoreFull) {
		t.Fatalf("full store: %v", err)
	}
	if fresh, _ := use("k1", "a", now.Add(time.Minute)); fresh {
		t.Fatal("full store forgot a nonce")
	}
	// After the first expires it is pruned, freeing room.
	now = now.Add(time.Minute)
	if fresh, err := use("k1", "a", now.Add(time.Minute)); !fresh || err != nil {
		t.Fatalf("expired nonce not pruned: %v %v", fresh, err)
	}
	if fresh, _ := use("k2", "a", now.Add(time.Minute)); fresh {
		t.Fatal("unexpired nonce pruned")
	}
	if len(m.seen) != 2 || len(m.byExp) != 2 {
		t.Fatalf("entries: map %d heap %d", len(m.seen), len(m.byExp))
	}
}

func TestMemoryNoncesConcurrent(t *testing.T) {
	m := NewMemoryNonces(0)
	exp := time.Now().Add(time.Hour)
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				ok, err := m.UseNonce(context.Background(), "k", fmt.Sprint(i), exp)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					fresh.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 500 {
		t.Fatalf("%d fresh uses of 500 distinct nonces by 8 goroutines", fresh.Load())
	}
}

func TestConcurrentReplayOnlyOneWins(t *testing.T) {
	_, ts := newTestServer(t, nil)
	req := v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob"})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := do(t, req.Clone(context.Background()))
			if r.status == 200 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d of 8 concurrent replays accepted", ok.Load())
	}
}
