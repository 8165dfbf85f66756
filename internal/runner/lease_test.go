package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/rtmpserver"
	"github.com/livesnap/livesnap/internal/rtmpserver/rtmptest"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/store"
	"github.com/livesnap/livesnap/internal/store/sqlite"
	"github.com/livesnap/livesnap/internal/testenv"
)

// holderRun is one Manager running in the background, as a runner process would.
type holderRun struct {
	m    *Manager
	stop context.CancelFunc
	done chan struct{}
}

func startHolder(t *testing.T, db store.Store, id string, open OpenFunc, ttl time.Duration, blobs blob.Writer) *holderRun {
	t.Helper()
	if blobs == nil {
		blobs = &blob.Local{Root: t.TempDir()}
	}
	m := &Manager{Store: db, Blobs: blobs, HolderID: id, LeaseTTL: ttl, Poll: 50 * time.Millisecond, Open: open}
	ctx, cancel := context.WithCancel(context.Background())
	h := &holderRun{m: m, stop: cancel, done: make(chan struct{})}
	go func() { defer close(h.done); m.Run(ctx) }()
	t.Cleanup(h.halt)
	return h
}

func (h *holderRun) halt() {
	h.stop()
	<-h.done
}

// runningJobs is the set of job ids whose pipelines run in m now.
func runningJobs(m *Manager) map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bool{}
	for id := range m.running {
		out[id] = true
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last: %s)", what, within, last)
}

// newJobs stores n started jobs on stream url (a URL nobody serves is fine where only the
// lease distribution matters: their pipelines wait for the stream).
func newJobs(t *testing.T, db store.Store, n int, url string, interval int) (int64, []string) {
	t.Helper()
	ctx := context.Background()
	acct, err := db.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		now := time.Now()
		j := snapshot.Job{AccountID: acct.ID, ID: fmt.Sprintf("job-%02d", i), Name: "j", TimeInterval: interval,
			SequenceFormat: "{JobId}/{Sequence}.jpg", Status: snapshot.StatusInit,
			Input:  snapshot.StreamInput{Type: "rtmp", URL: url},
			Output: snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "e", Bucket: "bkt"}, CreateTime: now, LastModified: now}
		if err := db.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SetJobStatus(ctx, acct.ID, j.ID, snapshot.StatusInit, snapshot.StatusStarted, true, 0, now); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	return acct.ID, ids
}

func noStream(ctx context.Context, in snapshot.StreamInput, readTimeout time.Duration) (source.Stream, error) {
	return nil, source.ErrStreamNotFound
}

// Holders share the started jobs: each job runs in exactly one of them, the load is even, a
// holder that stops hands its jobs to the others, and a holder that joins gets its fair share
// over time.
func TestHoldersShareJobs(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, jobs := newJobs(t, db, 12, "rtmp://127.0.0.1:1/live/none", 5)

	ttl := 3 * time.Second
	holders := []*holderRun{startHolder(t, db, "a", noStream, ttl, nil), startHolder(t, db, "b", noStream, ttl, nil)}
	spread := func(hs []*holderRun) (bool, string) {
		seen := map[string]int{}
		counts := []int{}
		for _, h := range hs {
			r := runningJobs(h.m)
			counts = append(counts, len(r))
			for id := range r {
				seen[id]++
			}
		}
		lo, hi := counts[0], counts[0]
		for _, c := range counts {
			lo, hi = min(lo, c), max(hi, c)
		}
		for _, id := range jobs {
			if seen[id] != 1 {
				return false, fmt.Sprintf("job %s runs in %d holders; loads %v", id, seen[id], counts)
			}
		}
		return hi-lo <= 1, fmt.Sprintf("loads %v", counts)
	}
	eventually(t, 20*time.Second, "two holders split 12 jobs", func() (bool, string) { return spread(holders) })

	holders = append(holders, startHolder(t, db, "c", noStream, ttl, nil))
	eventually(t, 60*time.Second, "a third holder takes its share", func() (bool, string) { return spread(holders) })

	holders[0].halt() // a clean stop releases its leases at once
	eventually(t, 20*time.Second, "the others take over a stopped holder's jobs", func() (bool, string) { return spread(holders[1:]) })
}

// failingStore makes a holder lose contact with the store, as a network partition or a
// paused process would, while the store itself stays fine for everyone else.
type failingStore struct {
	store.Store
	cut atomic.Bool
}

var errCut = errors.New("store unreachable (test)")

