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

// Run runs the suite; open returns a fresh, empty store for each subtest. The concurrency
// tests run with many goroutines on that one store; RunShared runs them across handles.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, open(t)) })
	t.Run("FirstAccount", func(t *testing.T) { testFirstAccount(t, open(t)) })
	t.Run("Nonces", func(t *testing.T) { testNonces(t, open(t)) })
	t.Run("TemplatesAndJobs", func(t *testing.T) { testTemplatesAndJobs(t, open(t)) })
	t.Run("Files", func(t *testing.T) { testFiles(t, open(t)) })
	t.Run("ListsAndUpdates", func(t *testing.T) { testLists(t, open(t)) })
	t.Run("DeleteFiles", func(t *testing.T) { testDeleteFiles(t, open(t)) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open(t)) })
	t.Run("Runtime", func(t *testing.T) { testRuntime(t, open(t)) })
	t.Run("LeaseClaims", func(t *testing.T) { testLeaseClaims(t, open(t)) })
	t.Run("LeaseRenewals", func(t *testing.T) { testLeaseRenewals(t, open(t)) })
	t.Run("LeaseReleases", func(t *testing.T) { testLeaseReleases(t, open(t)) })
	t.Run("Heartbeats", func(t *testing.T) { testHeartbeats(t, open(t)) })
	t.Run("FencedCaptures", func(t *testing.T) { testFencedCaptures(t, open(t)) })
	t.Run("JobsVersion", func(t *testing.T) { testJobsVersion(t, open(t)) })
	t.Run("TokenBuckets", func(t *testing.T) { testTokenBuckets(t, open(t)) })
	t.Run("BucketOwners", func(t *testing.T) { testBuckets(t, open(t)) })
	runConcurrent(t, func(t *testing.T, n int) []store.Store {
		s := open(t)
		handles := make([]store.Store, n)
		for i := range handles {
			handles[i] = s
		}
		return handles
	})
}

// RunShared runs the concurrency tests with several handles on one database, as several
// processes or nodes have them; open returns n handles on one fresh, empty database.
func RunShared(t *testing.T, open func(t *testing.T, n int) []store.Store) {
	runConcurrent(t, open)
}

func runConcurrent(t *testing.T, open func(t *testing.T, n int) []store.Store) {
	t.Run("AccountIDsAreUnique", func(t *testing.T) { testAccountIDs(t, open(t, 3)) })
	t.Run("OneFirstAccount", func(t *testing.T) { testFirstAccountRace(t, open(t, 3)) })
	t.Run("JobLimitIsAtomic", func(t *testing.T) { testJobLimit(t, open(t, 4)) })
	t.Run("SequenceNeverRepeats", func(t *testing.T) { testSequence(t, open(t, 4)) })
	t.Run("NonceIsUsedOnce", func(t *testing.T) { testNonceRace(t, open(t, 4)) })
	t.Run("TokensAreNeverOverdrawn", func(t *testing.T) { testTokenRace(t, open(t, 4)) })
	t.Run("ClaimersNeverShareAJob", func(t *testing.T) { testClaimRace(t, open(t, 3)) })
	t.Run("FenceHoldsUnderConcurrency", func(t *testing.T) { testFenceRace(t, open(t, 2)) })
	t.Run("OneOwnerPerBucket", func(t *testing.T) { testBucketRace(t, open(t, 3)) })
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
	must(t, s.CreateAccessKey(ctx, auth.AccessKey{ID: "k2", AccountID: b.ID, Secret: "s2", Policy: auth.FullAccess}))
	keys, err := s.ListAccessKeys(ctx, a.ID)
	must(t, err)
	if len(keys) != 1 || keys[0].ID != "k1" {
		t.Fatalf("keys of a: %+v", keys)
	}
	keys, err = s.ListAccessKeys(ctx, 0)
	must(t, err)
	if len(keys) != 2 {
		t.Fatalf("all keys: %+v", keys)
	}
	must(t, s.SetAccessKeyDisabled(ctx, "k1", true))
	if k, _ := s.GetAccessKey(ctx, "k1"); !k.Disabled {
		t.Fatal("key not disabled")
	}
	// A deleted key's rate bucket goes with it: the same id made again starts full.
	now := time.Now()
	if ok, _ := s.TakeToken(ctx, "k1", 0.001, 1, now); !ok {
		t.Fatal("first token")
	}
	if ok, _ := s.TakeToken(ctx, "k1", 0.001, 1, now); ok {
		t.Fatal("a second token from a burst of 1")
	}
	must(t, s.DeleteAccessKey(ctx, "k1"))
	if err := s.DeleteAccessKey(ctx, "k1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if ok, _ := s.TakeToken(ctx, "k1", 0.001, 1, now); !ok {
		t.Fatal("the deleted key's bucket is still there")
	}
	a.Disabled, a.ServiceEnabled, a.JobLimit = true, false, 7
	must(t, s.UpdateAccount(ctx, a))
	if got, _ := s.GetAccount(ctx, a.ID); !got.Disabled || got.ServiceEnabled || got.JobLimit != 7 {
		t.Fatalf("updated account: %+v", got)
	}
	if err := s.UpdateAccount(ctx, auth.Account{ID: 12345}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing account: %v", err)
	}
}

