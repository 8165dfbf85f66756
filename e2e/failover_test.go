package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/store/postgres/pgtest"
)

// callbackSink collects every callback body it receives, by object and capture time (an
// overwrite object gets one callback per capture).
type callbackSink struct {
	mu     sync.Mutex
	bodies map[string][]string // "OssObject@CreateTimestamp" → bodies received
}

func (c *callbackSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	var ev struct {
		MessageBody struct {
			OssObject       string
			CreateTimestamp int64
		}
	}
	if json.Unmarshal(b, &ev) == nil {
		key := fmt.Sprintf("%s@%d", ev.MessageBody.OssObject, ev.MessageBody.CreateTimestamp)
		c.mu.Lock()
		c.bodies[key] = append(c.bodies[key], string(b))
		c.mu.Unlock()
	}
}

// pipelinesOn reads how many pipelines a node's runners run now, from its /metrics.
func pipelinesOn(t *testing.T, s *service) int {
	t.Helper()
	resp, err := http.Get("http://" + s.Endpoint + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	re := regexp.MustCompile(`(?m)^livesnap_jobs\{[^}]*\} (\d+)`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}

// lastSnapshots returns, per job, the time of its newest sequence object on disk.
func lastSnapshots(t *testing.T, dir string, jobs []string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for _, j := range jobs {
		files, _ := filepath.Glob(filepath.Join(dir, j, "*.jpg"))
		for _, f := range files {
			if st, err := os.Stat(f); err == nil && st.ModTime().After(out[j]) {
				out[j] = st.ModTime()
			}
		}
	}
	return out
}

// Three nodes share one PostgreSQL and run 20 jobs on live streams. One node dies at once,
// runners and all (kill -9 of its process group, as when a machine goes down): its jobs
// produce snapshots again on the other nodes within the lease TTL plus one interval. No file
// record is lost or duplicated, every record has its object, {Sequence} never repeats, and
// every snapshot's callback is delivered at least once, always with the same content.
func TestNodeFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	dbURL := pgtest.Database(t)
	relay := startRelay(t)
	var streams []string
	for i := range 4 {
		s := fmt.Sprintf("rtmp://%s/live/f%d", relay, i)
		publish(t, s)
		streams = append(streams, s)
	}
	sink := &callbackSink{bodies: map[string][]string{}}
	cb := httptest.NewServer(sink)
	defer cb.Close()

	const ttl, interval = 5 * time.Second, 2 * time.Second
	shared := t.TempDir() // the nodes' common --data: one object directory for all
	args := []string{"--store", dbURL, "--runners", "1", "--lease-ttl", ttl.String(), "--min-interval", "1"}
	var nodes []*service
	for range 3 {
		s, healthy := launchService(t, serviceOptions{data: shared, ownGroup: true}, args...)
		healthy()
		nodes = append(nodes, s)
	}
	ice := nodes[0].client(t, modeV3)
	tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "failover", "TimeInterval": "2",
		"SequenceFormat": "f/{JobId}/{Sequence}-{UnixTimestamp}.jpg", "OverwriteFormat": "f/{JobId}.jpg"})["TemplateId"].(string)
	for _, s := range streams {
		waitLive(t, s)
	}
	var jobs []string
	for i := range 20 {
		jobs = append(jobs, ice.must("SubmitLiveSnapshotJob", map[string]string{"JobName": fmt.Sprint("f", i), "TemplateId": tpl,
			"CallbackUrl":    cb.URL + "/cb",
			"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": streams[i%len(streams)]}),
			"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "failover"}),
		})["JobId"].(string))
	}
	dir := filepath.Join(shared, "objects", "failover", "f")
	waitFor(t, 60*time.Second, "every job capturing, spread over the nodes", func() bool {
		for _, j := range jobs {
			if files, _ := filepath.Glob(filepath.Join(dir, j, "*.jpg")); len(files) < 2 {
				return false
			}
		}
		for _, n := range nodes {
			if pipelinesOn(t, n) < 5 {
				return false
			}
		}
		return true
	})
	victim := nodes[2]
	onVictim := pipelinesOn(t, victim)
	t.Logf("pipelines per node: %d %d %d", pipelinesOn(t, nodes[0]), pipelinesOn(t, nodes[1]), onVictim)

	syscall.Kill(-victim.Cmd.Process.Pid, syscall.SIGKILL) // the node and its runner at once
	killed := time.Now()
	// 1.5 intervals later, and still before the dead node's leases expire, its jobs are the
	// ones that have written nothing since the kill.
	time.Sleep(interval * 3 / 2)
	stale := lastSnapshots(t, dir, jobs)
	var orphans []string
	for _, j := range jobs {
		if stale[j].Before(killed) {
			orphans = append(orphans, j)
		}
	}
	deadline := ttl + interval + 10*time.Second // + connect and the first keyframe (2.67 s GOP), on a busy machine
	waitFor(t, deadline, "every job capturing again on the surviving nodes", func() bool {
		now := lastSnapshots(t, dir, jobs)
		for _, j := range jobs {
			if !now[j].After(killed.Add(time.Second)) {
				return false
			}
		}
		return true
	})
	t.Logf("%d jobs were on the dead node (%d pipelines); all resumed within %v", len(orphans), onVictim, time.Since(killed).Round(100*time.Millisecond))
	if len(orphans) < 3 {
		t.Fatalf("only %d jobs stalled when the node died: the test did not exercise a failover", len(orphans))
	}
	time.Sleep(2 * interval)
	for _, j := range jobs {
		ice.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": j, "Command": "stop"})
	}
	time.Sleep(time.Second)

	// Records against objects: every record has its object; every object but at most one per
	// job (a capture cut off between its write and its record) has its record.
	seqName := regexp.MustCompile(`/(\d+)-\d{13}\.jpg$`)
	recorded := map[string]bool{}   // sequence objects
	recordedAt := map[string]bool{} // every record, as the sink keys callbacks
	for _, j := range jobs {
		list := ice.must("ListLiveSnapshotFiles", map[string]string{"JobId": j, "Limit": "100",
			"StartTime": killed.Add(-10 * time.Minute).UTC().Format(time.RFC3339), "EndTime": time.Now().Add(time.Minute).UTC().Format(time.RFC3339)})
		seen := map[int]bool{}
		for _, it := range list["FileList"].([]any) {
			f := it.(map[string]any)
			obj := f["OssObject"].(string)
			if _, err := os.Stat(filepath.Join(shared, "objects", "failover", filepath.FromSlash(obj))); err != nil {
				t.Errorf("record without its object: %v", err)
			}
			recordedAt[fmt.Sprintf("%s@%d", obj, int64(f["CreateTimestamp"].(float64)))] = true
			if f["IsOverlay"] == true {
				continue
			}
			if recorded[obj] {
				t.Errorf("object %s recorded twice", obj)
			}
			recorded[obj] = true
			m := seqName.FindStringSubmatch(obj)
			n, _ := strconv.Atoi(m[1])
			if seen[n] {
				t.Errorf("job %s: sequence %d twice", j, n)
			}
			seen[n] = true
		}
		files, _ := filepath.Glob(filepath.Join(dir, j, "*.jpg"))
		unrecorded := 0
		for _, f := range files {
			if !recorded["f/"+j+"/"+filepath.Base(f)] {
				unrecorded++
			}
		}
		if unrecorded > 1 {
			t.Errorf("job %s: %d objects without a record", j, unrecorded)
		}
	}

	// Callbacks: at least one per record, all copies identical.
	waitFor(t, 60*time.Second, "a callback for every record", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for key := range recordedAt {
			if len(sink.bodies[key]) == 0 {
				return false
			}
		}
		return true
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	dups := 0
	for key, bodies := range sink.bodies {
		for _, b := range bodies[1:] {
			if b != bodies[0] {
				t.Errorf("callbacks for %s differ:\n%s\n%s", key, bodies[0], b)
			}
		}
		dups += len(bodies) - 1
		if obj, _, _ := strings.Cut(key, "@"); seqName.MatchString(obj) && !recorded[obj] {
			t.Errorf("callback for %s, which has no record", obj)
		}
	}
	t.Logf("%d sequence records, %d callbacks, %d duplicate deliveries", len(recorded), len(sink.bodies), dups)
}
