package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/blob/s3test"
)

// ossEndpoint is the ICE endpoint users name; the storage config maps it to the S3 server.
const ossEndpoint = "oss-cn-shanghai.aliyuncs.com"

// storageConfig writes a storage config that maps oss at ossEndpoint, bucket only, to the S3
// server at url, with the credentials in environment variables; it returns the file and the
// environment livesnap needs.
func storageConfig(t *testing.T, srv *s3test.Server, url, bucket string) (string, []string) {
	t.Helper()
	cfg := fmt.Sprintf(`{"Outputs": [{
		"StorageType": "oss", "Endpoint": %q, "Buckets": [%q],
		"S3": {"URL": %q, "Region": %q, "AccessKeyIdEnv": "E2E_S3_KEY", "SecretAccessKeyEnv": "E2E_S3_SECRET", "TimeoutSeconds": 5}
	}]}`, ossEndpoint, bucket, url, srv.Region)
	path := filepath.Join(t.TempDir(), "storage.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, []string{"E2E_S3_KEY=" + srv.AccessKey, "E2E_S3_SECRET=" + srv.SecretKey}
}

// An operator maps ICE's oss endpoint to an S3-compatible store. A job on a live stream writes
// JPEGs there, ListLiveSnapshotFiles lists them, DeleteLiveSnapshotFiles with
// DeleteOriginalFile=true removes them; outputs the operator did not configure are refused.
func TestSnapshotsGoToObjectStorage(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t, "e2e-snaps")
	cfg, env := storageConfig(t, srv, srv.URL, bucket)
	relay := startRelay(t)
	stream := "rtmp://" + relay + "/live/s3"
	publish(t, stream)
	svc := startServiceEnv(t, env, "--min-interval", "1", "--storage-config", cfg)
	ice := svc.client(t, modeV3)
	tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "s3", "TimeInterval": "2",
		"OverwriteFormat": "snapshot/{JobId}.jpg", "SequenceFormat": "snapshot/{JobId}/{Sequence}-{UnixTimestamp}.jpg"})["TemplateId"].(string)
	submit := func(c *iceClient, out map[string]string) (map[string]any, error) {
		return c.call("SubmitLiveSnapshotJob", map[string]string{"JobName": "s3", "TemplateId": tpl,
			"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": stream}),
			"SnapshotOutput": jsonText(out)})
	}

	// What the operator did not configure is refused, whichever client asks.
	for _, mode := range allModes {
		c := svc.client(t, mode)
		for _, out := range []map[string]string{
			{"StorageType": "oss", "Endpoint": "oss-cn-hangzhou.aliyuncs.com", "Bucket": bucket},
			{"StorageType": "oss", "Endpoint": ossEndpoint, "Bucket": "not-" + bucket},
			{"StorageType": "s3", "Endpoint": srv.Host(), "Bucket": bucket},
			{"StorageType": "local", "Endpoint": "x", "Bucket": bucket},
		} {
			_, err := submit(c, out)
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "InvalidParameter" {
				t.Fatalf("%s: submit to %v: want 400 InvalidParameter, got %v", mode, out, err)
			}
		}
	}

	waitLive(t, stream)
	job, err := submit(ice, map[string]string{"StorageType": "oss", "Endpoint": ossEndpoint, "Bucket": bucket})
	if err != nil {
		t.Fatal(err)
	}
	jobID := job["JobId"].(string)
	prefix := "snapshot/" + jobID + "/"
	waitFor(t, 45*time.Second, "three sequence objects in the bucket", func() bool { return len(srv.Objects(t, bucket, prefix)) >= 3 })
	ice.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": jobID, "Command": "stop"})
	time.Sleep(2 * time.Second) // a capture in flight at the stop finishes (and is not recorded)

	// The objects, read back from S3: JPEGs of the stream's size, served as image/jpeg.
	keys := srv.Objects(t, bucket, prefix)
	for _, key := range append(keys, "snapshot/"+jobID+".jpg") {
		data, ctype, err := srv.Get(t, bucket, key)
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s is not a JPEG: %v", key, err)
		}
		if img.Bounds().Dx() != 640 || img.Bounds().Dy() != 360 || ctype != "image/jpeg" {
			t.Fatalf("%s: %v %q, want 640x360 image/jpeg", key, img.Bounds(), ctype)
		}
	}
	if _, err := os.Stat(filepath.Join(svc.Data, "objects")); !os.IsNotExist(err) {
		t.Fatalf("with a storage config nothing goes to the data directory: %v", err)
	}

	// ListLiveSnapshotFiles lists exactly the objects in the bucket.
	window := map[string]string{"JobId": jobID, "Limit": "100",
		"StartTime": time.Now().Add(-10 * time.Minute).UTC().Format("2006-01-02T15:04:05Z"),
		"EndTime":   time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05Z")}
	list := func() (seq map[string]int64, overlays int) {
		seq = map[string]int64{}
		for _, it := range ice.must("ListLiveSnapshotFiles", window)["FileList"].([]any) {
			f := it.(map[string]any)
			if f["OssEndpoint"] != ossEndpoint || f["OssBucket"] != bucket {
				t.Fatalf("record with another output: %v", f)
			}
			if f["IsOverlay"] == true {
				overlays++
				continue
			}
			seq[f["OssObject"].(string)] = int64(f["CreateTimestamp"].(float64))
		}
		return seq, overlays
	}
	seq, overlays := list()
	if overlays != 1 || len(seq) != len(keys) {
		t.Fatalf("listed %d sequence and %d overwrite records; %d objects in the bucket", len(seq), overlays, len(keys))
	}
	name := regexp.MustCompile(`^snapshot/` + regexp.QuoteMeta(jobID) + `/\d+-(\d{13})\.jpg$`)
	var stamps []int64
	for _, key := range keys {
		ts, ok := seq[key]
		m := name.FindStringSubmatch(key)
		if !ok || m == nil || m[1] != strconv.FormatInt(ts, 10) {
			t.Fatalf("object %s has no matching record (records: %v)", key, seq)
		}
		stamps = append(stamps, ts)
	}

	// DeleteLiveSnapshotFiles with DeleteOriginalFile=true removes records and objects; the
	// overwrite object stays, as in ICE.
	res := ice.must("DeleteLiveSnapshotFiles", map[string]string{"JobId": jobID, "CreateTimestampList": jsonText(stamps), "DeleteOriginalFile": "true"})
	for _, r := range res["DeleteFileResultList"].([]any) {
		if r.(map[string]any)["Result"] != "OK" {
			t.Fatalf("delete results: %v", res)
		}
	}
	if left := srv.Objects(t, bucket, prefix); len(left) != 0 {
		t.Fatalf("objects left after DeleteOriginalFile=true: %v", left)
	}
	if seq, overlays := list(); len(seq) != 0 || overlays != 1 {
		t.Fatalf("records after delete: %d sequence, %d overwrite", len(seq), overlays)
	}
	if _, _, err := srv.Get(t, bucket, "snapshot/"+jobID+".jpg"); err != nil {
		t.Fatalf("the overwrite object must stay: %v", err)
	}
}

