package source_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/media"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/source/sourcetest"
)

// openFFmpegRTMP opens a clip served by ffmpeg as an RTMP server, on the direct read path.
func openFFmpegRTMP(t *testing.T, c *sourcetest.Clip) source.Stream {
	t.Helper()
	srv := sourcetest.RTMPServer(t, c)
	srv.WaitReady(t)
	st := open(t, context.Background(), srv.URL, source.Options{})
	if !source.ReadsDirectly(st) {
		t.Fatal("the stream is not on the direct read path")
	}
	return st
}

// An RTMP server other than gortmplib's (ffmpeg: 4096-byte chunks, audio between the video
// chunks) read on the direct path.
func TestRTMPDirectFromFFmpegServer(t *testing.T) {
	t.Parallel()
	c := sourcetest.Make(t, sourcetest.H264) // with B-pictures: PTS is not in decoding order
	st := openFFmpegRTMP(t, c)
	keys := 0
	var lastDTS time.Duration
	for n := 0; keys < 3; n++ {
		au, err := st.Read()
		if err != nil {
			t.Fatalf("read after %d units: %v", n, err)
		}
		if au.Codec != media.CodecH264 || au.Received.IsZero() || len(au.NALUs) == 0 || au.Skipped {
			t.Fatalf("bad unit %d: codec %v received %v nalus %d skipped %v", n, au.Codec, au.Received, len(au.NALUs), au.Skipped)
		}
		if n > 0 && au.DTS <= lastDTS {
			t.Fatalf("unit %d: DTS %v not after %v", n, au.DTS, lastDTS)
		}
		if au.PTS < au.DTS {
			t.Fatalf("unit %d: PTS %v before DTS %v", n, au.PTS, au.DTS)
		}
		lastDTS = au.DTS
		if au.Keyframe {
			if !hasTypes(media.CodecH264, au, 7, 8, 5) {
				t.Fatalf("keyframe %d lacks SPS/PPS/IDR", keys)
			}
			c.CheckKeyframe(t, sourcetest.DecodeKeyframe(t, au))
			keys++
		}
	}
}

// With keyframes only, keyframes come whole and decode to the right picture; the pictures
// between them come as timing only; switched off, they come whole again at once.
func TestRTMPKeyframesOnly(t *testing.T) {
	t.Parallel()
	c := sourcetest.Make(t, sourcetest.H264)
	st := openFFmpegRTMP(t, c)
	ko, ok := st.(source.KeyframesOnly)
	if !ok {
		t.Fatal("an RTMP stream does not implement KeyframesOnly")
	}
	ko.SetKeyframesOnly(true)
	keys, skipped := 0, 0
	var lastDTS time.Duration
	for n := 0; keys < 3; n++ {
		au, err := st.Read()
		if err != nil {
			t.Fatalf("read after %d units: %v", n, err)
		}
		if n > 0 && au.DTS <= lastDTS {
			t.Fatalf("unit %d: DTS %v not after %v", n, au.DTS, lastDTS)
		}
		lastDTS = au.DTS
		switch {
		case au.Keyframe:
			if au.Skipped || !hasTypes(media.CodecH264, au, 7, 8, 5) {
				t.Fatalf("keyframe %d: skipped %v, %d NAL units", keys, au.Skipped, len(au.NALUs))
			}
			c.CheckKeyframe(t, sourcetest.DecodeKeyframe(t, au))
			keys++
		case skipped == 0 && !au.Skipped:
			// Units of track discovery, which gortmplib's reader replays, come whole.
		case !au.Skipped || len(au.NALUs) != 0 || au.Received.IsZero():
			t.Fatalf("unit %d: skipped %v, %d NAL units, received %v; want timing only", n, au.Skipped, len(au.NALUs), au.Received)
		default:
			skipped++
		}
	}
	if skipped < sourcetest.FPS {
		t.Errorf("%d pictures skipped in 3 GOPs of 2 s, want >= %d", skipped, sourcetest.FPS)
	}

	ko.SetKeyframesOnly(false)
	for n := 0; n < 30; n++ {
		au, err := st.Read()
		if err != nil {
			t.Fatal(err)
		}
		if au.Skipped || len(au.NALUs) == 0 {
			t.Fatalf("unit %d after keyframes only was switched off: skipped %v, %d NAL units", n, au.Skipped, len(au.NALUs))
		}
	}
}

// An intra-refresh stream's recovery points (P pictures with a recovery point SEI, its only
// entry points) come whole with keyframes only.
func TestRTMPKeyframesOnlyKeepsRecoveryPoints(t *testing.T) {
	t.Parallel()
	sourcetest.NeedFFmpeg(t)
	path := filepath.Join(t.TempDir(), "intra-refresh.mkv")
	ff := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-x264-params", "keyint=50:intra-refresh=1",
		"-pix_fmt", "yuv420p", path)
	if out, err := ff.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	st := openFFmpegRTMP(t, &sourcetest.Clip{Path: path})
	st.(source.KeyframesOnly).SetKeyframesOnly(true)
	recoveries, skipped := 0, 0
	for n := 0; recoveries < 3; n++ {
		if n > 400 {
			t.Fatalf("%d recovery points in %d units", recoveries, n)
		}
		au, err := st.Read()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case au.Keyframe && au.RecoveryFrames > 0:
			if au.Skipped || len(au.NALUs) == 0 {
				t.Fatalf("recovery point %d came without its data", recoveries)
			}
			recoveries++
		case au.Skipped:
			skipped++
		}
	}
	if skipped == 0 {
		t.Error("no picture was skipped")
	}
}
