package replay

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/media"
	"github.com/livesnap/livesnap/internal/rtmpserver/rtmptest"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/testenv"
)

// encodeClip makes a small fragmented MP4 clip with ffmpeg from the given arguments.
func encodeClip(t *testing.T, args ...string) string {
	t.Helper()
	testenv.NeedFFmpeg(t)
	out := filepath.Join(t.TempDir(), "clip.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, args...)
	full = append(full, "-an", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", out)
	if b, err := exec.CommandContext(ctx, "ffmpeg", full...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// testsrcClip is 2 s of 320x240 at 25 fps, a keyframe every second, with B-frames (H.264)
// or without (H.265).
func testsrcClip(t *testing.T, codec string) string {
	in := []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "2", "-pix_fmt", "yuv420p"}
	if codec == "h265" {
		return encodeClip(t, append(in, "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1",
			"-x265-params", "keyint=25:min-keyint=25:scenecut=0:open-gop=0:log-level=error")...)
	}
	return encodeClip(t, append(in, "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "25",
		"-keyint_min", "25", "-sc_threshold", "0")...)
}

func TestLoadClipKeepsTimingAndKeyframesOfTheSampleClip(t *testing.T) {
	c, err := LoadClip(encodeClip(t, "-i", testenv.Sample(t), "-map", "0:v:0", "-c:v", "copy"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Codec != media.CodecH264 || len(c.SPS) == 0 || len(c.PPS) == 0 {
		t.Fatalf("codec %v, SPS %d bytes, PPS %d bytes", c.Codec, len(c.SPS), len(c.PPS))
	}
	// The clip: 24 fps, a keyframe every 64 frames; the file is cut short in its 8th GOP (a
	// damaged sample), so the loop is the 7 whole GOPs before it.
	if len(c.Samples) != 448 || len(c.Keyframes()) != 7 {
		t.Fatalf("%d samples, %d keyframes; want 448 and 7", len(c.Samples), len(c.Keyframes()))
	}
	// Within 50 ms: the muxer of the generated stand-in (testenv.Sample) stretches the last
	// picture before a fragment a little; the real clip is exact.
	if want := 448 * time.Second / 24; c.Duration < want-50*time.Millisecond || c.Duration > want+50*time.Millisecond {
		t.Fatalf("duration %v, want %v", c.Duration, want)
	}
	if g := c.GOP(); g < 2617*time.Millisecond || g > 2717*time.Millisecond {
		t.Fatalf("GOP %v, want 2.667 s", g)
	}
	for i := 1; i < len(c.Samples); i++ {
		if c.Samples[i].DTS <= c.Samples[i-1].DTS {
			t.Fatalf("sample %d: DTS %v after %v", i, c.Samples[i].DTS, c.Samples[i-1].DTS)
		}
	}
	u, err := c.AccessUnit(0)
	if err != nil || !u.Keyframe || len(u.NALUs) < 3 || u.NALUs[0][0]&0x1f != 7 {
		t.Fatalf("first unit: key %v, %d NAL units, err %v; want SPS first", u.Keyframe, len(u.NALUs), err)
	}
}

func TestLoadClipRefusesWhatIsNotAFragmentedMP4(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("this is not an mp4 file at all"),
		"truncated": {0, 0, 0x10, 0, 'f', 't', 'y', 'p', 0, 0},
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, content, 0o600)
		if _, err := LoadClip(p); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// readUnits plays url with livesnap's own RTMP source for d and returns the units.
func readUnits(t *testing.T, url string, d time.Duration) []media.AccessUnit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := source.Open(ctx, "rtmp", url, source.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	defer st.Close()
	var out []media.AccessUnit
	for end := time.Now().Add(d); time.Now().Before(end); {
		u, err := st.Read()
		if err != nil {
			t.Fatalf("read %s: %v", url, err)
		}
		out = append(out, u)
	}
	return out
}

func startServer(t *testing.T, clip string, streams int) *Server {
	t.Helper()
	c, err := LoadClip(clip)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: "127.0.0.1:0", Clip: c, Streams: streams}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStreamsStartAtAKeyframeAndLoopWithIncreasingTimestamps(t *testing.T) {
	for _, codec := range []string{"h264", "h265"} {
		t.Run(codec, func(t *testing.T) {
			s := startServer(t, testsrcClip(t, codec), 3)
			// 3 s of a 2 s loop: at least one loop boundary.
			units := readUnits(t, s.URL(2), 3*time.Second)
			if len(units) < 25 {
				t.Fatalf("%d units in 3 s, want a second's worth at least", len(units))
			}
			if !units[0].Keyframe {
				t.Fatal("first unit is not a keyframe")
			}
			want := map[string]media.Codec{"h264": media.CodecH264, "h265": media.CodecH265}[codec]
			keys := 0
			for i, u := range units {
				if u.Codec != want {
					t.Fatalf("unit %d: codec %v", i, u.Codec)
				}
				if i > 0 && u.DTS <= units[i-1].DTS {
					t.Fatalf("unit %d: DTS %v after %v", i, u.DTS, units[i-1].DTS)
				}
				if u.Keyframe {
					keys++
				}
			}
			if span := units[len(units)-1].DTS - units[0].DTS; span < 2*time.Second {
				t.Fatalf("timestamps span %v, want past the 2 s loop", span)
			}
			if keys < 2 {
				t.Fatalf("%d keyframes", keys)
			}
		})
	}
}

func TestUnknownStreamsAndPublishersAreRefused(t *testing.T) {
	s := startServer(t, testsrcClip(t, "h264"), 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, path := range []string{"/live/s2", "/live/s-1", "/live/s01", "/other/s0", "/live/x"} {
		_, err := source.Open(ctx, "rtmp", "rtmp://"+s.ListenAddr()+path, source.Options{ConnectTimeout: 5 * time.Second})
		if !errors.Is(err, source.ErrStreamNotFound) {
			t.Errorf("%s: %v, want stream not found", path, err)
		}
	}
	aus := rtmptest.EncodeAnnexB(t, "h264", 1, 25, 25)
	p := &rtmptest.Publisher{URL: "rtmp://" + s.ListenAddr() + "/live/s0", AUs: aus}
	if err := p.Run(ctx); err == nil {
		t.Error("publishing was accepted")
	}
}

// (ffmpeg 5.1 cannot play H.265 over enhanced RTMP; livesnap's source reads it above.)
func TestFFmpegDecodesTheReplayedStream(t *testing.T) {
	for _, codec := range []string{"h264"} {
		t.Run(codec, func(t *testing.T) {
			s := startServer(t, testsrcClip(t, codec), 1)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-xerror",
				"-i", s.URL(0), "-frames:v", "30", "-f", "null", "-")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, b)
			}
		})
	}
}
