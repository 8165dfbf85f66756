// Package sourcetest holds what tests of stream inputs need: generated clips whose frames are
// known (ffmpeg's testsrc: a seconds counter and a scrolling gradient, so every keyframe
// looks different), a way to tell which keyframe a picture shows (PSNR), and live servers
// for each protocol on loopback: HTTP-FLV and SRT (ffmpeg, restarted after each client), HLS
// (ffmpeg's hls muxer behind a Go HTTP server) and RTSP (gst-rtsp-server).
//
// External tools are required when LIVESNAP_REQUIRE_SERVICES=1 (CI); otherwise a test
// without them is skipped.
package sourcetest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/testenv"
)

// FPS is the frame rate of every clip.
const FPS = 25

// Spec describes a clip.
type Spec struct {
	Name    string // cache key (and file name)
	Codec   string // "h264", "h265" or "av1"; "" for audio only
	PixFmt  string // "" → yuv420p
	W, H    int    // 0 → 320x240
	Seconds int    // 0 → 60
	GOP     int    // frames between keyframes; 0 → 50 (2 s)
	Audio   bool   // an AAC track too
}

// Common clips.
var (
	H264       = Spec{Name: "h264", Codec: "h264", Audio: true}
	H265       = Spec{Name: "h265", Codec: "h265", Seconds: 40, Audio: true}
	H265Main10 = Spec{Name: "h265-10bit", Codec: "h265", PixFmt: "yuv420p10le", Seconds: 20}
	AV1        = Spec{Name: "av1", Codec: "av1", Seconds: 20}
	AudioOnly  = Spec{Name: "audio", Seconds: 40, Audio: true}
)

// Clip is a generated Matroska clip.
type Clip struct {
	Spec
	Path string

	keysOnce sync.Once
	keys     [][]byte // RGB24 of keyframe i (frame i*GOP), presentation order
	keysErr  error
}

var (
	dirOnce sync.Once
	dir     string
	clipsMu sync.Mutex
	clips   = map[string]*clipOnce{}
)

type clipOnce struct {
	once sync.Once
	c    *Clip
	err  error
}

// Cleanup removes the generated clips; call it from TestMain after m.Run.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// Require reports a missing tool (see testenv.Require).
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	testenv.Require(t, ok, what)
}

// NeedFFmpeg checks for ffmpeg and ffprobe.
func NeedFFmpeg(t testing.TB) {
	t.Helper()
	_, e1 := exec.LookPath("ffmpeg")
	_, e2 := exec.LookPath("ffprobe")
	Require(t, e1 == nil && e2 == nil, "ffmpeg")
}

// Make generates the clip once per test binary (concurrent callers wait for it).
func Make(t testing.TB, s Spec) *Clip {
	t.Helper()
	NeedFFmpeg(t)
	s = s.withDefaults()
	clipsMu.Lock()
	o := clips[s.Name]
	if o == nil {
		o = &clipOnce{}
		clips[s.Name] = o
	}
	clipsMu.Unlock()
	o.once.Do(func() { o.c, o.err = makeClip(s) })
	if o.err != nil {
		t.Fatalf("generate clip %s: %v", s.Name, o.err)
	}
	return o.c
}

func (s Spec) withDefaults() Spec {
	if s.PixFmt == "" {
		s.PixFmt = "yuv420p"
	}
	if s.W == 0 {
		s.W, s.H = 320, 240
	}
	if s.Seconds == 0 {
		s.Seconds = 60
	}
	if s.GOP == 0 {
		s.GOP = 2 * FPS
	}
	return s
}

