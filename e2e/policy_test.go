package e2e

import (
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	execpkg "os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// counterClip makes an H.264 clip whose every frame shows its own frame number N: four
// vertical stripes hold N's base-8 digits as grey levels (Y = 16 + 28*digit), so a snapshot
// tells which moment of the stream it shows.
func counterClip(t *testing.T, seconds, gop int) string {
	t.Helper()
	return counterClipWith(t, seconds, gop)
}

// counterClipWith is counterClip with more libx264 options (e.g. -x264-params).
func counterClipWith(t *testing.T, seconds, gop int, x264 ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), fmt.Sprintf("counter-g%d.mp4", gop))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := fmt.Sprintf("color=c=black:s=320x180:r=25:d=%d,geq=lum='16+28*mod(floor(N/pow(8\\,floor(X*4/W)))\\,8)':cb=128:cr=128", seconds)
	args := []string{"-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", src, "-c:v", "libx264",
		"-g", fmt.Sprint(gop), "-keyint_min", fmt.Sprint(gop), "-sc_threshold", "0", "-bf", "0", "-crf", "12", "-pix_fmt", "yuv420p"}
	args = append(append(args, x264...), out)
	cmd := execpkg.CommandContext(ctx, "ffmpeg", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("making the counter clip: %v\n%s", err, b)
	}
	return out
}

// frameNumber reads the frame number a counter-clip snapshot shows.
func frameNumber(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	n, weight := 0, 1
	for i := 0; i < 4; i++ {
		cx, cy := b.Min.X+(2*i+1)*b.Dx()/8, b.Min.Y+b.Dy()/2
		sum, count := 0.0, 0.0
		for y := cy - 4; y <= cy+4; y++ {
			for x := cx - 4; x <= cx+4; x++ {
				sum += luma(img, x, y)
				count++
			}
		}
		full := sum / count
		limited := full*219/255 + 16 // the JPEG is full range; the levels were drawn limited
		digit := int(math.Round((limited - 16) / 28))
		if digit < 0 || digit > 7 || math.Abs(limited-16-28*float64(digit)) > 8 {
			t.Fatalf("%s: stripe %d has luma %.1f, not a counter level: a smeared or wrong-colour picture", path, i, limited)
		}
		n += digit * weight
		weight *= 8
	}
	return n
}

func luma(img image.Image, x, y int) float64 {
	if yc, ok := img.(*image.YCbCr); ok {
		return float64(yc.Y[yc.YOffset(x, y)])
	}
	r, g, b, _ := img.At(x, y).RGBA()
	return (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)) / 257
}

type shot struct {
	frame int
	at    time.Time
}

