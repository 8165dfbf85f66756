package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// leaseBase is the lease clock's origin in these tests: times are the callers', not the store's.
var leaseBase = time.Now().UTC().Truncate(time.Millisecond)

func at(d time.Duration) time.Time { return leaseBase.Add(d) }

// startedJobs creates started jobs ids[0], ids[1], ... started one second apart (oldest first).
func startedJobs(t *testing.T, s store.Store, account int64, ids ...string) {
	t.Helper()
	for i, id := range ids {
		newJob(t, s, account, id)
		_, err := s.SetJobStatus(ctx, account, id, snapshot.StatusInit, snapshot.StatusStarted, true, 0, at(time.Duration(i-len(ids))*time.Second))
		must(t, err)
	}
}

func leaseIDs(ls []store.Lease) []string {
	var ids []string
	for _, l := range ls {
		ids = append(ids, l.Job.ID)
	}
	return ids
}

func claim(t *testing.T, s store.Store, holder string, now time.Time, ttl time.Duration, max int) []store.Lease {
	t.Helper()
	ls, err := s.ClaimJobs(ctx, holder, now, ttl, max)
	must(t, err)
	return ls
}

func renew(t *testing.T, s store.Store, holder string, now time.Time, ttl time.Duration) []store.Lease {
	t.Helper()
	ls, err := s.RenewLeases(ctx, holder, now, ttl)
	must(t, err)
	return ls
}

func wantIDs(t *testing.T, what string, ls []store.Lease, ids ...string) {
	t.Helper()
	if got := leaseIDs(ls); !slices.Equal(got, ids) {
		t.Fatalf("%s: jobs %v, want %v", what, got, ids)
	}
}

func testLeaseClaims(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	startedJobs(t, s, a.ID, "l0", "l1", "l2", "l3", "l4")
	newJob(t, s, a.ID, "idle") // init: never claimed
	const ttl = 30 * time.Second

	first := claim(t, s, "h1", at(0), ttl, 3)
	wantIDs(t, "h1's claim (oldest started first, at most max)", first, "l0", "l1", "l2")
	for _, l := range first {
		if l.Token != 1 || !l.Expires.Equal(at(ttl)) || l.Job.Status != snapshot.StatusStarted || l.Job.Generation != 1 || l.Job.AccountID != a.ID {
			t.Fatalf("first lease: %+v", l)
		}
	}
	wantIDs(t, "h2's claim: only the jobs nobody holds", claim(t, s, "h2", at(10*time.Second), ttl, 10), "l3", "l4")
	wantIDs(t, "h1 claims again", claim(t, s, "h1", at(time.Second), ttl, 10))
	wantIDs(t, "max 0", claim(t, s, "h3", at(time.Second), ttl, 0))
	wantIDs(t, "a live lease is never handed to another holder", claim(t, s, "h3", at(ttl-time.Millisecond), ttl, 10))

	// At Expires the lease is over: another holder takes it with a bigger token.
	second := claim(t, s, "h3", at(ttl), ttl, 10)
	wantIDs(t, "expired leases are reclaimable", second, "l0", "l1", "l2")
	for _, l := range second {
		if l.Token != 2 || !l.Expires.Equal(at(2*ttl)) {
			t.Fatalf("re-claimed lease: %+v", l)
		}
	}
	wantIDs(t, "the old holder's renewal", renew(t, s, "h1", at(ttl), ttl))
	wantIDs(t, "h2's leases are still live", renew(t, s, "h2", at(ttl), ttl), "l3", "l4")

	if _, err := s.ClaimJobs(ctx, "", at(0), ttl, 1); err == nil {
		t.Fatal("an empty holder id must be refused")
	}
	if _, err := s.ClaimJobs(ctx, "h1", at(0), 0, 1); err == nil {
		t.Fatal("a zero ttl must be refused")
	}
}

