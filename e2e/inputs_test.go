package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/source/sourcetest"
)

// A user snapshots a live stream of each input type livesnap pulls through libavformat:
// submit a job with that StreamInput.Type, and JPEGs appear every interval, each showing the
// stream's picture of that moment (matched against the clip's keyframes), listed by
// ListLiveSnapshotFiles. For HLS, whose segments arrive in bursts well after they were live,
// each snapshot's time is the moment its picture was live, not when its segment came.
func TestLiveInputsBecomeSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	cases := []struct {
		name, typ, transport string
		serve                func(t *testing.T, c *sourcetest.Clip) (srv *sourcetest.Server, started func() time.Time)
		// fromStart: every client gets the clip from its first frame (else the stream is a
		// loop joined live, started when the server started).
		fromStart bool
	}{
		{name: "http-flv", typ: "http-flv", fromStart: true, serve: func(t *testing.T, c *sourcetest.Clip) (*sourcetest.Server, func() time.Time) {
			return sourcetest.FLVServer(t, c), nil
		}},
		{name: "srt", typ: "srt", fromStart: true, serve: func(t *testing.T, c *sourcetest.Clip) (*sourcetest.Server, func() time.Time) {
			return sourcetest.SRTServer(t, c), nil
		}},
		{name: "rtsp", typ: "rtsp", fromStart: true, serve: func(t *testing.T, c *sourcetest.Clip) (*sourcetest.Server, func() time.Time) {
			return sourcetest.RTSPServer(t, c), nil
		}},
		{name: "rtsp-udp", typ: "rtsp", transport: "udp", fromStart: true, serve: func(t *testing.T, c *sourcetest.Clip) (*sourcetest.Server, func() time.Time) {
			return sourcetest.RTSPServer(t, c), nil
		}},
		// 4 s segments of two keyframes each: a segment's first keyframe arrives 4 s after it
		// was live, so a stale stamp would be obvious.
		{name: "hls", typ: "hls", serve: func(t *testing.T, c *sourcetest.Clip) (*sourcetest.Server, func() time.Time) {
			h := sourcetest.HLSServer(t, c, sourcetest.HLSOptions{SegmentSeconds: 4})
			return h.Server, func() time.Time { return h.Starts()[0] }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clip := sourcetest.Make(t, sourcetest.H264)
			srv, started := tc.serve(t, clip)
			url := srv.URL
			svc := startService(t, "--min-interval", "2")
			ice := svc.client(t, modeV3)
			const interval = 4 * time.Second
			tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{
				"TemplateName":    "every 4 s",
				"TimeInterval":    "4",
				"OverwriteFormat": "snap/{JobId}.jpg",
				"SequenceFormat":  "snap/{JobId}/{Sequence}-{UnixTimestamp}.jpg",
			})["TemplateId"].(string)
			input := map[string]string{"Type": tc.typ, "Url": url}
			if tc.transport != "" {
				input["Transport"] = tc.transport
			}
			waitStreamLive(t, tc.typ, url)
			srv.WaitReady(t) // a one-client server is back for the submit's probe

			submitted := time.Now()
			jobID := ice.must("SubmitLiveSnapshotJob", map[string]string{
				"JobName":        tc.name,
				"TemplateId":     tpl,
				"StreamInput":    jsonText(input),
				"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "testbucket"}),
			})["JobId"].(string)
			job := ice.must("GetLiveSnapshotJob", map[string]string{"JobId": jobID})
			if job["Status"] != "started" {
				t.Fatalf("a job on a live %s stream must start at once, got %v", tc.typ, job["Status"])
			}
			if got := job["StreamInput"].(map[string]any); got["Type"] != tc.typ || got["Url"] != url || got["Transport"] != nilIfEmpty(tc.transport) {
				t.Fatalf("StreamInput read back as %v", got)
			}

			time.Sleep(14 * time.Second)
			elapsed := time.Since(submitted)
			dir := filepath.Join(svc.Data, "objects", "testbucket", "snap", jobID)
			files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
			if want := int(elapsed / interval); len(files) < want-1 || len(files) > want+1 {
				t.Fatalf("after %v with a %v interval: %d snapshots, want about %d", elapsed.Round(time.Second), interval, len(files), want)
			}

			// Each snapshot shows a keyframe of the clip; later snapshots show later pictures.
			name := regexp.MustCompile(`/(\d+)-(\d{13})\.jpg$`)
			type shot struct {
				seq  int
				at   time.Time
				key  int
				path string
			}
			var shots []shot
			for _, f := range files {
				m := name.FindStringSubmatch(f)
				if m == nil {
					t.Fatalf("sequence object named %s", f)
				}
				seq, _ := strconv.Atoi(m[1])
				ms, _ := strconv.ParseInt(m[2], 10, 64)
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				key := clip.CheckKeyframe(t, sourcetest.DecodeJPEG(t, b))
				shots = append(shots, shot{seq, time.UnixMilli(ms), key, f})
			}
			sort.Slice(shots, func(i, j int) bool { return shots[i].seq < shots[j].seq })
			gop := time.Duration(clip.GOP) * time.Second / sourcetest.FPS
			for i, s := range shots {
				if s.seq != i+1 {
					t.Fatalf("sequence numbers are not 1..%d: %v", len(shots), shots)
				}
				t.Logf("snapshot %d at %s shows keyframe %d", s.seq, s.at.Format("15:04:05.000"), s.key)
				if i == 0 {
					continue
				}
				step := float64(s.at.Sub(shots[i-1].at)) / float64(gop)
				if d := float64(s.key-shots[i-1].key) - step; d < -1.01 || d > 1.01 {
					t.Errorf("snapshots %d and %d are %v apart but show keyframes %d and %d", i, i+1,
						s.at.Sub(shots[i-1].at).Round(time.Millisecond), shots[i-1].key, s.key)
				}
			}
			if started != nil {
				// A looping live stream: keyframe k (of loop n) was live at start + (n*len + k) GOPs.
				loop := time.Duration(clip.Keyframes()) * gop
				for _, s := range shots {
					live := started().Add(time.Duration(s.key) * gop)
					for live.Add(loop / 2).Before(s.at) {
						live = live.Add(loop)
					}
					late := s.at.Sub(live)
					t.Logf("snapshot %d: stamped %v after its picture was live", s.seq, late.Round(time.Millisecond))
					if late < -500*time.Millisecond || late > 1500*time.Millisecond {
						t.Errorf("snapshot %d stamped %v after its picture was live, want within 1.5 s (not stale)", s.seq, late.Round(time.Millisecond))
					}
				}
			}

			// ListLiveSnapshotFiles lists the same objects.
			list := ice.must("ListLiveSnapshotFiles", map[string]string{
				"JobId":     jobID,
				"StartTime": submitted.Add(-time.Minute).UTC().Format("2006-01-02T15:04:05Z"),
				"EndTime":   time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05Z"),
				"Limit":     "100",
			})
			seqs := 0
			for _, it := range list["FileList"].([]any) {
				f := it.(map[string]any)
				if f["IsOverlay"] == true {
					continue
				}
				seqs++
				if _, err := os.Stat(filepath.Join(svc.Data, "objects", "testbucket", filepath.FromSlash(f["OssObject"].(string)))); err != nil {
					t.Errorf("listed object missing: %v", err)
				}
			}
			if seqs < len(shots) {
				t.Errorf("listed %d sequence records, %d files on disk", seqs, len(shots))
			}
			ice.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": jobID, "Command": "stop"})
		})
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// waitStreamLive waits until a stream of any type has video (servers may still start).
func waitStreamLive(t *testing.T, typ, url string) {
	t.Helper()
	waitFor(t, 30*time.Second, typ+" stream "+url+" live", func() bool {
		err := source.Probe(context.Background(), typ, url, 5*time.Second)
		if err != nil && !errors.Is(err, source.ErrStreamNotFound) {
			t.Fatalf("probe %s: %v", url, err)
		}
		return err == nil
	})
}