func testFirstAccount(t *testing.T, s store.Store) {
	a, created, err := s.CreateFirstAccount(ctx, auth.Account{ServiceEnabled: true}, auth.AccessKey{ID: "root", Secret: "s", Policy: auth.FullAccess})
	must(t, err)
	if !created || a.ID == 0 || a.JobLimit != auth.DefaultJobLimit {
		t.Fatalf("first account: %+v %v", a, created)
	}
	k, err := s.GetAccessKey(ctx, "root")
	must(t, err)
	if k.AccountID != a.ID || k.Secret != "s" {
		t.Fatalf("root key: %+v", k)
	}
	_, created, err = s.CreateFirstAccount(ctx, auth.Account{ServiceEnabled: true}, auth.AccessKey{ID: "root2", Secret: "s", Policy: auth.FullAccess})
	must(t, err)
	if created {
		t.Fatal("a second first account")
	}
	if n, _ := s.CountAccounts(ctx); n != 1 {
		t.Fatalf("%d accounts", n)
	}
	if _, err := s.GetAccessKey(ctx, "root2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused bootstrap left a key: %v", err)
	}
}

// testFirstAccountRace: nodes bootstrapping an empty store at once: exactly one does.
func testFirstAccountRace(t *testing.T, handles []store.Store) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	for i := 0; i < 9; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("root-%d", i)
			_, created, err := handles[i%len(handles)].CreateFirstAccount(ctx, auth.Account{ServiceEnabled: true},
				auth.AccessKey{ID: id, Secret: "s", Policy: auth.FullAccess})
			if err != nil {
				t.Error(err)
			}
			if created {
				mu.Lock()
				winners = append(winners, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	keys, err := handles[0].ListAccessKeys(ctx, 0)
	must(t, err)
	n, err := handles[0].CountAccounts(ctx)
	must(t, err)
	if len(winners) != 1 || n != 1 || len(keys) != 1 || keys[0].ID != winners[0] {
		t.Fatalf("winners %v, %d accounts, keys %+v", winners, n, keys)
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
		Image:       snapshot.ImageSettings{Policy: snapshot.PolicyKeyframe, Height: 180},
		Input:       snapshot.StreamInput{Type: "rtmp", URL: "rtmp://127.0.0.1/live/" + id},
		Output:      snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Bucket: "b"},
		CallbackURL: "http://127.0.0.1/cb", CreateTime: now, LastModified: now}
	must(t, s.CreateJob(ctx, j))
	return j
}