func testLeaseRenewals(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	startedJobs(t, s, a.ID, "ra", "rb", "rc")
	const ttl = 20 * time.Second
	claim(t, s, "h1", at(0), ttl, 10)

	got := renew(t, s, "h1", at(10*time.Second), ttl)
	wantIDs(t, "renewal", got, "ra", "rb", "rc")
	for _, l := range got {
		if l.Token != 1 || !l.Expires.Equal(at(30*time.Second)) {
			t.Fatalf("renewed lease: %+v", l)
		}
	}
	wantIDs(t, "renewed leases are live past the first expiry", claim(t, s, "h2", at(25*time.Second), ttl, 10))

	// A stop drops the lease at once: started again before h1 renews, the job is free for
	// anyone, with a bigger token.
	_, err := s.SetJobStatus(ctx, a.ID, "ra", snapshot.StatusStarted, snapshot.StatusPaused, false, 0, at(11*time.Second))
	must(t, err)
	_, err = s.SetJobStatus(ctx, a.ID, "ra", snapshot.StatusPaused, snapshot.StatusStarted, true, 0, at(12*time.Second))
	must(t, err)
	again := claim(t, s, "h2", at(12*time.Second), ttl, 10)
	wantIDs(t, "claim after a stop and a start", again, "ra")
	if again[0].Token != 2 || again[0].Job.Generation != 2 {
		t.Fatalf("re-claimed after stop: %+v", again[0])
	}
	// A restart keeps the lease and shows the new generation.
	_, err = s.SetJobStatus(ctx, a.ID, "rb", snapshot.StatusStarted, snapshot.StatusStarted, true, 0, at(13*time.Second))
	must(t, err)
	got = renew(t, s, "h1", at(14*time.Second), ttl)
	wantIDs(t, "renewal after stop and restart", got, "rb", "rc")
	if got[0].Job.Generation != 2 || got[0].Token != 1 || got[1].Job.Generation != 1 {
		t.Fatalf("restart seen on renewal: %+v", got)
	}
	// Stopped while held, a job is not renewed.
	_, err = s.SetJobStatus(ctx, a.ID, "ra", snapshot.StatusStarted, snapshot.StatusPaused, false, 0, at(15*time.Second))
	must(t, err)
	wantIDs(t, "renewal of a stopped job", renew(t, s, "h2", at(15*time.Second), ttl))
	_, err = s.SetJobStatus(ctx, a.ID, "ra", snapshot.StatusPaused, snapshot.StatusStarted, true, 0, at(16*time.Second))
	must(t, err)
	// A holder whose leases expired gets nothing back from a late renewal.
	wantIDs(t, "late renewal", renew(t, s, "h1", at(time.Hour), ttl))
	wantIDs(t, "free again, oldest (re)started first", claim(t, s, "h3", at(time.Hour), ttl, 2), "rc", "rb")
	wantIDs(t, "the rest", claim(t, s, "h3", at(time.Hour), ttl, 2), "ra")
}

func testLeaseReleases(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	startedJobs(t, s, a.ID, "xa", "xb", "xc")
	const ttl = time.Minute
	claim(t, s, "h1", at(0), ttl, 2)
	claim(t, s, "h2", at(0), ttl, 2)
	_, err := s.Heartbeat(ctx, store.Holder{ID: "h2", Node: "n2", PID: 2}, at(0), ttl)
	must(t, err)

	// Only h1's own leases go; unknown jobs and other holders' jobs are ignored.
	must(t, s.ReleaseLeases(ctx, "h1", []string{"xa", "xc", "nope"}))
	must(t, s.ReleaseLeases(ctx, "h1", nil))
	wantIDs(t, "h1 after release", renew(t, s, "h1", at(time.Second), ttl), "xb")
	wantIDs(t, "h2 keeps its job", renew(t, s, "h2", at(time.Second), ttl), "xc")
	got := claim(t, s, "h3", at(time.Second), ttl, 10)
	wantIDs(t, "released jobs are claimable at once", got, "xa")
	if got[0].Token != 2 {
		t.Fatalf("token after release: %+v", got[0])
	}

	must(t, s.ReleaseHolder(ctx, "h2"))
	wantIDs(t, "a released holder renews nothing", renew(t, s, "h2", at(2*time.Second), ttl))
	wantIDs(t, "its jobs are free", claim(t, s, "h3", at(2*time.Second), ttl, 10), "xc")
	stats, err := s.Heartbeat(ctx, store.Holder{ID: "h3"}, at(2*time.Second), ttl)
	must(t, err)
	for _, h := range stats.Holders {
		if h.ID == "h2" {
			t.Fatalf("a released holder is still listed: %+v", stats)
		}
	}
	must(t, s.ReleaseHolder(ctx, "never-seen"))
}

