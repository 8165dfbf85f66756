// Package testenv is what tests need from the machine, in one place: tools (ffmpeg), the
// sample clip, and the rule that a missing one is a skip on a developer's machine but a
// failure in CI (LIVESNAP_REQUIRE_SERVICES=1, set by .ci/run).
package testenv

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// SampleClip is the shared test clip: H.264 640x360 24 fps, keyframe every 2.67 s, AAC. It
// lives in shared/media beside the repository (LIVESNAP_SAMPLE overrides the path).
var SampleClip = func() string {
	if p := os.Getenv("LIVESNAP_SAMPLE"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "media", "big_buck_bunny_360p.mp4")
}()

// Require reports something a test needs and does not have: a failure when
// LIVESNAP_REQUIRE_SERVICES=1 (CI, where scripts/install-deps.sh installed everything), a
// skip otherwise.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("LIVESNAP_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is required (LIVESNAP_REQUIRE_SERVICES=1); scripts/install-deps.sh installs it", what)
	}
	t.Skipf("%s not available", what)
}

// NeedFFmpeg checks that ffmpeg is installed (see Require).
func NeedFFmpeg(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath("ffmpeg")
	Require(t, err == nil, "ffmpeg")
}

// Sample returns the sample clip (SampleClip). Where the shared media is not beside the
// repository (a checkout elsewhere), it returns a stand-in of the same shape made once with
// ffmpeg: a test pattern in H.264 Constrained Baseline 640x360 at 24 fps with a keyframe every
// 64 pictures, AAC 22.05 kHz stereo, fragmented MP4, cut short in its 8th GOP like the real
// clip (so its flaw, a truncated last packet, is exercised too).
func Sample(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(SampleClip); err == nil {
		return SampleClip
	}
	NeedFFmpeg(t)
	standInOnce.Do(func() { standIn, standInErr = makeStandIn() })
	if standInErr != nil {
		t.Fatalf("sample clip %s missing, and making a stand-in failed: %v", SampleClip, standInErr)
	}
	t.Logf("sample clip %s missing: using a generated stand-in", SampleClip)
	return standIn
}

var (
	standInOnce sync.Once
	standIn     string
	standInErr  error
)

func makeStandIn() (string, error) {
	out := filepath.Join(os.TempDir(), "livesnap-sample-standin-v3.mp4")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	tmp, err := os.CreateTemp(os.TempDir(), "livesnap-sample-*.mp4")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Audio first, so each fragment's video data comes last and the cut lands in a picture.
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050",
		"-map", "1:a", "-map", "0:v", "-frames:v", "500", "-t", "20.834", "-c:v", "libx264", "-profile:v", "baseline",
		"-g", "64", "-keyint_min", "64", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2",
		"-movflags", "+frag_keyframe+empty_moov", "-f", "mp4", tmp.Name())
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, b)
	}
	b, err := os.ReadFile(tmp.Name())
	if err != nil || len(b) < 10000 {
		return "", fmt.Errorf("stand-in clip: %v (%d bytes)", err, len(b))
	}
	if err := os.WriteFile(tmp.Name(), b[:len(b)-3000], 0o644); err != nil {
		return "", err
	}
	return out, os.Rename(tmp.Name(), out) // atomic: other test processes see all or nothing
}

// PSNR compares img with an RGB24 picture of the same size, over R, G and B (0 when the
// sizes differ, 99 when identical).
func PSNR(img image.Image, rgb []byte) float64 {
	b := img.Bounds()
	if len(rgb) != b.Dx()*b.Dy()*3 {
		return 0
	}
	var sum float64
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl := RGBAt(img, x, y)
			for _, d := range [3]float64{float64(r) - float64(rgb[i]), float64(g) - float64(rgb[i+1]), float64(bl) - float64(rgb[i+2])} {
				sum += d * d
			}
			i += 3
		}
	}
	mse := sum / float64(len(rgb))
	if mse == 0 {
		return 99
	}
	return 10 * math.Log10(255*255/mse)
}

// RGBAt is the pixel at x, y as 8-bit RGB (a JPEG's YCbCr converted as image/color does).
func RGBAt(img image.Image, x, y int) (r, g, b uint8) {
	if yc, ok := img.(*image.YCbCr); ok {
		yi, ci := yc.YOffset(x, y), yc.COffset(x, y)
		return color.YCbCrToRGB(yc.Y[yi], yc.Cb[ci], yc.Cr[ci])
	}
	r32, g32, b32, _ := img.At(x, y).RGBA()
	return uint8(r32 >> 8), uint8(g32 >> 8), uint8(b32 >> 8)
}
