package runner

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/snapshot"
)

// flakyWriter fails the first n puts with a transient error, then writes to a real Local
// directory; it records when each put was attempted.
type flakyWriter struct {
	blob.Local
	mu       sync.Mutex
	failures int
	attempts []time.Time
}

func (w *flakyWriter) Put(ctx context.Context, out snapshot.SnapshotOutput, object string, data []byte) error {
	w.mu.Lock()
	w.attempts = append(w.attempts, time.Now())
	fail := len(w.attempts) <= w.failures
	w.mu.Unlock()
	if fail {
		return errors.New("connection refused")
	}
	return w.Local.Put(ctx, out, object, data)
}

func testCapturer(w blob.Writer, interval int) *capturer {
	m := &Manager{Blobs: w, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	job := snapshot.Job{ID: "j", TimeInterval: interval, Output: snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "e", Bucket: "bkt"}}
	return &capturer{sup: &supervisor{m: m, job: job, log: m.logger()}, job: job}
}

func TestPutRetriesWithGrowingPauses(t *testing.T) {
	w := &flakyWriter{Local: blob.Local{Root: t.TempDir()}, failures: 3}
	c := testCapturer(w, 60)
	if err := c.put(context.Background(), "a/1.jpg", []byte("jpeg")); err != nil {
		t.Fatalf("a write that succeeds on the fourth attempt: %v", err)
	}
	if len(w.attempts) != 4 {
		t.Fatalf("%d attempts, want 4", len(w.attempts))
	}
	// Each pause is at least 3/4 of 0.25 s, 0.5 s, 1 s: the backoff grows.
	for i, min := range []time.Duration{187 * time.Millisecond, 375 * time.Millisecond, 750 * time.Millisecond} {
		if gap := w.attempts[i+1].Sub(w.attempts[i]); gap < min {
			t.Errorf("pause %d was %v, want at least %v", i+1, gap, min)
		}
	}
	if _, err := os.Stat(filepath.Join(w.Root, "bkt", "a", "1.jpg")); err != nil {
		t.Fatal(err)
	}
}

func TestPutGivesUp(t *testing.T) {
	w := &flakyWriter{Local: blob.Local{Root: t.TempDir()}, failures: 100}
	if err := testCapturer(w, 60).put(context.Background(), "a/1.jpg", []byte("jpeg")); err == nil {
		t.Fatal("a write that always fails must fail")
	}
	if len(w.attempts) != putAttempts {
		t.Fatalf("%d attempts, want %d", len(w.attempts), putAttempts)
	}
	// With a 1 s interval, no retry is planned past one interval after the first attempt.
	w = &flakyWriter{Local: blob.Local{Root: t.TempDir()}, failures: 100}
	if err := testCapturer(w, 1).put(context.Background(), "a/1.jpg", []byte("jpeg")); err == nil {
		t.Fatal("a write that always fails must fail")
	}
	// The pauses before a fourth attempt add up to more than 1 s, so it never starts.
	if n := len(w.attempts); n < 2 || n >= putAttempts {
		t.Fatalf("%d attempts within a 1 s interval, want a retry but not all %d", n, putAttempts)
	}
}

func TestRefusedPutIsNotRetried(t *testing.T) {
	r, err := blob.NewRouter(blob.Route{StorageType: "oss", Endpoint: "only.example", Writer: &blob.Local{Root: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingWriter{Writer: r}
	err = testCapturer(counting, 60).put(context.Background(), "a/1.jpg", []byte("jpeg"))
	if !errors.Is(err, blob.ErrRefused) || counting.n != 1 {
		t.Fatalf("put to an unconfigured endpoint: %v after %d attempts, want ErrRefused after 1", err, counting.n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &flakyWriter{Local: blob.Local{Root: t.TempDir()}, failures: 100}
	if err := testCapturer(w, 60).put(ctx, "a/1.jpg", []byte("jpeg")); !errors.Is(err, context.Canceled) || len(w.attempts) != 1 {
		t.Fatalf("a cancelled pipeline stops retrying: %v after %d attempts", err, len(w.attempts))
	}
}

type countingWriter struct {
	blob.Writer
	n int
}

func (w *countingWriter) Put(ctx context.Context, out snapshot.SnapshotOutput, object string, data []byte) error {
	w.n++
	return w.Writer.Put(ctx, out, object, data)
}

// A capture that is not recorded takes its sequence objects back, never the overwrite object.
func TestRemoveUnrecordedKeepsTheOverwriteObject(t *testing.T) {
	w := &blob.Local{Root: t.TempDir()}
	c := testCapturer(w, 5)
	files := []snapshot.File{{Object: "seq/1.jpg"}, {Object: "latest.jpg", IsOverlay: true}}
	for _, f := range files {
		if err := w.Put(context.Background(), c.job.Output, f.Object, []byte("jpeg")); err != nil {
			t.Fatal(err)
		}
	}
	c.removeUnrecorded(files)
	if _, err := os.Stat(filepath.Join(w.Root, "bkt", "seq", "1.jpg")); !os.IsNotExist(err) {
		t.Fatalf("the unrecorded sequence object must go: %v", err)
	}
	if _, err := os.Stat(filepath.Join(w.Root, "bkt", "latest.jpg")); err != nil {
		t.Fatalf("the overwrite object must stay: %v", err)
	}
}