func testTemplatesAndJobs(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	b, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	now := time.Now().UTC().Truncate(time.Millisecond)
	tpl := snapshot.Template{AccountID: a.ID, ID: "tpl-1", Name: "T 1", Type: snapshot.TypeCustom, TimeInterval: 5,
		OverwriteFormat: "o/{JobId}.jpg", SequenceFormat: "s/{Sequence}.jpg", CreateTime: now, LastModified: now,
		Image: snapshot.ImageSettings{Policy: snapshot.PolicyExact, Width: 320, Height: 0, Quality: 80}}
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
	list, _, err := s.ListJobs(ctx, startedQuery(a.ID))
	must(t, err)
	if len(list) != 1 || list[0].ID != "job-1" || list[0].Generation != 1 {
		t.Fatalf("started jobs: %+v", list)
	}

	// The StreamInput extension (Transport) is stored with the job.
	rtsp := j
	rtsp.ID, rtsp.Input = "job-rtsp", snapshot.StreamInput{Type: "rtsp", URL: "rtsp://127.0.0.1/live", Transport: "udp"}
	must(t, s.CreateJob(ctx, rtsp))
	gotJob, err = s.GetJob(ctx, a.ID, "job-rtsp")
	must(t, err)
	if gotJob != rtsp {
		t.Fatalf("job read back as %+v, want %+v", gotJob, rtsp)
	}
}

// startedQuery selects an account's started jobs.
func startedQuery(account int64) store.JobQuery {
	return store.JobQuery{AccountID: account, Status: snapshot.StatusStarted, Start: time.Unix(0, 0), End: time.Now().Add(time.Hour),
		Page: store.Page{Limit: 100}}
}

func testJobLimit(t *testing.T, handles []store.Store) {
	s := handles[0]
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
			h := handles[i%len(handles)]
			_, err := h.SetJobStatus(ctx, a.ID, fmt.Sprintf("j%d", i), snapshot.StatusInit, snapshot.StatusStarted, true, limit, time.Now())
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
	list, _, _ := s.ListJobs(ctx, startedQuery(a.ID))
	if _, err := s.SetJobStatus(ctx, a.ID, list[0].ID, snapshot.StatusStarted, snapshot.StatusStarted, true, limit, time.Now()); err != nil {
		t.Fatalf("restart at the limit: %v", err)
	}
}

