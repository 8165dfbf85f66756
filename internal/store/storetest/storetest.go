// Package storetest is the conformance suite every store.Store implementation must pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// Run runs the suite; open returns a fresh, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, open(t)) })
	t.Run("Nonces", func(t *testing.T) { testNonces(t, open(t)) })
	t.Run("TemplatesAndJobs", func(t *testing.T) { testTemplatesAndJobs(t, open(t)) })
	t.Run("JobLimitIsAtomic", func(t *testing.T) { testJobLimit(t, open(t)) })
	t.Run("Files", func(t *testing.T) { testFiles(t, open(t)) })
	t.Run("SequenceNeverRepeats", func(t *testing.T) { testSequence(t, open(t)) })
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testAccounts(t *testing.T, s store.Store) {
	a, err := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	must(t, err)
	b, err := s.CreateAccount(ctx, auth.Account{})
	must(t, err)
	if a.ID == 0 || a.ID == b.ID {
		t.Fatalf("account ids %d %d", a.ID, b.ID)
	}
	got, err := s.GetAccount(ctx, a.ID)
	must(t, err)
	if !got.ServiceEnabled || got.JobLimit != auth.DefaultJobLimit {
		t.Fatalf("account read back as %+v", got)
	}
	if _, err := s.GetAccount(ctx, 42); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing account: %v", err)
	}
	n, err := s.CountAccounts(ctx)
	must(t, err)
	if n != 2 {
		t.Fatalf("count %d", n)
	}
	must(t, s.CreateAccessKey(ctx, auth.AccessKey{ID: "k1", AccountID: a.ID, Secret: "s", Policy: []string{"ice:Get*"}}))
	k, err := s.GetAccessKey(ctx, "k1")
	must(t, err)
	if k.AccountID != a.ID || k.Secret != "s" || len(k.Policy) != 1 || k.Policy[0] != "ice:Get*" {
		t.Fatalf("key read back as %+v", k)
	}
	if _, err := s.GetAccessKey(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

func testNonces(t *testing.T, s store.Store) {
	exp := time.Now().Add(time.Minute)
	fresh, err := s.UseNonce(ctx, "k", "n1", exp)
	must(t, err)
	again, err := s.UseNonce(ctx, "k", "n1", exp)
	must(t, err)
	other, err := s.UseNonce(ctx, "k2", "n1", exp)
	must(t, err)
	if !fresh || again || !other {
		t.Fatalf("fresh=%v again=%v otherKey=%v", fresh, again, other)
	}
	// An expired nonce may be used again (the timestamp window refuses such old requests anyway).
	_, err = s.UseNonce(ctx, "k", "old", time.Now().Add(-time.Second))
	must(t, err)
	reuse, err := s.UseNonce(ctx, "k", "old", exp)
	must(t, err)
	if !reuse {
		t.Fatal("an expired nonce should be usable again")
	}
}

func newJob(t *testing.T, s store.Store, account int64, id string) snapshot.Job {
	now := time.Now().UTC().Truncate(time.Millisecond)
	j := snapshot.Job{AccountID: account, ID: id, Name: "job " + id, TemplateID: "tpl", TemplateName: "T",
		TimeInterval: 5, SequenceFormat: "{JobId}/{Sequence}.jpg", OverwriteFormat: "{JobId}.jpg", Status: snapshot.StatusInit,
		Input:  snapshot.StreamInput{Type: "rtmp", URL: "rtmp://127.0.0.1/live/" + id},
		Output: snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Bucket: "b"},
		CallbackURL: "http://127.0.0.1/cb", CreateTime: now, LastModified: now}
	must(t, s.CreateJob(ctx, j))
	return j
}

func testTemplatesAndJobs(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	b, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	now := time.Now().UTC().Truncate(time.Millisecond)
	tpl := snapshot.Template{AccountID: a.ID, ID: "tpl-1", Name: "T 1", Type: snapshot.TypeCustom, TimeInterval: 5,
		OverwriteFormat: "o/{JobId}.jpg", SequenceFormat: "s/{Sequence}.jpg", CreateTime: now, LastModified: now}
	must(t, s.CreateTemplate(ctx, tpl))
	got, err := s.GetTemplate(ctx, a.ID, "tpl-1")
	must(t, err)
	if got != tpl {
		t.Fatalf("template read back as %+v, want %+v", got, tpl)
	}
	if _, err := s.GetTemplate(ctx, b.ID, "tpl-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other account's template must be not found, got %v", err)
	}

	j := newJob(t, s, a.ID, "job-1")
	gotJob, err := s.GetJob(ctx, a.ID, "job-1")
	must(t, err)
	if gotJob != j {
		t.Fatalf("job read back as %+v, want %+v", gotJob, j)
	}
	if _, err := s.GetJob(ctx, b.ID, "job-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other account's job must be not found, got %v", err)
	}
	started, err := s.SetJobStatus(ctx, a.ID, "job-1", snapshot.StatusInit, snapshot.StatusStarted, true, 10, now)
	must(t, err)
	if started.Status != snapshot.StatusStarted || started.Generation != 1 {
		t.Fatalf("after start: %+v", started)
	}
	if _, err := s.SetJobStatus(ctx, a.ID, "job-1", snapshot.StatusInit, snapshot.StatusStarted, true, 10, now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale from-status must conflict, got %v", err)
	}
	if _, err := s.SetJobStatus(ctx, b.ID, "job-1", snapshot.StatusStarted, snapshot.StatusPaused, false, 0, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other account must not change the job, got %v", err)
	}
	list, err := s.ListStartedJobs(ctx)
	must(t, err)
	if len(list) != 1 || list[0].ID != "job-1" || list[0].Generation != 1 {
		t.Fatalf("started jobs: %+v", list)
	}
}

