package e2e

import (
	"context"
	"math"
	execpkg "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// idrPictures counts the pictures of a clip that the decoder sees as IDR keyframes (the
// container may flag more: MP4 marks intra-refresh recovery points as sync samples).
func idrPictures(t *testing.T, clip string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := execpkg.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=key_frame",
		"-of", "csv=p=0", clip).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(out), "1")
}

// policyJob submits a job on stream with the given interval and capture policy.
func policyJob(t *testing.T, c *iceClient, stream, interval, policy string) string {
	t.Helper()
	tpl := c.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": policy, "TimeInterval": interval,
		"SequenceFormat": "seq/{JobId}/{Sequence}.jpg", "CapturePolicy": policy})["TemplateId"].(string)
	return c.must("SubmitLiveSnapshotJob", map[string]string{"JobName": policy, "TemplateId": tpl,
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": stream}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "faults"})})["JobId"].(string)
}

// checkShots asserts that snapshots show distinct, clean pictures whose stream time moves
// like their capture time (no stale picture stored as new).
func checkShots(t *testing.T, shots []shot, min int) {
	t.Helper()
	if len(shots) < min {
		t.Fatalf("%d snapshots, want at least %d", len(shots), min)
	}
	for i := 1; i < len(shots); i++ {
		df, dt := shots[i].frame-shots[i-1].frame, shots[i].at.Sub(shots[i-1].at)
		t.Logf("snapshot %d: frame %d, %v after the previous", i, shots[i].frame, dt.Round(10*time.Millisecond))
		if df <= 0 {
			t.Fatalf("snapshot %d repeats or goes back: frames %d then %d", i, shots[i-1].frame, shots[i].frame)
		}
		if math.Abs(float64(df)/25-dt.Seconds()) > 0.4 {
			t.Fatalf("snapshot %d: %d frames (%.2f s) apart but captured %v apart", i, df, float64(df)/25, dt)
		}
	}
}

// An intra-refresh stream has one IDR at its very start and then only recovery points: both
// policies still give a clean picture per tick (frameNumber refuses a half-refreshed one).
func TestIntraRefreshStream(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	clip := counterClipWith(t, 120, 50, "-x264-params", "intra-refresh=1")
	if n := idrPictures(t, clip); n != 1 {
		t.Fatalf("the intra-refresh clip has %d IDR pictures, want 1", n)
	}
	relay := startRelay(t)
	stream := "rtmp://" + relay + "/live/refresh"
	publishFile(t, clip, stream)
	svc := startService(t, "--min-interval", "1")
	c := svc.client(t, modeV3)
	waitLive(t, stream)
	keyJob := policyJob(t, c, stream, "4", "keyframe")
	exactJob := policyJob(t, c, stream, "3", "exact")
	time.Sleep(18 * time.Second)
	for _, job := range []string{keyJob, exactJob} {
		c.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "stop"})
	}
	dir := filepath.Join(svc.Data, "objects", "faults")
	t.Run("keyframe", func(t *testing.T) { checkShots(t, snapshotsOf(t, c, keyJob, dir), 4) })
	t.Run("exact", func(t *testing.T) { checkShots(t, snapshotsOf(t, c, exactJob, dir), 5) })
}

// Packets lost on the way (every 7th predicted picture dropped) break the reference chains of
// most pictures: livesnap stores none of those. Ticks take the next clean picture instead, so
// snapshots keep coming, each one clean and current.
func TestPacketLossStoresNoBrokenPicture(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	clip := counterClip(t, 120, 50)
	relay := startRelay(t)
	stream := "rtmp://" + relay + "/live/lossy"
	publishFile(t, clip, stream, "-bsf:v", `noise=drop=not(key)*not(mod(n\,7))`)
	svc := startService(t, "--min-interval", "1")
	c := svc.client(t, modeV3)
	waitLive(t, stream)
	job := policyJob(t, c, stream, "3", "exact")
	time.Sleep(20 * time.Second)
	got := c.must("GetLiveSnapshotJob", map[string]string{"JobId": job})
	c.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "stop"})

	shots := snapshotsOf(t, c, job, filepath.Join(svc.Data, "objects", "faults"))
	checkShots(t, shots, 4)
	// Exact pictures at 3 s from 2 s GOPs with a loss every 7 pictures: only a picture within
	// 7 of its keyframe decodes cleanly, so most ticks must have been served by a keyframe
	// after a retry, and none by a broken chain.
	keyframes := 0
	for _, s := range shots {
		if s.frame%50 == 0 {
			keyframes++
		}
	}
	if keyframes < len(shots)/2 {
		t.Fatalf("only %d of %d snapshots are keyframes: damaged chains were not refused", keyframes, len(shots))
	}
	t.Logf("%d snapshots, %d keyframes; runtime %v", len(shots), keyframes, got)
}