func testHeartbeats(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	startedJobs(t, s, a.ID, "ha", "hb", "hc", "hd")
	const hbTTL, leaseTTL = 10 * time.Second, time.Minute
	_, err := s.Heartbeat(ctx, store.Holder{ID: "h1", Node: "node-1", PID: 11}, at(0), hbTTL)
	must(t, err)
	_, err = s.Heartbeat(ctx, store.Holder{ID: "h2", Node: "node-2", PID: 22}, at(0), hbTTL)
	must(t, err)
	claim(t, s, "h1", at(0), leaseTTL, 2)
	claim(t, s, "h2", at(0), leaseTTL, 1)

	stats, err := s.Heartbeat(ctx, store.Holder{ID: "h1", Node: "node-1b", PID: 12}, at(5*time.Second), hbTTL)
	must(t, err)
	want := []store.Holder{
		{ID: "h1", Node: "node-1b", PID: 12, Heartbeat: at(5 * time.Second), Leases: 2},
		{ID: "h2", Node: "node-2", PID: 22, Heartbeat: at(0), Leases: 1},
	}
	if !slices.Equal(stats.Holders, want) || stats.StartedJobs != 4 {
		t.Fatalf("stats %+v, want holders %+v and 4 started jobs", stats, want)
	}

	// h2 stays silent for longer than the ttl: it is dropped with its lease, long before the
	// lease itself would expire.
	stats, err = s.Heartbeat(ctx, store.Holder{ID: "h1", Node: "node-1b", PID: 12}, at(11*time.Second), hbTTL)
	must(t, err)
	if len(stats.Holders) != 1 || stats.Holders[0].ID != "h1" || stats.Holders[0].Leases != 2 {
		t.Fatalf("after h2 went silent: %+v", stats)
	}
	wantIDs(t, "the dead holder's job and the unheld one", claim(t, s, "h1", at(11*time.Second), leaseTTL, 10), "hc", "hd")
	wantIDs(t, "the dead holder renews nothing", renew(t, s, "h2", at(12*time.Second), leaseTTL))

	// Lease counts are of live leases only; the job count is of started jobs.
	_, err = s.SetJobStatus(ctx, a.ID, "hd", snapshot.StatusStarted, snapshot.StatusPaused, false, 0, at(12*time.Second))
	must(t, err)
	stats, err = s.Heartbeat(ctx, store.Holder{ID: "h1"}, at(65*time.Second), time.Hour)
	must(t, err)
	if len(stats.Holders) != 1 || stats.Holders[0].Leases != 1 || stats.StartedJobs != 3 {
		t.Fatalf("after the first leases expired: %+v", stats)
	}
	if _, err := s.Heartbeat(ctx, store.Holder{ID: ""}, at(0), hbTTL); err == nil {
		t.Fatal("an empty holder id must be refused")
	}
}

func testFencedCaptures(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	startedJobs(t, s, a.ID, "fj")
	const ttl = 10 * time.Second
	first := claim(t, s, "h1", at(0), ttl, 1)[0]
	n := 0
	capture := func(holder string, token int64) error {
		n++
		return s.RecordCapture(ctx, store.Capture{JobID: "fj", Generation: 1, Holder: holder, Token: token,
			Files:     []snapshot.File{{AccountID: a.ID, JobID: "fj", Endpoint: "e", Bucket: "b", Object: fmt.Sprintf("s/%d.jpg", n), CreateTime: at(time.Duration(n) * time.Second)}},
			Callbacks: []store.Callback{{URL: "http://x/cb", Body: fmt.Appendf(nil, `{"n":%d}`, n)}}})
	}
	records := func() int {
		fs, err := s.ListFiles(ctx, store.FileQuery{AccountID: a.ID, JobID: "fj", Start: at(-time.Hour), End: at(time.Hour), Limit: 100})
		must(t, err)
		return len(fs)
	}
	must(t, capture("h1", first.Token))
	for _, c := range []struct {
		holder string
		token  int64
	}{{"h1", first.Token + 1}, {"h2", first.Token}} {
		if err := capture(c.holder, c.token); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("capture by %s with token %d: %v", c.holder, c.token, err)
		}
	}
	second := claim(t, s, "h2", at(ttl), ttl, 1)[0]
	if second.Token <= first.Token {
		t.Fatalf("tokens %d then %d", first.Token, second.Token)
	}
	if err := capture("h1", first.Token); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the old holder's capture after the re-claim: %v", err)
	}
	must(t, capture("h2", second.Token))
	if got := records(); got != 2 {
		t.Fatalf("%d records, want the 2 accepted captures", got)
	}
	cbs, err := s.ClaimCallbacks(ctx, time.Now().Add(time.Minute), 10, time.Minute)
	must(t, err)
	if len(cbs) != 2 || string(cbs[0].Body) != `{"n":1}` || string(cbs[1].Body) != fmt.Sprintf(`{"n":%d}`, n) {
		t.Fatalf("refused captures queued callbacks: %+v", cbs)
	}
	_, err = s.SetJobStatus(ctx, a.ID, "fj", snapshot.StatusStarted, snapshot.StatusPaused, false, 0, at(ttl))
	must(t, err)
	if err := capture("h2", second.Token); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("capture after stop: %v", err)
	}
	if got := records(); got != 2 {
		t.Fatalf("%d records after refused captures", got)
	}
}

