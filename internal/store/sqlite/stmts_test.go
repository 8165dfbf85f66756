package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// captureJob makes a started job ready for RecordCapture, as a runner sees it.
func captureJob(tb testing.TB, db *DB) snapshot.Job {
	ctx := context.Background()
	a, err := db.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	j := snapshot.Job{AccountID: a.ID, ID: "job-s", Name: "s", TemplateID: "tpl", TemplateName: "T", TimeInterval: 5,
		SequenceFormat: "{JobId}/{Sequence}.jpg", OverwriteFormat: "{JobId}.jpg", Status: snapshot.StatusInit,
		Input:      snapshot.StreamInput{Type: "rtmp", URL: "rtmp://127.0.0.1/live/s"},
		Output:     snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Bucket: "b"},
		CreateTime: now, LastModified: now}
	if err := db.CreateJob(ctx, j); err != nil {
		tb.Fatal(err)
	}
	if j, err = db.SetJobStatus(ctx, a.ID, j.ID, snapshot.StatusInit, snapshot.StatusStarted, true, 0, now); err != nil {
		tb.Fatal(err)
	}
	return j
}

// snapshotWrites is what a runner asks of the store per snapshot: a sequence number, the job
// (stopped meanwhile?), the records (sequence and overwrite) and its runtime status.
func snapshotWrites(tb testing.TB, db *DB, j snapshot.Job, at time.Time) {
	ctx := context.Background()
	seq, err := db.NextSequence(ctx, j.ID)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.GetJob(ctx, j.AccountID, j.ID); err != nil {
		tb.Fatal(err)
	}
	f := snapshot.File{AccountID: j.AccountID, JobID: j.ID, Endpoint: j.Output.Endpoint, Bucket: j.Output.Bucket, CreateTime: at}
	seqFile, overlay := f, f
	seqFile.Object = fmt.Sprintf("%s/%d.jpg", j.ID, seq)
	overlay.Object, overlay.IsOverlay = j.ID+".jpg", true
	if err := db.RecordCapture(ctx, store.Capture{JobID: j.ID, Generation: j.Generation, Files: []snapshot.File{seqFile, overlay}}); err != nil {
		tb.Fatal(err)
	}
	if err := db.SetJobRuntime(ctx, store.JobRuntime{JobID: j.ID, Generation: j.Generation, RunState: "capturing",
		LastSnapshot: at, Snapshots: seq, Updated: at}); err != nil {
		tb.Fatal(err)
	}
}

func TestStatementsArePreparedOnceAndStayCorrect(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j := captureJob(t, db)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 50
	for i := 0; i < n; i++ {
		snapshotWrites(t, db, j, base.Add(time.Duration(i)*time.Second))
	}
	// The records are all there, each once, through cached statements in and out of transactions.
	files, err := db.ListFiles(context.Background(), store.FileQuery{AccountID: j.AccountID, JobID: j.ID,
		Start: base, End: base.Add(time.Hour), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var seqs, overlays int
	for _, f := range files {
		if f.IsOverlay {
			overlays++
			if !f.CreateTime.Equal(base.Add((n - 1) * time.Second)) {
				t.Errorf("overwrite record at %v, want the last capture's", f.CreateTime)
			}
		} else {
			seqs++
		}
	}
	if seqs != n || overlays != 1 {
		t.Fatalf("%d sequence and %d overwrite records, want %d and 1", seqs, overlays, n)
	}
	// Every statement of the capture path is prepared by now (a transaction's are prepared in
	// the background the first time); migrations, which hold several statements, never are.
	deadline := time.Now().Add(10 * time.Second)
	for db.CachedStatements() < 6 && time.Now().Before(deadline) {
		snapshotWrites(t, db, j, time.Now())
		time.Sleep(10 * time.Millisecond)
	}
	if got := db.CachedStatements(); got < 6 {
		t.Fatalf("%d statements prepared, want the capture path's 6 at least", got)
	}
	for _, q := range db.CachedQueries() {
		if strings.Contains(q, ";") {
			t.Errorf("a statement with several parts was prepared: %q", q)
		}
	}
}

// BenchmarkSnapshotWrites: the store's work per snapshot, with prepared statements (as run)
// and with every query parsed at each call (the driver's own behaviour), side by side.
func BenchmarkSnapshotWrites(b *testing.B) {
	for _, c := range []struct {
		name    string
		prepare bool
	}{{"prepared", true}, {"parsed-each-call", false}} {
		b.Run(c.name, func(b *testing.B) {
			d := Dialect
			d.PrepareStatements = c.prepare
			db, err := open(filepath.Join(b.TempDir(), "state.db"), d)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			j := captureJob(b, db)
			at := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				snapshotWrites(b, db, j, at.Add(time.Duration(i)*time.Millisecond))
			}
		})
	}
}
