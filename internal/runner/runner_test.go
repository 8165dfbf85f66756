package runner

import (
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/rtmpserver"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/store/sqlite"
	"github.com/livesnap/livesnap/internal/testenv"
)

func openFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}

// Random start/stop/restart commands on one job while its publisher comes and goes: never two
// pipelines for the job at once, and no goroutine or file descriptor left behind.
func TestCommandsWhileSourceFlaps(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	testenv.NeedFFmpeg(t)
	clip := testenv.Sample(t)
	relay := &rtmpserver.Server{Addr: "127.0.0.1:0"}
	if err := relay.Start(); err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	url := "rtmp://" + relay.ListenAddr() + "/live/flap"

	db, err := sqlite.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	acct, _ := db.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	now := time.Now()
	job := snapshot.Job{AccountID: acct.ID, ID: "flappy", Name: "flappy", TimeInterval: 1, SequenceFormat: "{JobId}/{Sequence}.jpg",
		Status: snapshot.StatusInit, Input: snapshot.StreamInput{Type: "rtmp", URL: url},
		Output: snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "e", Bucket: "flap"}, CreateTime: now, LastModified: now}
	if err := db.CreateJob(ctx, job); err != nil {
		t.Fatal(err)
	}

	goroutinesBefore, fdsBefore, cHeapBefore := runtime.NumGoroutine(), openFDs(), decode.CHeapInUse()
	objects := t.TempDir()
	m := &Manager{Store: db, Blobs: &blob.Local{Root: objects}, Poll: 50 * time.Millisecond,
		Open: func(ctx context.Context, in snapshot.StreamInput, readTimeout time.Duration) (source.Stream, error) {
			return source.Open(ctx, in.Type, in.URL, source.Options{ConnectTimeout: 3 * time.Second, ReadTimeout: readTimeout})
		}}
	runCtx, stopRunner := context.WithCancel(ctx)
	runnerDone := make(chan struct{})
	go func() { defer close(runnerDone); m.Run(runCtx) }()

	// The publisher flaps: up 3 s, down 1 s.
	flapCtx, stopFlap := context.WithCancel(ctx)
	flapDone := make(chan struct{})
	go func() {
		defer close(flapDone)
		for flapCtx.Err() == nil {
			c, cancel := context.WithTimeout(flapCtx, 3*time.Second)
			exec.CommandContext(c, "ffmpeg", "-hide_banner", "-loglevel", "quiet", "-re", "-i", clip, "-map", "0:v", "-c", "copy", "-f", "flv", url).Run()
			cancel()
			select {
			case <-flapCtx.Done():
			case <-time.After(time.Second):
			}
		}
	}()

	rng := rand.New(rand.NewSource(1))
	status := snapshot.StatusInit
	for i := 0; i < 60; i++ {
		switch cmd := []string{"start", "stop", "restart"}[rng.Intn(3)]; {
		case cmd == "stop" && status == snapshot.StatusStarted:
			if _, err := db.SetJobStatus(ctx, acct.ID, job.ID, status, snapshot.StatusPaused, false, 0, time.Now()); err != nil {
				t.Fatal(err)
			}
			status = snapshot.StatusPaused
		case cmd == "start" && status != snapshot.StatusStarted, cmd == "restart":
			if _, err := db.SetJobStatus(ctx, acct.ID, job.ID, status, snapshot.StatusStarted, true, 0, time.Now()); err != nil {
				t.Fatal(err)
			}
			status = snapshot.StatusStarted
		}
		m.Wake()
		time.Sleep(time.Duration(50+rng.Intn(300)) * time.Millisecond)
	}
	stopFlap()
	<-flapDone
	stopRunner()
	<-runnerDone

	shots, _ := filepath.Glob(filepath.Join(objects, "flap", "flappy", "*.jpg"))
	t.Logf("%d snapshots made while flapping", len(shots))
	if len(shots) == 0 {
		t.Fatal("no snapshot at all: the pipelines never got to decode")
	}
	if n := m.MaxConcurrentSessions(); n > 1 {
		t.Fatalf("a job had %d stream sessions open at once", n)
	}
	if m.Running() != 0 {
		t.Fatalf("%d pipelines still running after the runner stopped", m.Running())
	}
	// Give closed sockets and exiting goroutines a moment to go.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (runtime.NumGoroutine() > goroutinesBefore+2 || openFDs() > fdsBefore+2) {
		time.Sleep(100 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > goroutinesBefore+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before, %d after\n%s", goroutinesBefore, g, buf[:runtime.Stack(buf, true)])
	}
	if fds := openFDs(); fds > fdsBefore+2 {
		t.Fatalf("file descriptors: %d before, %d after", fdsBefore, fds)
	}
	// Every decoder, packet and frame is freed once the runner has stopped (the pool's
	// decoders included); allow for allocator slack.
	if grown := decode.CHeapInUse() - cHeapBefore; grown > 1<<20 {
		t.Fatalf("C heap grew by %d KiB", grown>>10)
	}
}
