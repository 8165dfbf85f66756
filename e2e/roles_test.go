package e2e

import (
	"context"
	execpkg "os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Operators split the roles: an --api-only node answers the API and runs no pipeline, a
// --runner-only node (no API) captures what the API node's users submit; both share one store.
func TestAPIOnlyAndRunnerOnlyNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	relay := startRelay(t)
	stream := "rtmp://" + relay + "/live/roles"
	publish(t, stream)
	shared := t.TempDir()
	storeURL := "sqlite://" + filepath.Join(shared, "state.db")
	api := startService(t, "--api-only", "--store", storeURL, "--min-interval", "1")
	ice := api.client(t, modeV3)
	tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "roles", "TimeInterval": "1",
		"SequenceFormat": "r/{JobId}/{Sequence}.jpg"})["TemplateId"].(string)
	waitLive(t, stream)
	job := ice.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "roles", "TemplateId": tpl,
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": stream}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "roles"})})["JobId"].(string)

	// The API node alone captures nothing: the job is started and waits for a runner.
	dir := filepath.Join(api.Data, "objects", "roles", "r", job)
	time.Sleep(3 * time.Second)
	if files, _ := filepath.Glob(filepath.Join(dir, "*.jpg")); len(files) > 0 {
		t.Fatalf("an --api-only node ran the pipeline: %v", files)
	}
	if got := ice.must("GetLiveSnapshotJob", map[string]string{"JobId": job}); got["Status"] != "started" || got["RunState"] != "connecting" {
		t.Fatalf("before any runner: %v", got)
	}

	// A runner-only node on the same store (objects in the same directory) picks the job up.
	ctx, cancel := context.WithCancel(context.Background())
	runner := execpkg.CommandContext(ctx, binary, "serve", "--runner-only", "--runners", "1", "--store", storeURL, "--data", api.Data)
	runner.Stderr = &testLog{t: t, prefix: "runner-only: "}
	runner.Cancel = func() error { return runner.Process.Signal(syscall.SIGTERM) }
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); runner.Wait() })
	waitFor(t, 30*time.Second, "snapshots from the runner-only node", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
		return len(files) >= 2
	})
	if got := ice.must("GetLiveSnapshotJob", map[string]string{"JobId": job}); got["RunState"] != "capturing" {
		t.Fatalf("the API node does not see the runner's state: %v", got)
	}
}