func (f *failingStore) Heartbeat(ctx context.Context, h store.Holder, now time.Time, ttl time.Duration) (store.LeaseStats, error) {
	if f.cut.Load() {
		return store.LeaseStats{}, errCut
	}
	return f.Store.Heartbeat(ctx, h, now, ttl)
}

func (f *failingStore) RenewLeases(ctx context.Context, holder string, now time.Time, ttl time.Duration) ([]store.Lease, error) {
	if f.cut.Load() {
		return nil, errCut
	}
	return f.Store.RenewLeases(ctx, holder, now, ttl)
}

// recordingBlobs remembers which holder wrote which object, and when.
type recordingBlobs struct {
	blob.Writer
	holder string
	mu     *sync.Mutex
	writes *[]objectWrite
}

type objectWrite struct {
	holder, object string
	at             time.Time
}

func (r recordingBlobs) Put(ctx context.Context, out snapshot.SnapshotOutput, object string, data []byte) error {
	start := time.Now()
	if err := r.Writer.Put(ctx, out, object, data); err != nil {
		return err
	}
	r.mu.Lock()
	*r.writes = append(*r.writes, objectWrite{r.holder, object, start})
	r.mu.Unlock()
	return nil
}

// A holder cut off from the store stops writing before its lease can pass to another
// holder, and the new holder's pipeline takes over: no object or record is ever written by
// the old holder after the new one has the job, and {Sequence} never repeats.
func TestLostLeaseStopsWritesBeforeTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	testenv.NeedFFmpeg(t)
	relay := &rtmpserver.Server{Addr: "127.0.0.1:0"}
	if err := relay.Start(); err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	url := "rtmp://" + relay.ListenAddr() + "/live/fence"
	rtmptest.PublishClip(t, url, "0:v")

	dir := t.TempDir()
	db, err := sqlite.Open(filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	acct, jobs := newJobs(t, db, 1, url, 1)

	var mu sync.Mutex
	var writes []objectWrite
	open := func(ctx context.Context, in snapshot.StreamInput, readTimeout time.Duration) (source.Stream, error) {
		return source.Open(ctx, in.Type, in.URL, source.Options{ConnectTimeout: 5 * time.Second, ReadTimeout: readTimeout})
	}
	ttl := 3 * time.Second
	root := filepath.Join(dir, "objects")
	newHolder := func(id string, s store.Store) *holderRun {
		return startHolder(t, s, id, open, ttl, recordingBlobs{Writer: &blob.Local{Root: root}, holder: id, mu: &mu, writes: &writes})
	}
	cutA := &failingStore{Store: db}
	a := newHolder("a", cutA)
	countBy := func(holder string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, w := range writes {
			if w.holder == holder {
				n++
			}
		}
		return n
	}
	eventually(t, 30*time.Second, "holder a captures", func() (bool, string) { return countBy("a") >= 2, "" })

	b := newHolder("b", db) // b has nothing to claim while a holds the job
	time.Sleep(time.Second)
	if n := countBy("b"); n != 0 {
		t.Fatalf("b wrote %d objects while a held the job", n)
	}
	cutA.cut.Store(true)
	cutAt := time.Now()
	eventually(t, 30*time.Second, "holder b takes over", func() (bool, string) { return countBy("b") >= 2, "" })

	mu.Lock()
	var firstB, lastA time.Time
	for _, w := range writes {
		switch {
		case w.holder == "b" && firstB.IsZero():
			firstB = w.at
		case w.holder == "a":
			lastA = w.at
		}
	}
	mu.Unlock()
	if !lastA.Before(firstB) {
		t.Fatalf("a wrote at %v, after b's first write at %v", lastA, firstB)
	}
	if gap := firstB.Sub(cutAt); gap > ttl+10*time.Second {
		t.Errorf("takeover took %v", gap)
	}
	t.Logf("a's last write %v after the cut, b's first %v after", lastA.Sub(cutAt), firstB.Sub(cutAt))
	b.halt()
	a.halt()

	// Every record points to a distinct object that exists, and sequence numbers never repeat.
	files, err := db.ListFiles(context.Background(), store.FileQuery{AccountID: acct, JobID: jobs[0],
		Start: time.Now().Add(-time.Hour), End: time.Now().Add(time.Hour), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f.Object] {
			t.Errorf("object %s recorded twice", f.Object)
		}
		seen[f.Object] = true
		if _, err := os.Stat(filepath.Join(root, "bkt", f.Object)); err != nil {
			t.Errorf("record without object: %v", err)
		}
	}
	if len(files) < 4 {
		t.Fatalf("%d records", len(files))
	}
}
