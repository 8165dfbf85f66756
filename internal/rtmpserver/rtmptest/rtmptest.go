// Package rtmptest holds helpers for tests that need live RTMP streams: ffmpeg runs bounded by a
// context, Annex-B clips split into access units, and a small gortmplib publisher for what
// ffmpeg 5.1 cannot put in FLV (H.265 over enhanced RTMP).
package rtmptest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"

	"github.com/livesnap/livesnap/internal/testenv"
)

// FFmpeg starts ffmpeg with args under a timeout; t.Cleanup kills it (even when stopped with
// SIGSTOP) and waits for it.
func FFmpeg(t testing.TB, timeout time.Duration, args ...string) *exec.Cmd {
	t.Helper()
	testenv.NeedFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start ffmpeg: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-done
		cancel()
	})
	return cmd
}

// PublishClip publishes the sample clip live (-re, looped, stream copy) to rtmpURL.
// maps selects streams, e.g. "0:v", "0:a".
func PublishClip(t testing.TB, rtmpURL string, maps ...string) *exec.Cmd {
	t.Helper()
	args := []string{"-re", "-stream_loop", "-1", "-i", testenv.Sample(t)}
	for _, m := range maps {
		args = append(args, "-map", m)
	}
	args = append(args, "-c", "copy", "-f", "flv", rtmpURL)
	return FFmpeg(t, 90*time.Second, args...)
}

// EncodeAnnexB encodes a synthetic clip (testsrc2) with ffmpeg and returns its access units.
// codec is "h264" or "h265".
func EncodeAnnexB(t testing.TB, codec string, seconds, fps, gop int) [][][]byte {
	t.Helper()
	testenv.NeedFFmpeg(t)
	out := filepath.Join(t.TempDir(), "clip."+codec)
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi",
		"-i", fmt.Sprintf("testsrc2=size=320x240:rate=%d", fps), "-t", fmt.Sprint(seconds), "-pix_fmt", "yuv420p"}
	switch codec {
	case "h264":
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", fmt.Sprint(gop),
			"-keyint_min", fmt.Sprint(gop), "-sc_threshold", "0", "-f", "h264")
	case "h265":
		args = append(args, "-c:v", "libx265", "-preset", "ultrafast",
			"-x265-params", fmt.Sprintf("keyint=%d:min-keyint=%d:bframes=0:scenecut=0:log-level=error", gop, gop),
			"-f", "hevc")
	default:
		t.Fatalf("EncodeAnnexB: unknown codec %q", codec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", append(args, out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg encode %s: %v\n%s", codec, err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	aus := SplitAccessUnits(codec == "h265", SplitAnnexB(raw))
	if len(aus) == 0 {
		t.Fatal("no access units")
	}
	return aus
}

// SplitAnnexB splits an Annex-B byte stream at its start codes (00 00 01 / 00 00 00 01).
func SplitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	zeros := 0
	for i, c := range b {
		switch {
		case c == 0:
			zeros++
			continue
		case c == 1 && zeros >= 2:
			if start >= 0 {
				out = appendNALU(out, b[start:i-zeros])
			}
			start = i + 1
		}
		zeros = 0
	}
	if start >= 0 {
		out = appendNALU(out, b[start:])
	}
	return out
}

func appendNALU(out [][]byte, n []byte) [][]byte {
	for len(n) > 0 && n[len(n)-1] == 0 { // trailing_zero_8bits
		n = n[:len(n)-1]
	}
	if len(n) > 0 {
		out = append(out, n)
	}
	return out
}