func testJobLimit(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	const jobs, limit = 12, 5
	for i := 0; i < jobs; i++ {
		newJob(t, s, a.ID, fmt.Sprintf("j%d", i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, limited := 0, 0
	for i := 0; i < jobs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := s.SetJobStatus(ctx, a.ID, fmt.Sprintf("j%d", i), snapshot.StatusInit, snapshot.StatusStarted, true, limit, time.Now())
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrLimitExceeded):
				limited++
			default:
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if ok != limit || limited != jobs-limit {
		t.Fatalf("started %d, limited %d; want %d and %d", ok, limited, limit, jobs-limit)
	}
	// A restart of a started job does not count the job against itself.
	list, _ := s.ListStartedJobs(ctx)
	if _, err := s.SetJobStatus(ctx, a.ID, list[0].ID, snapshot.StatusStarted, snapshot.StatusStarted, true, limit, time.Now()); err != nil {
		t.Fatalf("restart at the limit: %v", err)
	}
}

func testFiles(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	b, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	newJob(t, s, a.ID, "job-f")
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		at := base.Add(time.Duration(i) * 1500 * time.Millisecond)
		must(t, s.RecordFiles(ctx, []snapshot.File{
			{AccountID: a.ID, JobID: "job-f", Endpoint: "e", Bucket: "b", Object: fmt.Sprintf("s/%d.jpg", i), CreateTime: at},
			{AccountID: a.ID, JobID: "job-f", Endpoint: "e", Bucket: "b", Object: "o.jpg", CreateTime: at, IsOverlay: true},
		}))
	}
	all, err := s.ListFiles(ctx, store.FileQuery{AccountID: a.ID, JobID: "job-f", Start: base, End: base.Add(time.Hour), Limit: 100})
	must(t, err)
	if len(all) != 6 {
		t.Fatalf("want 5 sequence records and 1 overlay record, got %d: %+v", len(all), all)
	}
	last := all[len(all)-1]
	if !last.IsOverlay || !last.CreateTime.Equal(base.Add(6*time.Second)) {
		t.Fatalf("overlay record must carry the latest capture time: %+v", all)
	}
	// The overlay record never moves back in time.
	must(t, s.RecordFiles(ctx, []snapshot.File{{AccountID: a.ID, JobID: "job-f", Endpoint: "e", Bucket: "b", Object: "o.jpg", CreateTime: base, IsOverlay: true}}))
	desc, err := s.ListFiles(ctx, store.FileQuery{AccountID: a.ID, JobID: "job-f", Start: base, End: base.Add(time.Hour), Limit: 2, Desc: true})
	must(t, err)
	if len(desc) != 2 || !desc[0].IsOverlay || desc[1].Object != "s/4.jpg" || !desc[1].CreateTime.Equal(base.Add(6*time.Second)) {
		t.Fatalf("desc page: %+v", desc)
	}
	window, err := s.ListFiles(ctx, store.FileQuery{AccountID: a.ID, JobID: "job-f", Start: base.Add(1500 * time.Millisecond), End: base.Add(3 * time.Second), Limit: 100})
	must(t, err)
	if len(window) != 2 || window[0].Object != "s/1.jpg" || window[1].Object != "s/2.jpg" {
		t.Fatalf("window must be inclusive at both ends: %+v", window)
	}
	other, err := s.ListFiles(ctx, store.FileQuery{AccountID: b.ID, JobID: "job-f", Start: base, End: base.Add(time.Hour), Limit: 100})
	must(t, err)
	if len(other) != 0 {
		t.Fatalf("another account sees %d records", len(other))
	}
}

func testSequence(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	newJob(t, s, a.ID, "job-s")
	seen := make(map[int64]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.NextSequence(ctx, "job-s")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[n] {
				t.Errorf("sequence %d handed out twice", n)
			}
			seen[n] = true
		}()
	}
	wg.Wait()
	for i := int64(1); i <= 40; i++ {
		if !seen[i] {
			t.Fatalf("sequence %d missing: numbers must start at 1 and have no gaps here", i)
		}
	}
	if _, err := s.NextSequence(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
}
