// Package bench measures livesnap against the usual recipe, one ffmpeg process per stream,
// on the same live streams: CPU per stream-hour, memory per stream, snapshots delivered on
// time, and the largest number of streams each side sustains. See docs/benchmarks.md.
package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Variant is one kind of test content, transcoded once from the sample clip and cached.
type Variant struct {
	Name string
	Desc string
	// FFmpeg is the output options of the transcode (input and container are added).
	FFmpeg []string
	// Baseline is false when ffmpeg 5.1 cannot play the variant over RTMP (H.265 needs
	// enhanced RTMP, which ffmpeg reads from 6.1 on).
	Baseline bool
}

// frag is the container every variant is cached in: fragmented MP4, one fragment per GOP.
var frag = []string{"-an", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"}

// Variants are the test contents. The sample clip's readable part is 19.25 s, so the
// transcodes take 18 s: nine whole 2 s GOPs at 25 fps.
var Variants = map[string]Variant{
	"1080p": {Name: "1080p", Desc: "H.264 1920x1080 25 fps ~4 Mbit/s, keyframe every 2 s", Baseline: true,
		FFmpeg: []string{"-t", "18", "-vf", "scale=1920:1080:flags=bicubic,fps=25", "-c:v", "libx264", "-preset", "veryfast",
			"-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
			"-pix_fmt", "yuv420p"}},
	"720p": {Name: "720p", Desc: "H.264 1280x720 25 fps ~2.5 Mbit/s, keyframe every 2 s", Baseline: true,
		FFmpeg: []string{"-t", "18", "-vf", "scale=1280:720:flags=bicubic,fps=25", "-c:v", "libx264", "-preset", "veryfast",
			"-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "5M", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
			"-pix_fmt", "yuv420p"}},
	"1080p-h265": {Name: "1080p-h265", Desc: "H.265 1920x1080 25 fps ~2.5 Mbit/s, keyframe every 2 s (enhanced RTMP)",
		FFmpeg: []string{"-t", "18", "-vf", "scale=1920:1080:flags=bicubic,fps=25", "-c:v", "libx265", "-preset", "superfast",
			"-b:v", "2500k", "-tag:v", "hvc1", "-pix_fmt", "yuv420p",
			"-x265-params", "keyint=50:min-keyint=50:scenecut=0:open-gop=0:vbv-maxrate=2500:vbv-bufsize=5000:log-level=error"}},
	"source": {Name: "source", Desc: "the sample clip as it is: H.264 640x360 24 fps, keyframe every 2.67 s (for the smoke test)",
		Baseline: true, FFmpeg: []string{"-map", "0:v:0", "-c:v", "copy"}},
}

// VariantNames lists the variants in a stable order.
func VariantNames() []string {
	var out []string
	for n := range Variants {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Prepare returns the cached file of the variant, transcoding the sample clip into cacheDir
// first when it is missing. The cache key covers the options and the sample's size and
// modification time, so a change re-encodes.
func Prepare(ctx context.Context, cacheDir, sample string, v Variant, progress func(string)) (string, error) {
	st, err := os.Stat(sample)
	if err != nil {
		return "", fmt.Errorf("sample clip: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00", strings.Join(append(append([]string{}, v.FFmpeg...), frag...), "\x00"), st.Size(), st.ModTime().UnixNano())
	path := filepath.Join(cacheDir, v.Name+"-"+hex.EncodeToString(h.Sum(nil))[:12]+".mp4")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	if progress != nil {
		progress(fmt.Sprintf("transcoding the sample clip to %s (%s), once, into %s", v.Name, v.Desc, cacheDir))
	}
	tmp := path + ".tmp"
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", sample}, v.FFmpeg...)
	args = append(append(args, frag...), tmp)
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("transcode %s: %v\n%s", v.Name, err, out)
	}
	return path, os.Rename(tmp, path)
}
