package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runnerChildren returns the pids of the `livesnap runner` processes started by pid.
func runnerChildren(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) || fields[0] == "Z" {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "runner\x00") {
			out = append(out, child)
		}
	}
	sort.Ints(out)
	return out
}

// seqNumbers reads the {Sequence} values of a job's sequence objects on disk.
func seqNumbers(t *testing.T, dir string) []int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	re := regexp.MustCompile(`/(\d+)-\d{13}\.jpg$`)
	var out []int
	for _, f := range files {
		if m := re.FindStringSubmatch(f); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// The pipelines run in runner processes. When a runner crashes (a codec fault: SIGSEGV) or
// is killed (the OOM killer: SIGKILL), serve restarts it, the job resumes within seconds,
// and the API answers throughout. Nothing is recorded twice and every record has its object.
func TestRunnerCrashIsContained(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	relay := startRelay(t)
	streamURL := "rtmp://" + relay + "/live/crash"
	publish(t, streamURL)
	svc := startService(t, "--runners", "2", "--min-interval", "1")
	ice := svc.client(t, modeV3)
	waitFor(t, 30*time.Second, "two runner processes", func() bool { return len(runnerChildren(t, svc.Cmd.Process.Pid)) == 2 })

	tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "crash", "TimeInterval": "1",
		"SequenceFormat": "s/{JobId}/{Sequence}-{UnixTimestamp}.jpg", "OverwriteFormat": "s/{JobId}.jpg"})
	waitLive(t, streamURL)
	jobID := ice.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "crash", "TemplateId": tpl["TemplateId"].(string),
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": streamURL}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "crashbucket"}),
	})["JobId"].(string)
	dir := filepath.Join(svc.Data, "objects", "crashbucket", "s", jobID)
	waitFor(t, 30*time.Second, "first snapshots", func() bool { return len(seqNumbers(t, dir)) >= 3 })

	// The API must answer every call while runners die and come back.
	stopPolling := make(chan struct{})
	polled := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stopPolling:
				polled <- n
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := ice.call("GetLiveSnapshotJob", map[string]string{"JobId": jobID}); err != nil {
				t.Errorf("API call failed while runners crashed: %v", err)
			}
			n++
		}
	}()

	for _, sig := range []syscall.Signal{syscall.SIGSEGV, syscall.SIGKILL} {
		before := runnerChildren(t, svc.Cmd.Process.Pid)
		have := len(seqNumbers(t, dir))
		for _, pid := range before {
			syscall.Kill(pid, sig)
		}
		killed := time.Now()
		waitFor(t, 30*time.Second, "runners restarted after "+sig.String(), func() bool {
			now := runnerChildren(t, svc.Cmd.Process.Pid)
			return len(now) == 2 && now[0] != before[0] && now[1] != before[1] && now[0] != before[1]
		})
		waitFor(t, 30*time.Second, "snapshots again after "+sig.String(), func() bool { return len(seqNumbers(t, dir)) >= have+3 })
		t.Logf("%v: 3 new snapshots %v after the kill", sig, time.Since(killed).Round(100*time.Millisecond))
	}
	close(stopPolling)
	if n := <-polled; n < 10 {
		t.Fatalf("only %d API calls made while runners were down", n)
	}

	// Sequence numbers only grow, and every record points to an object on disk.
	seqs := seqNumbers(t, dir)
	for i := 1; i < len(seqs); i++ {
		if seqs[i] == seqs[i-1] {
			t.Fatalf("sequence %d written twice", seqs[i])
		}
	}
	list := ice.must("ListLiveSnapshotFiles", map[string]string{"JobId": jobID,
		"StartTime": time.Now().Add(-10 * time.Minute).UTC().Format("2006-01-02T15:04:05Z"),
		"EndTime":   time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05Z"), "Limit": "100"})
	records := 0
	for _, it := range list["FileList"].([]any) {
		f := it.(map[string]any)
		if _, err := os.Stat(filepath.Join(svc.Data, "objects", "crashbucket", filepath.FromSlash(f["OssObject"].(string)))); err != nil {
			t.Errorf("record without object: %v", err)
		}
		if f["IsOverlay"] != true {
			records++
		}
	}
	if records < len(seqs)-1 || records > len(seqs) {
		// A runner killed between writing an object and recording it leaves one object
		// without a record (never the reverse).
		t.Fatalf("%d sequence records for %d sequence objects", records, len(seqs))
	}
}
