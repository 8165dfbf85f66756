package source_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/rtmpserver/rtmptest"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/testenv"
)

// A server that passes on a truncated video packet (ffmpeg serving a file cut short, looped)
// does not end the session: the packet is skipped and the stream goes on.
func TestRTMPSkipsAnUndecodablePacket(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi",
		"-i", "testsrc2=size=160x120:rate=10", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10",
		"-pix_fmt", "yuv420p", "-movflags", "+faststart", whole).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.mp4") // moov first (faststart): this truncates the last packet
	if err := os.WriteFile(cut, b[:len(b)-200], 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	url := "rtmp://" + addr + "/live/cut"
	rtmptest.FFmpeg(t, time.Minute, "-re", "-stream_loop", "2", "-i", cut, "-c", "copy", "-f", "flv", "-listen", "1", url)

	var st source.Stream
	deadline := time.Now().Add(15 * time.Second)
	for st == nil {
		st, err = source.Open(ctx, "rtmp", url, source.Options{ConnectTimeout: 10 * time.Second, ReadTimeout: 5 * time.Second})
		if err != nil && time.Now().After(deadline) {
			t.Fatalf("open: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer st.Close()
	// Three plays of a 2 s clip at 10 fps: about 60 pictures, across two truncated packets.
	n := 0
	for {
		if _, err := st.Read(); err != nil {
			break
		}
		n++
	}
	if n < 45 {
		t.Fatalf("%d pictures: the session ended at a truncated packet", n)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
