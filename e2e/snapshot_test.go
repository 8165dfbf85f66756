package e2e

import (
	"context"
	"image/jpeg"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/source"
)

// A user publishes a live RTMP stream, creates a template, submits a job, sees a JPEG every
// interval, lists the files, stops the job, and sees no new file afterwards.
func TestLiveRTMPStreamBecomesSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	relay := startRelay(t)
	streamURL := "rtmp://" + relay + "/live/bunny"
	publish(t, streamURL)
	svc := startService(t)
	ice := svc.client(t, modeV3)

	tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{
		"TemplateName":    "every 5 s",
		"TimeInterval":    "5",
		"OverwriteFormat": "snapshot/{JobId}.jpg",
		"SequenceFormat":  "snapshot/{JobId}/{Sequence}-{UnixTimestamp}.jpg",
	})
	templateID := tpl["TemplateId"].(string)

	// Wait until the publisher is live so that submit starts the job at once.
	waitLive(t, streamURL)

	submitted := time.Now()
	job := ice.must("SubmitLiveSnapshotJob", map[string]string{
		"JobName":        "bunny",
		"TemplateId":     templateID,
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": streamURL}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "testbucket"}),
	})
	jobID := job["JobId"].(string)
	got := ice.must("GetLiveSnapshotJob", map[string]string{"JobId": jobID})
	if got["Status"] != "started" {
		t.Fatalf("a job submitted on a live stream must start at once, got %v", got["Status"])
	}

	const watch = 17 * time.Second
	time.Sleep(watch)
	elapsed := time.Since(submitted)

	// The files on disk: real JPEGs of the stream's size, one per interval.
	bucketDir := filepath.Join(svc.Data, "objects", "testbucket")
	seqFiles, _ := filepath.Glob(filepath.Join(bucketDir, "snapshot", jobID, "*.jpg"))
	want := int(elapsed/(5*time.Second)) + 1 // the first tick is when the stream opens
	if len(seqFiles) < want-1 || len(seqFiles) > want {
		t.Fatalf("after %v with a 5 s interval: %d sequence snapshots, want %d (or one less)", elapsed.Round(time.Second), len(seqFiles), want)
	}
	for _, f := range append(seqFiles, filepath.Join(bucketDir, "snapshot", jobID+".jpg")) {
		checkJPEG(t, f, 640, 360)
	}

	// ListLiveSnapshotFiles lists the same objects, with matching names and timestamps.
	list := ice.must("ListLiveSnapshotFiles", map[string]string{
		"JobId":     jobID,
		"StartTime": submitted.Add(-time.Minute).UTC().Format("2006-01-02T15:04:05Z"),
		"EndTime":   time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05Z"),
		"Limit":     "100",
	})
	items := list["FileList"].([]any)
	seqName := regexp.MustCompile(`^snapshot/` + regexp.QuoteMeta(jobID) + `/(\d+)-(\d{13})\.jpg$`)
	var sequences []int
	overlays := 0
	var latest int64
	for _, it := range items {
		f := it.(map[string]any)
		obj := f["OssObject"].(string)
		ts := int64(f["CreateTimestamp"].(float64))
		if f["OssBucket"] != "testbucket" || f["OssEndpoint"] != "oss-cn-shanghai.aliyuncs.com" {
			t.Fatalf("record with wrong output: %v", f)
		}
		if ts < submitted.UnixMilli() || ts > time.Now().UnixMilli() {
			t.Fatalf("record time %d outside the test's run", ts)
		}
		if ct := time.UnixMilli(ts).UTC().Format("2006-01-02T15:04:05Z"); f["CreateTime"] != ct {
			t.Fatalf("CreateTime %v does not match CreateTimestamp %d", f["CreateTime"], ts)
		}
		if _, err := os.Stat(filepath.Join(bucketDir, filepath.FromSlash(obj))); err != nil {
			t.Fatalf("listed object missing on disk: %v", err)
		}
		if f["IsOverlay"] == true {
			overlays++
			if obj != "snapshot/"+jobID+".jpg" {
				t.Fatalf("overwrite object named %q", obj)
			}
			continue
		}
		m := seqName.FindStringSubmatch(obj)
		if m == nil {
			t.Fatalf("sequence object named %q", obj)
		}
		if m[2] != strconv.FormatInt(ts, 10) {
			t.Fatalf("{UnixTimestamp} %s differs from CreateTimestamp %d", m[2], ts)
		}
		n, _ := strconv.Atoi(m[1])
		sequences = append(sequences, n)
		latest = max(latest, ts)
	}
	if overlays != 1 || len(sequences) != len(seqFiles) {
		t.Fatalf("listed %d sequence and %d overwrite records; %d files on disk", len(sequences), overlays, len(seqFiles))
	}
	for i, n := range sequences {
		if n != i+1 {
			t.Fatalf("sequence numbers %v, want 1..%d in time order", sequences, len(sequences))
		}
	}

	// Stop: no new file after the command has returned.
	ice.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": jobID, "Command": "stop"})
	if st := ice.must("GetLiveSnapshotJob", map[string]string{"JobId": jobID})["Status"]; st != "paused" {
		t.Fatalf("status after stop: %v", st)
	}
	time.Sleep(500 * time.Millisecond)
	before, _ := filepath.Glob(filepath.Join(bucketDir, "snapshot", jobID, "*.jpg"))
	time.Sleep(11 * time.Second)
	after, _ := filepath.Glob(filepath.Join(bucketDir, "snapshot", jobID, "*.jpg"))
	if len(after) != len(before) {
		t.Fatalf("%d new files after stop", len(after)-len(before))
	}
	// Stopping again is a no-op.
	ice.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": jobID, "Command": "stop"})
}

func checkJPEG(t *testing.T, path string, w, h int) {
	t.Helper()
	if gw, gh := jpegSize(t, path); gw != w || gh != h {
		t.Fatalf("%s is %dx%d, want %dx%d", path, gw, gh, w, h)
	}
}

// jpegSize decodes a JPEG file fully and returns its size.
func jpegSize(t *testing.T, path string) (int, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a JPEG: %v", path, err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

// waitLive waits until an RTMP stream has video.
func waitLive(t *testing.T, url string) {
	t.Helper()
	waitFor(t, 20*time.Second, "stream "+url+" published", func() bool {
		return source.Probe(context.Background(), "rtmp", url, 3*time.Second) == nil
	})
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
