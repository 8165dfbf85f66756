package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/rtmpserver"
)

// runState polls GetLiveSnapshotJob until RunState is want.
func waitRunState(t *testing.T, c *iceClient, job, want string, limit time.Duration) {
	t.Helper()
	var last any
	waitFor(t, limit, "RunState "+want, func() bool {
		j := c.must("GetLiveSnapshotJob", map[string]string{"JobId": job})
		last = j["RunState"]
		return last == want
	})
}

func submitJob(t *testing.T, c *iceClient, tplInterval string, stream string) string {
	t.Helper()
	tpl := c.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "faults", "TimeInterval": tplInterval,
		"SequenceFormat": "seq/{JobId}/{Sequence}.jpg"})["TemplateId"].(string)
	return c.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "faults", "TemplateId": tpl,
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": stream}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "faults"})})["JobId"].(string)
}

// A publisher that stops sending but keeps its connection open is detected as stalled within
// max(10 s, 2 x interval); stop returns promptly while stalled; the job stays started until then.
func TestStalledSourceIsDetected(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	// The relay tolerates a silent publisher for a minute, so only livesnap's own stall
	// detection can notice it.
	relay := startRelayWith(t, func(s *rtmpserver.Server) { s.IdleTimeout = time.Minute })
	stream := "rtmp://" + relay + "/live/stall"
	ff := publish(t, stream)
	svc := startService(t, "--min-interval", "1")
	c := svc.client(t, modeV3)
	waitLive(t, stream)
	job := submitJob(t, c, "2", stream)
	waitRunState(t, c, job, "capturing", 15*time.Second)

	if err := ff.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stalledAt := time.Now()
	waitRunState(t, c, job, "stalled", 25*time.Second)
	t.Logf("stall detected after %v", time.Since(stalledAt).Round(100*time.Millisecond))
	j := c.must("GetLiveSnapshotJob", map[string]string{"JobId": job})
	if j["Status"] != "started" || j["LastError"] == "" {
		t.Fatalf("a stalled job stays started and says why: %v", j)
	}
	begin := time.Now()
	c.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "stop"})
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("stop took %v while the source was stalled", d)
	}
	if st := c.must("GetLiveSnapshotJob", map[string]string{"JobId": job})["Status"]; st != "paused" {
		t.Fatalf("status after stop: %v", st)
	}
}

// The publisher goes away and comes back (three times, timestamps restarting, the size
// changing): the job stays started, resumes each time, and {Sequence} keeps counting without
// overwriting an object.
func TestPublisherComesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	relay := startRelay(t)
	stream := "rtmp://" + relay + "/live/flappy"
	svc := startService(t, "--min-interval", "1")
	c := svc.client(t, modeV3)
	sizes := []string{"640x360", "320x180", "480x270"}
	var job string
	for round, size := range sizes {
		ff := publishWith(t, stream, "-map", "0:v", "-vf", "scale="+size, "-c:v", "libx264", "-preset", "ultrafast", "-g", "24", "-an")
		waitLive(t, stream)
		if round == 0 {
			job = submitJob(t, c, "1", stream)
		}
		waitRunState(t, c, job, "capturing", 20*time.Second)
		dir := filepath.Join(svc.Data, "objects", "faults", "seq", job)
		before := countFiles(dir)
		waitFor(t, 20*time.Second, "snapshots of "+size, func() bool { return countFiles(dir) >= before+3 })
		ff.Process.Kill()
		ff.Wait()
		if round < len(sizes)-1 {
			waitRunState(t, c, job, "waiting_for_stream", 20*time.Second)
			if st := c.must("GetLiveSnapshotJob", map[string]string{"JobId": job})["Status"]; st != "started" {
				t.Fatalf("the job must stay started while its stream is away: %v", st)
			}
		}
	}
	// Every sequence number is used once, in order: nothing was overwritten.
	dir := filepath.Join(svc.Data, "objects", "faults", "seq", job)
	entries, _ := os.ReadDir(dir)
	var seqs []int
	name := regexp.MustCompile(`^(\d+)\.jpg$`)
	sizesSeen := map[string]bool{}
	for _, e := range entries {
		m := name.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		seqs = append(seqs, n)
		w, h := jpegSize(t, filepath.Join(dir, e.Name()))
		sizesSeen[strconv.Itoa(w)+"x"+strconv.Itoa(h)] = true
	}
	sort.Ints(seqs)
	for i, n := range seqs {
		if n != i+1 {
			t.Fatalf("sequence numbers %v have a gap or a repeat", seqs)
		}
	}
	for _, size := range sizes {
		if !sizesSeen[size] {
			t.Fatalf("no snapshot at %s; saw %v", size, sizesSeen)
		}
	}
}

func countFiles(dir string) int {
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".jpg" {
			n++
		}
	}
	return n
}