func testJobsVersion(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	version := func() int64 {
		v, err := s.JobsVersion(ctx)
		must(t, err)
		return v
	}
	last := version()
	step := func(what string, grows bool) {
		t.Helper()
		v := version()
		if grows && v <= last || !grows && v != last {
			t.Fatalf("%s: version %d -> %d", what, last, v)
		}
		last = v
	}
	newJob(t, s, a.ID, "vj")
	step("submit", true)
	_, err := s.SetJobStatus(ctx, a.ID, "vj", snapshot.StatusInit, snapshot.StatusStarted, true, 0, at(0))
	must(t, err)
	step("start", true)
	_, err = s.SetJobStatus(ctx, a.ID, "vj", snapshot.StatusStarted, snapshot.StatusStarted, true, 0, at(0))
	must(t, err)
	step("restart", true)
	l := claim(t, s, "h1", at(0), time.Minute, 1)
	renew(t, s, "h1", at(time.Second), time.Minute)
	_, err = s.NextSequence(ctx, "vj")
	must(t, err)
	must(t, s.RecordCapture(ctx, store.Capture{JobID: "vj", Generation: 2, Holder: "h1", Token: l[0].Token}))
	must(t, s.SetJobRuntime(ctx, store.JobRuntime{JobID: "vj", Generation: 2, RunState: "capturing", Updated: at(0)}))
	step("leases, sequences, captures and runtime status", false)
	if _, err := s.SetJobStatus(ctx, a.ID, "vj", snapshot.StatusInit, snapshot.StatusStarted, true, 0, at(0)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale start: %v", err)
	}
	step("a refused command", false)
	_, err = s.SetJobStatus(ctx, a.ID, "vj", snapshot.StatusStarted, snapshot.StatusPaused, false, 0, at(0))
	must(t, err)
	step("stop", true)
}

