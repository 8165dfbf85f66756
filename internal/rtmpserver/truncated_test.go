package rtmpserver_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/rtmpserver"
	"github.com/livesnap/livesnap/internal/testenv"
)

// The README publishes the sample clip in a loop with `-c copy`; its last video packet is
// truncated, as in any MP4 cut short. The relay drops such a packet and keeps the publisher
// (it used to end the session, so the README's stream died after one loop). Here a 3 s clip
// cut short plays twice.
func TestTruncatedPacketKeepsPublisher(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.mp4")
	run(t, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
		"-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", "-movflags", "+faststart", whole)
	b, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.mp4") // moov first (faststart), so this truncates the last packet
	if err := os.WriteFile(cut, b[:len(b)-200], 0o644); err != nil {
		t.Fatal(err)
	}

	srv := start(t, &rtmpserver.Server{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "1",
		"-i", cut, "-map", "0:v", "-c", "copy", "-f", "flv", "rtmp://"+srv.ListenAddr()+"/live/cut")
	out, err := pub.CombinedOutput()
	if err != nil {
		t.Fatalf("the relay dropped the publisher at the truncated packet: %v\n%s", err, out)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}
