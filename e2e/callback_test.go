package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/callback"
)

// A job with a CallbackUrl: every stored object is announced once with a signed
// LiveSnapshotFileCreated event whose fields match ListLiveSnapshotFiles; /metrics counts it.
func TestCallbacksAndMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	var mu sync.Mutex
	var events []map[string]any
	var secret string // the account's callback secret, from credentials.json
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev map[string]any
		mu.Lock()
		key := secret
		mu.Unlock()
		if json.Unmarshal(body, &ev) != nil || !callback.Verify(key, r.Header, body, time.Now(), 5*time.Minute) {
			t.Errorf("callback not signed with the account's callback secret: %s", body)
			http.Error(w, "bad callback", 400)
			return
		}
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}))
	defer rcv.Close()

	relay := startRelay(t)
	stream := "rtmp://" + relay + "/live/cb"
	publish(t, stream)
	svc := startService(t, "--min-interval", "2", "--log-level", "debug")
	var creds struct{ CallbackSecret string }
	if b, err := os.ReadFile(filepath.Join(svc.Data, "credentials.json")); err != nil || json.Unmarshal(b, &creds) != nil || creds.CallbackSecret == "" {
		t.Fatalf("credentials.json holds no callback secret: %v", err)
	}
	mu.Lock()
	secret = creds.CallbackSecret
	mu.Unlock()
	c := svc.client(t, modeV3)
	tpl := c.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "cb", "TimeInterval": "3",
		"OverwriteFormat": "cover/{JobId}.jpg", "SequenceFormat": "seq/{JobId}/{Sequence}.jpg"})["TemplateId"].(string)
	waitLive(t, stream)
	job := c.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "with callback", "TemplateId": tpl, "CallbackUrl": rcv.URL + "/hook",
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": stream}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "cbbucket"})})["JobId"].(string)
	time.Sleep(14 * time.Second)
	c.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "stop"})

	now := time.Now().UTC()
	files := c.must("ListLiveSnapshotFiles", map[string]string{"JobId": job, "Limit": "100",
		"StartTime": now.Add(-time.Hour).Format(time.RFC3339), "EndTime": now.Add(time.Minute).Format(time.RFC3339)})["FileList"].([]any)
	seqRecords := 0
	for _, f := range files {
		if f.(map[string]any)["IsOverlay"] == false {
			seqRecords++
		}
	}
	// Keyframes come every 2.67 s and each tick takes the first one at or after it.
	if seqRecords < 3 {
		t.Fatalf("only %d snapshots in 14 s at a 3 s interval", seqRecords)
	}
	// One event per stored object: a sequence object and the overwrite object per capture.
	waitFor(t, 15*time.Second, "callbacks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) >= 2*seqRecords
	})
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2*seqRecords {
		t.Fatalf("%d callbacks for %d captures", len(events), seqRecords)
	}
	listed := map[string]bool{}
	for _, f := range files {
		m := f.(map[string]any)
		if m["IsOverlay"] == false {
			listed[m["OssObject"].(string)] = true
		}
	}
	overlays := 0
	for _, ev := range events {
		mb := ev["MessageBody"].(map[string]any)
		if ev["EventType"] != "LiveSnapshotFileCreated" || mb["JobId"] != job || mb["JobName"] != "with callback" || mb["OssBucket"] != "cbbucket" {
			t.Fatalf("event: %v", ev)
		}
		if mb["IsOverlay"] == true {
			overlays++
			if mb["OssObject"] != "cover/"+job+".jpg" {
				t.Fatalf("overwrite event: %v", ev)
			}
			continue
		}
		if !listed[mb["OssObject"].(string)] {
			t.Fatalf("event for an object that is not listed: %v", ev)
		}
		delete(listed, mb["OssObject"].(string))
	}
	if len(listed) != 0 || overlays != seqRecords {
		t.Fatalf("objects without a callback: %v; overwrite events %d", listed, overlays)
	}

	resp, err := http.Get("http://" + svc.Endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"livesnap_snapshots_total", "livesnap_callback_deliveries_total", "livesnap_decode_seconds_bucket", "livesnap_jobs"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
}