// testNonceRace: the same nonce sent to several nodes at once is accepted exactly once.
func testNonceRace(t *testing.T, handles []store.Store) {
	exp := time.Now().Add(time.Minute)
	for round := 0; round < 10; round++ {
		var accepted atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := handles[i%len(handles)].UseNonce(ctx, "race-key", fmt.Sprintf("nonce-%d", round), exp)
				if err != nil {
					t.Error(err)
				}
				if ok {
					accepted.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := accepted.Load(); n != 1 {
			t.Fatalf("nonce %d accepted %d times", round, n)
		}
	}
}

// testClaimRace: holders on several handles claim at once, in rounds far enough apart that
// every lease of the previous round has expired; each round hands each job to exactly one
// holder, with the next token.
func testClaimRace(t *testing.T, handles []store.Store) {
	s := handles[0]
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	var ids []string
	for i := 0; i < 24; i++ {
		ids = append(ids, fmt.Sprintf("cj%02d", i))
	}
	startedJobs(t, s, a.ID, ids...)
	const ttl, holders, rounds = time.Minute, 6, 3
	for round := 0; round < rounds; round++ {
		now := at(time.Duration(round) * ttl)
		var mu sync.Mutex
		owner := map[string]string{}
		var wg sync.WaitGroup
		for h := 0; h < holders; h++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("holder-%d", h)
				for {
					ls, err := handles[h%len(handles)].ClaimJobs(ctx, id, now, ttl, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(ls) == 0 {
						return
					}
					mu.Lock()
					for _, l := range ls {
						if prev, dup := owner[l.Job.ID]; dup {
							t.Errorf("round %d: job %s handed to %s and %s", round, l.Job.ID, prev, id)
						}
						owner[l.Job.ID] = id
						if l.Token != int64(round+1) {
							t.Errorf("round %d: job %s token %d", round, l.Job.ID, l.Token)
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(owner) != len(ids) {
			t.Fatalf("round %d: %d of %d jobs claimed", round, len(owner), len(ids))
		}
	}
}

// testFenceRace: an old holder keeps writing (large captures, so a write is often in flight)
// while a new holder claims the job on another handle. Once the claim has returned, no write
// with the old token gets through, and none that was in flight lands later.
func testFenceRace(t *testing.T, handles []store.Store) {
	s := handles[0]
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	startedJobs(t, s, a.ID, "race")
	const ttl = 10 * time.Second
	old := claim(t, s, "old", at(0), ttl, 1)[0]
	oldRecords := func() int {
		fs, err := s.ListFiles(ctx, store.FileQuery{AccountID: a.ID, JobID: "race", Start: at(-time.Hour), End: at(time.Hour), Limit: 1 << 20})
		must(t, err)
		return len(fs)
	}
	var reclaimed, stop atomic.Bool
	var lateWrites atomic.Int32
	var writeErr error // the writer's unexpected error, read after done
	warm, done := make(chan struct{}), make(chan struct{})
	// However this test ends (a t.Fatal included), the writer stops before it does: it
	// must not touch t or the store afterwards.
	defer func() { stop.Store(true); <-done }()
	go func() {
		defer close(done)
		accepted, late := 0, 0
		for i := 0; i < 100000 && late < 20 && !stop.Load(); i++ {
			after := reclaimed.Load()
			var files []snapshot.File
			for k := 0; k < 20; k++ {
				files = append(files, snapshot.File{AccountID: a.ID, JobID: "race", Object: fmt.Sprintf("old/%d-%d.jpg", i, k), CreateTime: at(time.Duration(i) * time.Millisecond)})
			}
			err := handles[1%len(handles)].RecordCapture(ctx, store.Capture{JobID: "race", Generation: 1, Holder: "old", Token: old.Token, Files: files})
			switch {
			case err == nil && after:
				lateWrites.Add(1)
			case err == nil:
				if accepted++; accepted == 3 {
					close(warm) // the old holder is writing: now take the job away
				}
			case !errors.Is(err, store.ErrConflict):
				writeErr = err
				return
			}
			if after {
				late++
			}
			// A breath between captures, as a real holder has (one per interval): without
			// it this loop retakes SQLite's one write lock the moment it commits, and the
			// claimer's busy wait can starve past its timeout on a loaded machine.
			time.Sleep(200 * time.Microsecond)
		}
	}()
	select {
	case <-warm:
	case <-done:
		t.Fatal("the old holder never got its writes in")
	}
	// A claimer passes over a job whose capture is being written (SKIP LOCKED), so it may
	// take a few tries.
	var got []store.Lease
	for try := 0; len(got) == 0 && try < 1000; try++ {
		got = claim(t, s, "new", at(ttl), ttl, 1)
	}
	reclaimed.Store(true)
	atClaim := oldRecords()
	<-done
	if writeErr != nil {
		t.Fatalf("the old holder's write: %v", writeErr)
	}
	if len(got) != 1 || got[0].Token <= old.Token {
		t.Fatalf("re-claim: %+v", got)
	}
	if n := lateWrites.Load(); n > 0 {
		t.Fatalf("%d writes with the old token got through after the re-claim", n)
	}
	if n := oldRecords(); n != atClaim {
		t.Fatalf("%d records when the claim returned, %d later: a write in flight landed after the new holder took over", atClaim, n)
	}
}

// testAccountIDs: accounts created at once on several handles all get their own id.
func testAccountIDs(t *testing.T, handles []store.Store) {
	var mu sync.Mutex
	ids := map[int64]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := handles[i%len(handles)].CreateAccount(ctx, auth.Account{ServiceEnabled: true})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ids[a.ID] {
				t.Errorf("account id %d given twice", a.ID)
			}
			ids[a.ID] = true
		}()
	}
	wg.Wait()
}
