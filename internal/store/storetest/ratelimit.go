package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/store"
)

func testTokenBuckets(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	take := func(key string, now time.Time) bool {
		t.Helper()
		ok, err := s.TakeToken(ctx, key, 2, 3, now)
		must(t, err)
		return ok
	}
	steps := []struct {
		what string
		key  string
		at   time.Duration
		want bool
	}{
		{"burst 1", "k", 0, true}, {"burst 2", "k", 0, true}, {"burst 3", "k", 0, true},
		{"over the burst", "k", 0, false},
		{"another key has its own bucket", "other", 0, true},
		{"not yet refilled", "k", 499 * time.Millisecond, false},
		{"one token after 1/rate", "k", 500 * time.Millisecond, true},
		{"only one", "k", 500 * time.Millisecond, false},
		{"a clock behind adds nothing", "k", -10 * time.Second, false},
		{"nor did it move the bucket back", "k", 999 * time.Millisecond, false},
		{"refilled after an hour", "k", time.Hour, true}, {"2", "k", time.Hour, true}, {"3", "k", time.Hour, true},
		{"but never beyond the burst", "k", time.Hour, false},
	}
	for _, st := range steps {
		if got := take(st.key, t0.Add(st.at)); got != st.want {
			t.Fatalf("%s (%s at %v): %v, want %v", st.what, st.key, st.at, got, st.want)
		}
	}
	for _, bad := range []struct{ rate, burst float64 }{{0, 3}, {2, 0.5}, {-1, 3}} {
		if _, err := s.TakeToken(ctx, "k", bad.rate, bad.burst, t0); err == nil {
			t.Fatalf("rate %v burst %v accepted", bad.rate, bad.burst)
		}
	}
	if _, err := s.TakeToken(ctx, "", 2, 3, t0); err == nil {
		t.Fatal("an empty key accepted")
	}
}

// testTokenRace: takers on several handles at once never get more than the burst.
func testTokenRace(t *testing.T, handles []store.Store) {
	now := time.Now()
	const burst, takers = 10, 40
	var granted atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < takers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := handles[i%len(handles)].TakeToken(ctx, "race-key", 0.001, burst, now)
			if err != nil {
				t.Error(err)
			}
			if ok {
				granted.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := granted.Load(); n != burst {
		t.Fatalf("%d tokens granted from a burst of %d", n, burst)
	}
}