// SplitAccessUnits groups an elementary stream's NAL units into access units: a new unit
// starts at an AUD, at a parameter set or SEI that follows a picture, or at the first slice of
// a new picture.
func SplitAccessUnits(hevc bool, nalus [][]byte) [][][]byte {
	var aus [][][]byte
	var cur [][]byte
	hasVCL := false
	for _, n := range nalus {
		if len(n) < 3 {
			continue
		}
		var typ int
		var vcl, firstSlice, startsNew bool
		if hevc {
			typ = int(n[0]>>1) & 0x3f
			vcl = typ <= 31
			firstSlice = vcl && n[2]&0x80 != 0
			startsNew = typ == 35 || ((typ == 32 || typ == 33 || typ == 34 || typ == 39) && hasVCL)
		} else {
			typ = int(n[0]) & 0x1f
			vcl = typ >= 1 && typ <= 5
			firstSlice = vcl && n[1]&0x80 != 0 // first_mb_in_slice == 0
			startsNew = typ == 9 || ((typ == 6 || typ == 7 || typ == 8) && hasVCL)
		}
		if (startsNew || (firstSlice && hasVCL)) && len(cur) > 0 {
			aus = append(aus, cur)
			cur, hasVCL = nil, false
		}
		cur = append(cur, n)
		if vcl {
			hasVCL = true
		}
	}
	if len(cur) > 0 && hasVCL {
		aus = append(aus, cur)
	}
	return aus
}

// Publisher pushes access units to an RTMP server in a loop, like a live encoder.
type Publisher struct {
	URL      string        // rtmp://host:port/app/key
	HEVC     bool          // H.265 (enhanced RTMP) instead of H.264
	AUs      [][][]byte    // first one must carry the parameter sets
	Interval time.Duration // time between units; 0 → as fast as possible
	Paused   atomic.Bool   // while set, nothing is written but the connection stays open
	Written  atomic.Int64  // units written so far
}

// Run connects and publishes until ctx ends or a write fails.
func (p *Publisher) Run(ctx context.Context) error {
	u, err := url.Parse(p.URL)
	if err != nil {
		return err
	}
	dir, key := path.Split(u.Path)
	u.Path, u.Fragment = strings.TrimSuffix(dir, "/"), key

	track, err := p.track()
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := &gortmplib.Client{URL: u, Publish: true}
	if err := c.Initialize(dctx); err != nil {
		return fmt.Errorf("publisher connect: %w", err)
	}
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	defer c.Close()

	_ = c.NetConn().SetWriteDeadline(time.Now().Add(10 * time.Second))
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{track}}
	if err := w.Initialize(); err != nil {
		return fmt.Errorf("publisher init: %w", err)
	}

	interval := p.Interval
	if interval <= 0 {
		interval = 40 * time.Millisecond // timestamps still advance at 25 fps
	}
	next := time.Now()
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			return nil
		}
		if p.Paused.Load() {
			time.Sleep(10 * time.Millisecond)
			next = time.Now()
			i--
			continue
		}
		au := p.AUs[i%len(p.AUs)]
		pts := time.Duration(i) * interval
		_ = c.NetConn().SetWriteDeadline(time.Now().Add(10 * time.Second))
		if p.HEVC {
			err = w.WriteH265(track, pts, pts, au)
		} else {
			err = w.WriteH264(track, pts, pts, au)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("publisher write: %w", err)
		}
		p.Written.Add(1)
		if p.Interval > 0 {
			next = next.Add(p.Interval)
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return nil
				}
			}
		}
	}
}

func (p *Publisher) track() (*gortmplib.Track, error) {
	if len(p.AUs) == 0 {
		return nil, errors.New("publisher: no access units")
	}
	var vps, sps, pps []byte
	for _, n := range p.AUs[0] {
		if p.HEVC {
			switch int(n[0]>>1) & 0x3f {
			case 32:
				vps = n
			case 33:
				sps = n
			case 34:
				pps = n
			}
		} else {
			switch int(n[0]) & 0x1f {
			case 7:
				sps = n
			case 8:
				pps = n
			}
		}
	}
	if sps == nil || pps == nil || (p.HEVC && vps == nil) {
		return nil, errors.New("publisher: first access unit lacks parameter sets")
	}
	if p.HEVC {
		return &gortmplib.Track{Codec: &codecs.H265{VPS: vps, SPS: sps, PPS: pps}}, nil
	}
	return &gortmplib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}}, nil
}