func makeClip(s Spec) (*Clip, error) {
	dirOnce.Do(func() { dir, _ = os.MkdirTemp("", "livesnap-sourcetest-") })
	if dir == "" {
		return nil, fmt.Errorf("no temp dir")
	}
	path := filepath.Join(dir, s.Name+".mkv")
	var args []string
	if s.Codec != "" {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%dx%d:rate=%d", s.W, s.H, FPS))
	}
	if s.Audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	args = append(args, "-t", strconv.Itoa(s.Seconds))
	gop := fmt.Sprintf("keyint=%d:min-keyint=%d:scenecut=0", s.GOP, s.GOP)
	switch s.Codec {
	case "h264":
		args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-x264-params", gop)
	case "h265":
		args = append(args, "-c:v", "libx265", "-preset", "veryfast", "-bf", "2", "-x265-params", gop+":log-level=error")
	case "av1":
		args = append(args, "-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", fmt.Sprintf("keyint=%d:scd=0", s.GOP))
	case "":
	default:
		return nil, fmt.Errorf("codec %q", s.Codec)
	}
	if s.Codec != "" {
		args = append(args, "-pix_fmt", s.PixFmt)
	}
	if s.Audio {
		args = append(args, "-c:a", "aac", "-b:a", "64k")
	}
	if err := runFFmpeg(3*time.Minute, append(args, "-f", "matroska", path)...); err != nil {
		return nil, err
	}
	return &Clip{Spec: s, Path: path}, nil
}

// runFFmpeg runs ffmpeg to completion under a timeout (some encoder/muxer combinations hang).
func runFFmpeg(timeout time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, tail(stderr.String(), 1500))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Keyframes returns how many keyframes the clip has.
func (c *Clip) Keyframes() int { return c.Seconds * FPS / c.GOP }

// Keyframe returns ffmpeg's own decode of keyframe i (frame i*GOP) as RGB24.
func (c *Clip) Keyframe(t testing.TB, i int) []byte {
	t.Helper()
	c.loadKeys()
	if c.keysErr != nil {
		t.Fatal(c.keysErr)
	}
	if i < 0 || i >= len(c.keys) {
		t.Fatalf("keyframe %d of %d", i, len(c.keys))
	}
	return c.keys[i]
}

func (c *Clip) loadKeys() {
	c.keysOnce.Do(func() {
		raw := c.Path + ".keys.rgb"
		err := runFFmpeg(2*time.Minute, "-i", c.Path, "-map", "0:v", "-vf", "select=eq(pict_type\\,I)",
			"-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", raw)
		if err != nil {
			c.keysErr = err
			return
		}
		all, err := os.ReadFile(raw)
		if err != nil {
			c.keysErr = err
			return
		}
		fs := c.W * c.H * 3
		if len(all) != fs*c.Keyframes() {
			c.keysErr = fmt.Errorf("%s: %d bytes of keyframes, want %d keyframes of %d", c.Name, len(all), c.Keyframes(), fs)
			return
		}
		for i := range c.Keyframes() {
			c.keys = append(c.keys, all[i*fs:(i+1)*fs])
		}
	})
}

// Identify tells which keyframe img shows: the index of the best match and its PSNR, and
// the PSNR of the second best (a clear match is far above it).
func (c *Clip) Identify(t testing.TB, img image.Image) (key int, best, second float64) {
	t.Helper()
	if b := img.Bounds(); b.Dx() != c.W || b.Dy() != c.H {
		t.Fatalf("picture is %dx%d, clip is %dx%d", b.Dx(), b.Dy(), c.W, c.H)
	}
	key, best, second = -1, -1, -1
	for i := range c.Keyframes() {
		v := PSNR(img, c.Keyframe(t, i))
		switch {
		case v > best:
			second, best, key = best, v, i
		case v > second:
			second = v
		}
	}
	return key, best, second
}

// CheckKeyframe fails unless img clearly shows one keyframe of the clip (PSNR >= 30 dB and
// at least 6 dB above any other keyframe) and returns its index.
func (c *Clip) CheckKeyframe(t testing.TB, img image.Image) int {
	t.Helper()
	k, best, second := c.Identify(t, img)
	if best < 30 || best < second+6 {
		t.Fatalf("picture matches no keyframe of %s clearly: best %d at %.1f dB, next %.1f dB", c.Name, k, best, second)
	}
	return k
}

// DecodeJPEG decodes a JPEG.
func DecodeJPEG(t testing.TB, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a JPEG: %v", err)
	}
	return img
}

// PSNR compares img with an RGB24 picture of the same size (see testenv.PSNR).
func PSNR(img image.Image, rgb []byte) float64 { return testenv.PSNR(img, rgb) }