// snapshotsOf decodes every sequence snapshot of a job, in sequence order.
func snapshotsOf(t *testing.T, c *iceClient, job string, dir string) []shot {
	t.Helper()
	now := time.Now().UTC()
	list := c.must("ListLiveSnapshotFiles", map[string]string{"JobId": job, "Limit": "100",
		"StartTime": now.Add(-time.Hour).Format(time.RFC3339), "EndTime": now.Add(time.Minute).Format(time.RFC3339)})["FileList"].([]any)
	var out []shot
	for _, it := range list {
		f := it.(map[string]any)
		if f["IsOverlay"] == true {
			continue
		}
		out = append(out, shot{frame: frameNumber(t, filepath.Join(dir, filepath.FromSlash(f["OssObject"].(string)))),
			at: time.UnixMilli(int64(f["CreateTimestamp"].(float64)))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// A 10 s GOP with a 5 s interval under the keyframe policy still yields one distinct
// picture per tick: the keyframe when one comes before the next tick, else the picture at the
// tick, decoded forward from the last keyframe.
func TestLongGOPKeyframePolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	clip := counterClip(t, 90, 250)
	relay := startRelay(t)
	stream := "rtmp://" + relay + "/live/longgop"
	publishFile(t, clip, stream)
	svc := startService(t)
	c := svc.client(t, modeV3)
	waitLive(t, stream)
	job := submitJob(t, c, "5", stream)
	time.Sleep(33 * time.Second)
	c.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "stop"})

	shots := snapshotsOf(t, c, job, filepath.Join(svc.Data, "objects", "faults"))
	if len(shots) < 5 {
		t.Fatalf("%d snapshots in 33 s at 5 s with a 10 s GOP", len(shots))
	}
	for i := 1; i < len(shots); i++ {
		df := shots[i].frame - shots[i-1].frame
		dt := shots[i].at.Sub(shots[i-1].at)
		t.Logf("snapshot %d: frame %d, %v after the previous", i, shots[i].frame, dt.Round(10*time.Millisecond))
		if df <= 0 {
			t.Fatalf("snapshot %d repeats or goes back: frames %d then %d", i, shots[i-1].frame, shots[i].frame)
		}
		// The picture's stream time advances like its capture time (within 0.4 s).
		if math.Abs(float64(df)/25-dt.Seconds()) > 0.4 {
			t.Fatalf("snapshot %d: %d frames (%.2f s) apart but captured %v apart", i, df, float64(df)/25, dt)
		}
		// Snapshot i serves tick i: the first keyframe at or after it, or (the GOP being
		// longer than the interval) the picture at the tick itself.
		if since := shots[i].at.Sub(shots[0].at); since <= time.Duration(i-1)*5*time.Second || since >= time.Duration(i+1)*5*time.Second {
			t.Fatalf("snapshot %d came %v after the first, want between %d s and %d s", i, since, 5*(i-1), 5*(i+1))
		}
	}
}

// The exact policy decodes forward from the last keyframe to the picture at the tick.
func TestExactPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	clip := counterClip(t, 60, 100)
	relay := startRelay(t)
	stream := "rtmp://" + relay + "/live/exact"
	publishFile(t, clip, stream)
	svc := startService(t, "--min-interval", "1")
	c := svc.client(t, modeV3)
	tpl := c.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "exact", "TimeInterval": "3",
		"SequenceFormat": "seq/{JobId}/{Sequence}.jpg", "CapturePolicy": "exact"})["TemplateId"].(string)
	waitLive(t, stream)
	job := c.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "exact", "TemplateId": tpl,
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": stream}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "faults"})})["JobId"].(string)
	time.Sleep(16 * time.Second)
	c.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "stop"})

	shots := snapshotsOf(t, c, job, filepath.Join(svc.Data, "objects", "faults"))
	if len(shots) < 4 {
		t.Fatalf("%d snapshots in 16 s at 3 s", len(shots))
	}
	keyframes := 0
	for i, s := range shots {
		if s.frame%100 == 0 {
			keyframes++
		}
		if i == 0 {
			continue
		}
		df, dt := s.frame-shots[i-1].frame, s.at.Sub(shots[i-1].at)
		t.Logf("snapshot %d: frame %d, %v after the previous", i, s.frame, dt.Round(10*time.Millisecond))
		if math.Abs(dt.Seconds()-3) > 0.3 || math.Abs(float64(df)/25-3) > 0.3 {
			t.Fatalf("snapshot %d: %d frames and %v after the previous, want 75 frames and 3 s", i, df, dt)
		}
	}
	if keyframes == len(shots) {
		t.Fatal("every snapshot is a keyframe: exact decoding was not exercised")
	}
}

// publishFile publishes a video-only clip in a loop, in real time, without re-encoding;
// opts go before the output (e.g. a bitstream filter).
func publishFile(t *testing.T, clip, url string, opts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	args := append([]string{"-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip, "-c", "copy"}, opts...)
	cmd := execpkg.CommandContext(ctx, "ffmpeg", append(args, "-f", "flv", url)...)
	cmd.Stderr = &testLog{t: t, prefix: "ffmpeg: "}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
}
