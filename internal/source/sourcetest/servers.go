package sourcetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Server is a live stream server run by a test. Processes that serve one client and exit
// (ffmpeg -listen, SRT listener mode) are restarted, so every connection gets the clip from
// its first frame; the others run until the test ends or Kill.
type Server struct {
	URL string

	t      testing.TB
	name   string
	args   []string
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	respawn bool
	tcpPort int // a one-client TCP server: WaitReady watches its listening socket

	mu     sync.Mutex
	cur    *exec.Cmd
	starts []time.Time
}

// maxSpawns bounds restarts (a server that fails at once would otherwise spin).
const maxSpawns = 200

// startServer runs name with args until the test ends, restarting it after it exits when
// respawn is set.
func startServer(t testing.TB, respawn bool, name string, args []string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	s := &Server{t: t, name: name, args: args, ctx: ctx, cancel: cancel, done: make(chan struct{}), respawn: respawn}
	started := make(chan struct{})
	go s.loop(started)
	<-started
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) loop(started chan struct{}) {
	defer close(s.done)
	first := true
	for i := 0; i < maxSpawns && s.ctx.Err() == nil; i++ {
		cmd := exec.CommandContext(s.ctx, s.name, s.args...)
		cmd.Stderr = &logWriter{t: s.t, prefix: s.name + ": "}
		cmd.Cancel = func() error {
			_ = cmd.Process.Signal(syscall.SIGCONT)
			return cmd.Process.Kill()
		}
		err := cmd.Start()
		s.mu.Lock()
		if err == nil {
			s.cur = cmd
			s.starts = append(s.starts, time.Now())
		}
		s.mu.Unlock()
		if first {
			close(started)
			first = false
		}
		if err != nil {
			s.t.Logf("start %s: %v", s.name, err)
			return
		}
		_ = cmd.Wait()
		if !s.respawn {
			return
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Signal sends sig to the running process (SIGSTOP makes a stalled server: connections stay
// open, nothing is sent).
func (s *Server) Signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && s.cur.Process != nil {
		_ = s.cur.Process.Signal(sig)
	}
}

// Kill stops the server for good (its connections close); idempotent.
func (s *Server) Kill() {
	s.cancel()
	<-s.done
}

// Starts returns when each process started (the stream's first frame goes out when a
// client connects, shortly after).
func (s *Server) Starts() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.starts...)
}

// WaitReady waits until a one-client TCP server (FLVServer) listens again after its previous
// client, without connecting (a connection would be its one client). Other servers are
// always ready.
func (s *Server) WaitReady(t testing.TB) {
	t.Helper()
	if s.tcpPort == 0 {
		return
	}
	deadline := time.Now().Add(15 * time.Second)
	for !tcpListening(s.tcpPort) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on port %d after 15 s", s.name, s.tcpPort)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tcpListening reports whether a socket listens on the loopback TCP port (/proc/net/tcp).
func tcpListening(port int) bool {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" { // 0A: LISTEN
			return true
		}
	}
	return false
}

// FreeTCPPort returns a loopback TCP port that was free a moment ago.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeUDPPort returns a loopback UDP port that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// ffmpegLive is the ffmpeg input side: the clip in real time, every stream copied.
func ffmpegLive(c *Clip, loop bool) []string {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re"}
	if loop {
		args = append(args, "-stream_loop", "-1")
	}
	return append(args, "-i", c.Path, "-map", "0", "-c", "copy")
}

// FLVServer serves the clip as HTTP-FLV (ffmpeg -listen 1) at http://127.0.0.1:P/live.flv.
func FLVServer(t testing.TB, c *Clip) *Server {
	t.Helper()
	return flvListener(t, c, "http://127.0.0.1:%d/live.flv")
}

// RTMPServer serves the clip over RTMP from ffmpeg itself (-listen 1: another RTMP
// implementation than gortmplib's, with its own chunking, 4096-byte chunks, audio interleaved)
// at rtmp://127.0.0.1:P/live/s, each client from the first frame.
func RTMPServer(t testing.TB, c *Clip) *Server {
	t.Helper()
	return flvListener(t, c, "rtmp://127.0.0.1:%d/live/s")
}

// flvListener runs ffmpeg serving the clip as FLV to one client at a time on urlFormat (%d:
// a free port), restarted after each client.
func flvListener(t testing.TB, c *Clip, urlFormat string) *Server {
	t.Helper()
	NeedFFmpeg(t)
	port := FreeTCPPort(t)
	url := fmt.Sprintf(urlFormat, port)
	s := startServer(t, true, "ffmpeg", append(ffmpegLive(c, false), "-f", "flv", "-listen", "1", url))
	s.URL, s.tcpPort = url, port
	return s
}