// The object store goes away while a job runs: every tick becomes a recorded miss (MissCount,
// LastError), no record is written without its object, and capturing resumes when the store
// comes back.
func TestObjectStoreOutageIsARecordedMiss(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t, "e2e-outage")
	proxy := startProxy(t, srv.Host())
	cfg, env := storageConfig(t, srv, "http://"+proxy.addr, bucket)
	relay := startRelay(t)
	stream := "rtmp://" + relay + "/live/outage"
	publish(t, stream)
	svc := startServiceEnv(t, env, "--min-interval", "1", "--storage-config", cfg)
	ice := svc.client(t, modeV3)
	tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "outage", "TimeInterval": "1",
		"SequenceFormat": "seq/{JobId}/{Sequence}.jpg"})["TemplateId"].(string)
	waitLive(t, stream)
	jobID := ice.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "outage", "TemplateId": tpl,
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": stream}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": ossEndpoint, "Bucket": bucket})})["JobId"].(string)
	status := func() map[string]any { return ice.must("GetLiveSnapshotJob", map[string]string{"JobId": jobID}) }
	count := func(j map[string]any, field string) int64 {
		v, _ := j[field].(float64)
		return int64(v)
	}
	waitFor(t, 30*time.Second, "two snapshots", func() bool { return count(status(), "SnapshotCount") >= 2 })

	proxy.down()
	before := status()
	waitFor(t, 30*time.Second, "misses while the store is down", func() bool {
		return count(status(), "MissCount") >= count(before, "MissCount")+3
	})
	during := status()
	if during["Status"] != "started" || during["RunState"] != "capturing" || !strings.Contains(fmt.Sprint(during["LastError"]), "write") {
		t.Fatalf("while the store is down the job keeps capturing and says why it misses: %v", during)
	}
	if msg := fmt.Sprint(during["LastError"]); strings.Contains(msg, proxy.addr) || strings.Contains(msg, "127.0.0.1") {
		t.Fatalf("LastError shows the operator's object store address to the job's owner: %q", msg)
	}
	time.Sleep(3 * time.Second)
	if later := status(); count(later, "SnapshotCount") != count(during, "SnapshotCount") {
		t.Fatalf("snapshots counted while the store was down: %d, then %d", count(during, "SnapshotCount"), count(later, "SnapshotCount"))
	}
	if m := metric(t, svc, `livesnap_snapshot_misses_total{reason="object_write_failed"}`); m < 1 {
		t.Fatalf("object_write_failed misses: %v", m)
	}

	proxy.up()
	resumed := count(status(), "SnapshotCount")
	waitFor(t, 30*time.Second, "snapshots after the store is back", func() bool { return count(status(), "SnapshotCount") >= resumed+2 })
	if j := status(); j["LastError"] != nil && j["LastError"] != "" {
		t.Fatalf("LastError stays after the store came back: %v", j["LastError"])
	}
	ice.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": jobID, "Command": "stop"})

	// Every record has its object; objects without a record are only allowed for captures
	// that were in flight when the store went away.
	objects := map[string]bool{}
	for _, k := range srv.Objects(t, bucket, "seq/"+jobID+"/") {
		objects[k] = true
	}
	files := ice.must("ListLiveSnapshotFiles", map[string]string{"JobId": jobID, "Limit": "100",
		"StartTime": time.Now().Add(-10 * time.Minute).UTC().Format("2006-01-02T15:04:05Z"),
		"EndTime":   time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05Z")})["FileList"].([]any)
	if len(files) < 4 {
		t.Fatalf("only %d records", len(files))
	}
	for _, it := range files {
		if obj := it.(map[string]any)["OssObject"].(string); !objects[obj] {
			t.Fatalf("record %s has no object in the bucket", obj)
		}
	}
}

// metric reads one sample from livesnap's /metrics.
func metric(t *testing.T, svc *service, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + svc.Endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	// series is name{label="value",...}: sum every series of that name carrying those labels
	// (each process adds its own process="..." label).
	name, labels, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		got, value, _ := strings.Cut(rest, " ")
		match := true
		for _, l := range strings.Split(labels, ",") {
			if l != "" && !strings.Contains(got, l) {
				match = false
			}
		}
		if match {
			f, _ := strconv.ParseFloat(value, 64)
			sum += f
		}
	}
	return sum
}

// tcpProxy forwards a loopback port to target; down closes the port and every connection
// (the store "goes away"), up opens the same port again.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, addr: freePort(t), target: target, conns: map[net.Conn]bool{}}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) up() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port was ours a moment ago; the kernel may need a moment
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.forward(c) }()
		}
	}()
}

func (p *tcpProxy) forward(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // went down meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *tcpProxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
