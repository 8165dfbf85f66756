package callback

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/netpolicy"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
	"github.com/livesnap/livesnap/internal/store/sqlite"
)

// receiver records callbacks and fails the first failFirst attempts.
type receiver struct {
	mu        sync.Mutex
	failFirst int
	attempts  int
	bodies    [][]byte
	headers   []http.Header
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.attempts <= r.failFirst {
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	r.bodies = append(r.bodies, body)
	r.headers = append(r.headers, req.Header.Clone())
}

func (r *receiver) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

func setup(t *testing.T, path string) (*sqlite.DB, snapshot.Job, auth.Account) {
	t.Helper()
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, _ := db.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	a, _ = db.GetAccount(ctx, a.ID)
	j := snapshot.Job{AccountID: a.ID, ID: "job-cb", Name: "cam 1", Status: snapshot.StatusInit, TimeInterval: 5,
		Input: snapshot.StreamInput{Type: "rtmp", URL: "rtmp://h/a/b"}, Output: snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "e", Bucket: "b"},
		CreateTime: time.Now(), LastModified: time.Now()}
	if err := db.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if j, err = db.SetJobStatus(ctx, a.ID, j.ID, snapshot.StatusInit, snapshot.StatusStarted, true, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	return db, j, a
}

func queue(t *testing.T, db store.Store, j snapshot.Job, url string, n int) []snapshot.File {
	t.Helper()
	var files []snapshot.File
	base := time.Date(2024, 1, 1, 0, 0, 5, 123e6, time.UTC)
	for i := 0; i < n; i++ {
		f := snapshot.File{AccountID: j.AccountID, JobID: j.ID, Endpoint: "oss-cn-shanghai.aliyuncs.com", Bucket: "b",
			Object: "s/" + string(rune('a'+i)) + ".jpg", CreateTime: base.Add(time.Duration(i) * 5 * time.Second)}
		files = append(files, f)
		err := db.RecordCapture(context.Background(), store.Capture{JobID: j.ID, Generation: j.Generation, Files: []snapshot.File{f},
			Callbacks: []store.Callback{{URL: url, Body: Body(j, f)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func TestDeliveryRetriesAndSigns(t *testing.T) {
	db, j, acct := setup(t, filepath.Join(t.TempDir(), "s.db"))
	defer db.Close()
	rcv := &receiver{failFirst: 2}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	files := queue(t, db, j, srv.URL+"/cb", 1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &Dispatcher{Store: db, FirstBackoff: 50 * time.Millisecond, Poll: 20 * time.Millisecond, Client: NewClient(netpolicy.Default().DialContext(time.Second))}
	go d.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for rcv.delivered() < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // no duplicate after success
	if rcv.delivered() != 1 || rcv.attempts != 3 {
		t.Fatalf("delivered %d after %d attempts; want 1 after 3", rcv.delivered(), rcv.attempts)
	}
	var ev map[string]any
	if err := json.Unmarshal(rcv.bodies[0], &ev); err != nil {
		t.Fatal(err)
	}
	mb := ev["MessageBody"].(map[string]any)
	if ev["EventType"] != "LiveSnapshotFileCreated" || ev["UserId"] != float64(acct.ID) || ev["EventTime"] != "2024-01-01T00:00:05Z" ||
		mb["JobId"] != "job-cb" || mb["JobName"] != "cam 1" || mb["OssObject"] != files[0].Object || mb["OssBucket"] != "b" ||
		mb["OssEndpoint"] != "oss-cn-shanghai.aliyuncs.com" || mb["CreateTimestamp"] != float64(files[0].CreateTime.UnixMilli()) ||
		mb["CreateTime"] != "2024-01-01T00:00:05Z" || mb["IsOverlay"] != false {
		t.Fatalf("event: %s", rcv.bodies[0])
	}
	if rcv.headers[0].Get("Content-Type") != "application/json" || !Verify(acct.CallbackSecret, rcv.headers[0], rcv.bodies[0], time.Now(), time.Minute) {
		t.Fatal("the callback signature does not verify")
	}
	if Verify("other-secret", rcv.headers[0], rcv.bodies[0], time.Now(), time.Minute) || Verify(acct.CallbackSecret, rcv.headers[0], []byte("{}"), time.Now(), time.Minute) {
		t.Fatal("a wrong secret or body verifies")
	}
}

// Callbacks queued before a restart are delivered after it.
func TestDeliverySurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db, j, _ := setup(t, path)
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	queue(t, db, j, srv.URL, 3)
	db.Close() // "crash" before any delivery

	db2, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&Dispatcher{Store: db2, Poll: 20 * time.Millisecond}).Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for rcv.delivered() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if rcv.delivered() != 3 {
		t.Fatalf("delivered %d of 3 after restart", rcv.delivered())
	}
}

// A callback whose URL (or a redirect) leads to a refused network is never sent there, and is
// given up after MaxAttempts.
func TestNetworkPolicyAndGiveUp(t *testing.T) {
	var mu sync.Mutex
	db, j, _ := setup(t, filepath.Join(t.TempDir(), "s.db"))
	defer db.Close()
	rcv := &receiver{}
	// The target listens on 127.0.0.2, which the policy refuses; the redirector on 127.0.0.1.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	target := &httptest.Server{Listener: ln, Config: &http.Server{Handler: rcv}}
	target.Start()
	defer target.Close()
	redirects := 0
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		redirects++
		mu.Unlock()
		http.Redirect(w, r, target.URL, http.StatusFound)
	}))
	defer redirector.Close()
	deny, _ := netpolicy.Parse("", "127.0.0.2/32")
	queue(t, db, j, redirector.URL, 1)
	failed := 0
	d := &Dispatcher{Store: db, Client: NewClient(deny.DialContext(time.Second)), MaxAttempts: 2, FirstBackoff: 10 * time.Millisecond,
		Poll: 10 * time.Millisecond, Failed: func() { mu.Lock(); failed++; mu.Unlock() }}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d.Run(ctx)
	if rcv.attempts != 0 {
		t.Fatal("a refused network was reached")
	}
	mu.Lock()
	defer mu.Unlock()
	if failed != 2 || redirects != 2 {
		t.Fatalf("%d failed attempts through %d redirects, want 2 and 2 (then given up)", failed, redirects)
	}
}