// SRTServer serves the clip as MPEG-TS over SRT (ffmpeg in listener mode) at
// srt://127.0.0.1:P.
func SRTServer(t testing.TB, c *Clip) *Server {
	t.Helper()
	NeedFFmpeg(t)
	port := FreeUDPPort(t)
	s := startServer(t, true, "ffmpeg", append(ffmpegLive(c, false), "-f", "mpegts",
		fmt.Sprintf("srt://127.0.0.1:%d?mode=listener&latency=200000", port)))
	s.URL = fmt.Sprintf("srt://127.0.0.1:%d", port)
	return s
}

// RTSPServer serves the clip over RTSP with gst-rtsp-server at rtsp://127.0.0.1:P/live,
// every client from the first frame. It returns once the server listens.
func RTSPServer(t testing.TB, c *Clip) *Server {
	t.Helper()
	NeedRTSPServer(t)
	port := FreeTCPPort(t)
	codec := c.Codec
	if codec == "" {
		codec = "none"
	}
	args := []string{rtspScript(), fmt.Sprint(port), c.Path, codec}
	if c.Audio {
		args = append(args, "--audio")
	}
	s := startServer(t, false, "/usr/bin/python3", args)
	s.URL = fmt.Sprintf("rtsp://127.0.0.1:%d/live", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("RTSP server not listening on %d after 15 s", port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	rtspOnce sync.Once
	rtspOK   bool
)

// NeedRTSPServer checks for gst-rtsp-server and the GStreamer elements the script uses.
func NeedRTSPServer(t testing.TB) {
	t.Helper()
	rtspOnce.Do(func() {
		check := `import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
for e in ["matroskademux", "h264parse", "h265parse", "rtph264pay", "rtph265pay", "aacparse", "rtpmp4gpay"]:
    assert Gst.ElementFactory.find(e) is not None, e`
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rtspOK = exec.CommandContext(ctx, "/usr/bin/python3", "-c", check).Run() == nil
	})
	Require(t, rtspOK, "gst-rtsp-server (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good/-bad)")
}

func rtspScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "rtsp_server.py")
}

// HLS is a live HLS stream: ffmpeg's hls muxer writing a playlist and segments into a
// temporary directory, served by a Go HTTP server.
type HLS struct {
	*Server
	Dir  string
	HTTP *httptest.Server
	// Requests counts HTTP requests by path.
	requests sync.Map
	served   atomic.Int64
}

// HLSOptions vary the stream.
type HLSOptions struct {
	SegmentSeconds int      // 0 → 2
	FMP4           bool     // fMP4 segments instead of MPEG-TS
	Encrypt        bool     // AES-128 (the key is served at /key.bin)
	Extra          []string // more hls muxer options
}

// HLSServer starts the stream (looping the clip) and returns once the playlist lists a
// segment.
func HLSServer(t testing.TB, c *Clip, o HLSOptions) *HLS {
	t.Helper()
	NeedFFmpeg(t)
	h := &HLS{Dir: t.TempDir()}
	h.HTTP = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := h.requests.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		h.served.Add(1)
		http.FileServer(http.Dir(h.Dir)).ServeHTTP(w, r)
	}))
	t.Cleanup(h.HTTP.Close)
	seg := o.SegmentSeconds
	if seg == 0 {
		seg = 2
	}
	args := append(ffmpegLive(c, true), "-f", "hls", "-hls_time", fmt.Sprint(seg), "-hls_list_size", "6",
		"-hls_flags", "delete_segments+temp_file")
	if o.FMP4 {
		args = append(args, "-hls_segment_type", "fmp4")
		if c.Codec == "h265" {
			args = append(args, "-tag:v", "hvc1")
		}
	}
	if o.Encrypt {
		key := []byte("livesnap-test-k!") // 16 bytes
		if err := os.WriteFile(filepath.Join(h.Dir, "key.bin"), key, 0o644); err != nil {
			t.Fatal(err)
		}
		info := h.HTTP.URL + "/key.bin\n" + filepath.Join(h.Dir, "key.bin") + "\n00112233445566778899aabbccddeeff\n"
		infoPath := filepath.Join(t.TempDir(), "keyinfo")
		if err := os.WriteFile(infoPath, []byte(info), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-hls_key_info_file", infoPath)
	}
	args = append(args, o.Extra...)
	h.Server = startServer(t, false, "ffmpeg", append(args, filepath.Join(h.Dir, "live.m3u8")))
	h.URL = h.HTTP.URL + "/live.m3u8"
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(h.Dir, "live.m3u8")); err == nil && strings.Contains(string(b), "#EXTINF") {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatal("HLS playlist has no segment after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Requests returns how many requests asked for path.
func (h *HLS) Requests(path string) int64 {
	n, ok := h.requests.Load(path)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// Served returns how many requests the HTTP server answered.
func (h *HLS) Served() int64 { return h.served.Load() }

// logWriter forwards a process's output to the test log, line by line.
type logWriter struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		l.t.Log(l.prefix + sc.Text())
	}
	return len(p), nil
}

var _ io.Writer = (*logWriter)(nil)