func testFiles(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	b, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	newJob(t, s, a.ID, "job-f")
	rec := func(files ...snapshot.File) error {
		return s.RecordCapture(ctx, store.Capture{JobID: "job-f", Generation: 1, Files: files})
	}
	if err := rec(snapshot.File{AccountID: a.ID, JobID: "job-f", Object: "x.jpg", CreateTime: time.Now()}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a job that is not started must refuse records, got %v", err)
	}
	_, err := s.SetJobStatus(ctx, a.ID, "job-f", snapshot.StatusInit, snapshot.StatusStarted, true, 0, time.Now())
	must(t, err)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		at := base.Add(time.Duration(i) * 1500 * time.Millisecond)
		must(t, rec(
			snapshot.File{AccountID: a.ID, JobID: "job-f", Endpoint: "e", Bucket: "b", Object: fmt.Sprintf("s/%d.jpg", i), CreateTime: at},
			snapshot.File{AccountID: a.ID, JobID: "job-f", Endpoint: "e", Bucket: "b", Object: "o.jpg", CreateTime: at, IsOverlay: true},
		))
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
	must(t, rec(snapshot.File{AccountID: a.ID, JobID: "job-f", Endpoint: "e", Bucket: "b", Object: "o.jpg", CreateTime: base, IsOverlay: true}))
	// A replaced pipeline (older generation) cannot write.
	_, err = s.SetJobStatus(ctx, a.ID, "job-f", snapshot.StatusStarted, snapshot.StatusStarted, true, 0, time.Now())
	must(t, err)
	if err := rec(snapshot.File{AccountID: a.ID, JobID: "job-f", Object: "late.jpg", CreateTime: base.Add(time.Minute)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("an old generation must be fenced off, got %v", err)
	}
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

func testSequence(t *testing.T, handles []store.Store) {
	s := handles[0]
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	newJob(t, s, a.ID, "job-s")
	seen := make(map[int64]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := handles[i%len(handles)].NextSequence(ctx, "job-s")
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

func testLists(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	b, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		at := base.Add(time.Duration(i) * time.Minute)
		must(t, s.CreateTemplate(ctx, snapshot.Template{AccountID: a.ID, ID: fmt.Sprintf("t%d", i), Name: fmt.Sprintf("name_%d%%", i),
			Type: snapshot.TypeCustom, TimeInterval: 5, SequenceFormat: "{Sequence}.jpg", CreateTime: at, LastModified: at}))
	}
	must(t, s.CreateTemplate(ctx, snapshot.Template{AccountID: b.ID, ID: "tb", Name: "name_b", Type: snapshot.TypeCustom, TimeInterval: 5, SequenceFormat: "{Sequence}.jpg", CreateTime: base, LastModified: base}))
	list, total, err := s.ListTemplates(ctx, store.TemplateQuery{AccountID: a.ID, Page: store.Page{Limit: 2, Desc: true}})
	must(t, err)
	if total != 5 || len(list) != 2 || list[0].ID != "t4" || list[1].ID != "t3" {
		t.Fatalf("first page desc: total %d %+v", total, list)
	}
	list, _, err = s.ListTemplates(ctx, store.TemplateQuery{AccountID: a.ID, Page: store.Page{Offset: 4, Limit: 2}})
	must(t, err)
	if len(list) != 1 || list[0].ID != "t4" {
		t.Fatalf("last page asc: %+v", list)
	}
	// LIKE wildcards in a keyword are literal.
	list, total, err = s.ListTemplates(ctx, store.TemplateQuery{AccountID: a.ID, Keyword: "_3%", Page: store.Page{Limit: 10}})
	must(t, err)
	if total != 1 || list[0].ID != "t3" {
		t.Fatalf("keyword: %d %+v", total, list)
	}
	list, total, err = s.ListTemplates(ctx, store.TemplateQuery{AccountID: a.ID, IDs: []string{"t1", "t2", "tb"}, Page: store.Page{Limit: 10}})
	must(t, err)
	if total != 2 {
		t.Fatalf("ids (another account's excluded): %d %+v", total, list)
	}
	tpl := list[0]
	tpl.Name, tpl.TimeInterval, tpl.LastModified = "renamed", 10, base.Add(time.Hour)
	tpl.Image = snapshot.ImageSettings{Policy: snapshot.PolicyExact, Width: 640, Quality: 50}
	must(t, s.UpdateTemplate(ctx, tpl))
	got, _ := s.GetTemplate(ctx, a.ID, tpl.ID)
	if got.Name != "renamed" || got.TimeInterval != 10 || got.Image != tpl.Image || !got.LastModified.Equal(base.Add(time.Hour)) || !got.CreateTime.Equal(tpl.CreateTime) {
		t.Fatalf("updated template: %+v", got)
	}
	tpl.AccountID = b.ID
	if err := s.UpdateTemplate(ctx, tpl); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update across accounts: %v", err)
	}
	if err := s.DeleteTemplate(ctx, b.ID, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete across accounts: %v", err)
	}
	must(t, s.DeleteTemplate(ctx, a.ID, "t1"))
	if err := s.DeleteTemplate(ctx, a.ID, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}

	for i := 0; i < 4; i++ {
		j := newJob(t, s, a.ID, fmt.Sprintf("job%d", i))
		_ = j
	}
	newJob(t, s, b.ID, "jobb")
	_, err = s.SetJobStatus(ctx, a.ID, "job2", snapshot.StatusInit, snapshot.StatusStarted, true, 0, time.Now())
	must(t, err)
	now := time.Now()
	jobs, total, err := s.ListJobs(ctx, store.JobQuery{AccountID: a.ID, Start: now.Add(-time.Hour), End: now.Add(time.Hour), Page: store.Page{Limit: 10}})
	must(t, err)
	if total != 4 || len(jobs) != 4 {
		t.Fatalf("jobs: %d %+v", total, jobs)
	}
	jobs, total, err = s.ListJobs(ctx, store.JobQuery{AccountID: a.ID, Status: snapshot.StatusStarted, Start: now.Add(-time.Hour), End: now.Add(time.Hour), Page: store.Page{Limit: 10}})
	must(t, err)
	if total != 1 || jobs[0].ID != "job2" {
		t.Fatalf("started jobs: %d %+v", total, jobs)
	}
	_, total, err = s.ListJobs(ctx, store.JobQuery{AccountID: a.ID, Start: now.Add(time.Hour), End: now.Add(2 * time.Hour), Page: store.Page{Limit: 10}})
	must(t, err)
	if total != 0 {
		t.Fatalf("window must filter on CreateTime: %d", total)
	}
	jobs, _, err = s.ListJobs(ctx, store.JobQuery{AccountID: a.ID, Keyword: "job1", Start: now.Add(-time.Hour), End: now.Add(time.Hour), Page: store.Page{Limit: 10}})
	must(t, err)
	if len(jobs) != 1 || jobs[0].ID != "job1" {
		t.Fatalf("keyword: %+v", jobs)
	}
}

func testDeleteFiles(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	b, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	newJob(t, s, a.ID, "jd")
	_, err := s.SetJobStatus(ctx, a.ID, "jd", snapshot.StatusInit, snapshot.StatusStarted, true, 0, time.Now())
	must(t, err)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		at := base.Add(time.Duration(i) * time.Second)
		must(t, s.RecordCapture(ctx, store.Capture{JobID: "jd", Generation: 1, Files: []snapshot.File{
			{AccountID: a.ID, JobID: "jd", Endpoint: "e", Bucket: "b", Object: fmt.Sprintf("s/%d.jpg", i), CreateTime: at},
			{AccountID: a.ID, JobID: "jd", Endpoint: "e", Bucket: "b", Object: "o.jpg", CreateTime: at, IsOverlay: true},
		}}))
	}
	del, overlay, err := s.DeleteFiles(ctx, b.ID, "jd", []time.Time{base})
	must(t, err)
	if len(del) != 0 || overlay {
		t.Fatal("another account deleted records")
	}
	del, overlay, err = s.DeleteFiles(ctx, a.ID, "jd", []time.Time{base, base.Add(time.Hour)})
	must(t, err)
	if len(del) != 1 || del[0].Object != "s/0.jpg" || overlay {
		t.Fatalf("deleted %+v overlay %v", del, overlay)
	}
	// Delete the last sequence record; then only the overwrite record is at that instant.
	_, _, err = s.DeleteFiles(ctx, a.ID, "jd", []time.Time{base.Add(2 * time.Second)})
	must(t, err)
	del, overlay, err = s.DeleteFiles(ctx, a.ID, "jd", []time.Time{base.Add(2 * time.Second)})
	must(t, err)
	if len(del) != 0 || !overlay {
		t.Fatalf("an instant with only the overwrite record: %+v %v", del, overlay)
	}
	left, _ := s.ListFiles(ctx, store.FileQuery{AccountID: a.ID, JobID: "jd", Start: base, End: base.Add(time.Hour), Limit: 10})
	if len(left) != 2 || left[0].Object != "s/1.jpg" || !left[1].IsOverlay {
		t.Fatalf("left: %+v", left)
	}
}

func testOutbox(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	acct, _ := s.GetAccount(ctx, a.ID)
	if len(acct.CallbackSecret) < 32 {
		t.Fatalf("accounts get a callback secret: %q", acct.CallbackSecret)
	}
	newJob(t, s, a.ID, "jo")
	_, err := s.SetJobStatus(ctx, a.ID, "jo", snapshot.StatusInit, snapshot.StatusStarted, true, 0, time.Now())
	must(t, err)
	// A fenced-off capture queues nothing.
	err = s.RecordCapture(ctx, store.Capture{JobID: "jo", Generation: 7, Callbacks: []store.Callback{{URL: "http://x/cb", Body: []byte("{}")}}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale generation: %v", err)
	}
	must(t, s.RecordCapture(ctx, store.Capture{JobID: "jo", Generation: 1,
		Files:     []snapshot.File{{AccountID: a.ID, JobID: "jo", Endpoint: "e", Bucket: "b", Object: "1.jpg", CreateTime: time.Now()}},
		Callbacks: []store.Callback{{URL: "http://x/cb", Body: []byte(`{"n":1}`)}, {URL: "http://x/cb", Body: []byte(`{"n":2}`)}}}))
	now := time.Now()
	got, err := s.ClaimCallbacks(ctx, now, 10, time.Minute)
	must(t, err)
	if len(got) != 2 || string(got[0].Body) != `{"n":1}` || got[0].Secret != acct.CallbackSecret || got[0].AccountID != a.ID || got[0].JobID != "jo" {
		t.Fatalf("claimed %+v", got)
	}
	again, err := s.ClaimCallbacks(ctx, now, 10, time.Minute)
	must(t, err)
	if len(again) != 0 {
		t.Fatalf("claimed twice within the lease: %+v", again)
	}
	must(t, s.CallbackDone(ctx, got[0].ID, now, false, ""))
	must(t, s.CallbackRetry(ctx, got[1].ID, now.Add(time.Second), "HTTP 500"))
	later, err := s.ClaimCallbacks(ctx, now.Add(2*time.Second), 10, time.Minute)
	must(t, err)
	if len(later) != 1 || later[0].ID != got[1].ID || later[0].Attempts != 1 {
		t.Fatalf("retry: %+v", later)
	}
	must(t, s.CallbackDone(ctx, later[0].ID, now, true, "gave up"))
	if left, _ := s.ClaimCallbacks(ctx, now.Add(time.Hour), 10, time.Minute); len(left) != 0 {
		t.Fatalf("done callbacks come back: %+v", left)
	}
	// An expired lease (a dispatcher died) makes a callback due again.
	must(t, s.RecordCapture(ctx, store.Capture{JobID: "jo", Generation: 1, Callbacks: []store.Callback{{URL: "http://x/cb", Body: []byte(`{"n":3}`)}}}))
	first, _ := s.ClaimCallbacks(ctx, now.Add(time.Hour), 10, time.Minute)
	second, _ := s.ClaimCallbacks(ctx, now.Add(time.Hour+2*time.Minute), 10, time.Minute)
	if len(first) != 1 || len(second) != 1 || first[0].ID != second[0].ID {
		t.Fatalf("lease expiry: %+v %+v", first, second)
	}
	// A rotated callback secret signs what is delivered from then on, queued callbacks too.
	must(t, s.SetCallbackSecret(ctx, a.ID, "rotated-secret-0123456789abcdef"))
	if got, _ := s.GetAccount(ctx, a.ID); got.CallbackSecret != "rotated-secret-0123456789abcdef" {
		t.Fatalf("after rotation the account has secret %q", got.CallbackSecret)
	}
	must(t, s.RecordCapture(ctx, store.Capture{JobID: "jo", Generation: 1, Callbacks: []store.Callback{{URL: "http://x/cb", Body: []byte(`{"n":4}`)}}}))
	rotated, err := s.ClaimCallbacks(ctx, time.Now().Add(time.Hour), 10, time.Minute)
	must(t, err)
	if len(rotated) == 0 || rotated[0].Secret != "rotated-secret-0123456789abcdef" {
		t.Fatalf("after rotation, claimed %+v", rotated)
	}
	if err := s.SetCallbackSecret(ctx, 42, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rotating a missing account's secret: %v", err)
	}
}

func testRuntime(t *testing.T, s store.Store) {
	if _, err := s.GetJobRuntime(ctx, "none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing runtime: %v", err)
	}
	at := time.Date(2024, 1, 1, 0, 0, 5, 0, time.UTC)
	r := store.JobRuntime{JobID: "j", Generation: 2, RunState: "capturing", LastSnapshot: at, Snapshots: 3, Misses: 1, Updated: at}
	must(t, s.SetJobRuntime(ctx, r))
	// An older generation's late report does not overwrite the newer one.
	must(t, s.SetJobRuntime(ctx, store.JobRuntime{JobID: "j", Generation: 1, RunState: "stalled", Updated: at}))
	got, err := s.GetJobRuntime(ctx, "j")
	must(t, err)
	if got != r {
		t.Fatalf("runtime %+v, want %+v", got, r)
	}
	must(t, s.SetJobRuntime(ctx, store.JobRuntime{JobID: "j", Generation: 3, RunState: "connecting", Updated: at}))
	if got, _ := s.GetJobRuntime(ctx, "j"); got.RunState != "connecting" || !got.LastSnapshot.IsZero() {
		t.Fatalf("new generation: %+v", got)
	}
}
