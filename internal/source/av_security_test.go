package source_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/source/avformat"
	"github.com/livesnap/livesnap/internal/source/sourcetest"
)

// deny returns a CheckAddr refusing one prefix.
func deny(prefix string) func(netip.Addr) error {
	p := netip.MustParsePrefix(prefix)
	return func(a netip.Addr) error {
		if p.Contains(a) {
			return fmt.Errorf("address %s is refused by the network policy (%s)", a, p)
		}
		return nil
	}
}

// countingListener accepts TCP connections and counts them and the bytes they send.
type countingListener struct {
	ln    net.Listener
	conns atomic.Int64
	bytes atomic.Int64
}

func listenCounting(t *testing.T, addr string) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	c := &countingListener{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.conns.Add(1)
			go func() {
				defer conn.Close()
				buf := make([]byte, 4096)
				for {
					n, err := conn.Read(buf)
					c.bytes.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

func (c *countingListener) port() int { return c.ln.Addr().(*net.TCPAddr).Port }

// Hosts the policy refuses are never contacted, whichever way the URL names them.
func TestAVRefusedHost(t *testing.T) {
	tcp := listenCounting(t, "127.0.0.1:0")
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var udpPackets atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
			udpPackets.Add(1)
		}
	}()
	udpPort := udp.LocalAddr().(*net.UDPAddr).Port
	opt := source.Options{ConnectTimeout: 3 * time.Second, CheckAddr: deny("127.0.0.0/8")}
	for _, tc := range []struct{ typ, url string }{
		{"http-flv", fmt.Sprintf("http://127.0.0.1:%d/live.flv", tcp.port())},
		{"hls", fmt.Sprintf("http://localhost:%d/live.m3u8", tcp.port())},
		{"rtsp", fmt.Sprintf("rtsp://127.0.0.1:%d/live", tcp.port())},
		{"rtsp", fmt.Sprintf("rtsp://localhost:%d/live", tcp.port())},
		{"rtsp", fmt.Sprintf("rtsps://localhost:%d/live", tcp.port())},
		{"srt", fmt.Sprintf("srt://127.0.0.1:%d", udpPort)},
		{"srt", fmt.Sprintf("srt://localhost:%d?streamid=x", udpPort)},
	} {
		start := time.Now()
		_, err := source.Open(context.Background(), tc.typ, tc.url, opt)
		if !errors.Is(err, source.ErrStreamNotFound) || !strings.Contains(err.Error(), "network policy") {
			t.Errorf("%s %s: err = %v, want ErrStreamNotFound from the network policy", tc.typ, tc.url, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s %s: refusal took %v", tc.typ, tc.url, d)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n, b := tcp.conns.Load(), udpPackets.Load(); n != 0 || b != 0 {
		t.Errorf("refused hosts were contacted: %d TCP connections, %d UDP packets", n, b)
	}
}

// vodHLS writes a short VOD HLS rendition of the clip (first segments) into dir.
func vodHLS(t *testing.T, clip *sourcetest.Clip, dir string) {
	t.Helper()
	ctxRun(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", clip.Path, "-t", "6",
		"-map", "0", "-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
		"-hls_segment_filename", filepath.Join(dir, "seg%d.ts"), filepath.Join(dir, "vod.m3u8"))
}

// serveCounting serves dir over HTTP on addr, counting requests.
func serveCounting(t *testing.T, addr, dir string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	var n atomic.Int64
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.FileServer(http.Dir(dir)).ServeHTTP(w, r)
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

// playlistServer serves fixed playlists by path.
func playlistServer(t *testing.T, pages map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(p, "redirect:") {
			http.Redirect(w, r, strings.TrimPrefix(p, "redirect:"), http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		fmt.Fprint(w, p)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// HLS URLs found in playlists (variants, segments, redirects) go through the same policy as
// the stream URL: a segment on a refused host is never fetched.
func TestAVHLSNestedURLsChecked(t *testing.T) {
	clip := sourcetest.Make(t, sourcetest.H264)
	dir := t.TempDir()
	vodHLS(t, clip, dir)
	other, otherRequests := serveCounting(t, "127.0.0.2:0", dir)
	vod, err := os.ReadFile(filepath.Join(dir, "vod.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	// The same segments, named by absolute URLs on the other host.
	abs := strings.ReplaceAll(string(vod), "seg", other.URL+"/seg")
	pages := map[string]string{
		"/abs.m3u8":    abs,
		"/master.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=300000\n" + other.URL + "/vod.m3u8\n",
		"/redir.m3u8":  "redirect:" + other.URL + "/vod.m3u8",
	}
	main := playlistServer(t, pages)

	for _, path := range []string{"/abs.m3u8", "/master.m3u8", "/redir.m3u8"} {
		t.Run(strings.Trim(path, "/"), func(t *testing.T) {
			// Allowed: the stream works (so the refusal below is the policy's doing).
			st, err := source.Open(context.Background(), "hls", main.URL+path, source.Options{})
			if err != nil {
				t.Fatalf("allowed: %v", err)
			}
			au, err := st.Read()
			st.Close()
			if err != nil || !au.Keyframe {
				t.Fatalf("allowed: first unit keyframe=%v err=%v", au.Keyframe, err)
			}
			clip.CheckKeyframe(t, sourcetest.DecodeKeyframe(t, au))

			before := otherRequests.Load()
			_, err = source.Open(context.Background(), "hls", main.URL+path,
				source.Options{ConnectTimeout: 3 * time.Second, CheckAddr: deny("127.0.0.2/32")})
			if !errors.Is(err, source.ErrStreamNotFound) {
				t.Fatalf("refused: err = %v, want ErrStreamNotFound", err)
			}
			if n := otherRequests.Load() - before; n != 0 {
				t.Errorf("the refused host got %d requests", n)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// A playlist can never make livesnap open anything but http(s): not local files (checked
// with a FIFO nobody may open), data:, concat:, crypto: of a file, subfile, ftp, ...
func TestAVHLSRefusedProtocols(t *testing.T) {
	clip := sourcetest.Make(t, sourcetest.H264)
	dir := t.TempDir()
	vodHLS(t, clip, dir)
	fifo := filepath.Join(t.TempDir(), "secret.ts")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	var fifoOpened atomic.Bool
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // blocks until someone opens it to read
		if err == nil {
			fifoOpened.Store(true)
			f.Close()
		}
	}()
	defer func() {
		// Unblock the writer ourselves (after the checks).
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			<-writerDone
			f.Close()
		}
	}()
	seg, err := os.ReadFile(filepath.Join(dir, "seg0.ts"))
	if err != nil {
		t.Fatal(err)
	}
	media := func(uri string) string {
		return "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\n" + uri + "\n#EXT-X-ENDLIST\n"
	}
	pages := map[string]string{
		"/file.m3u8":    media("file://" + fifo),
		"/path.m3u8":    media(fifo),
		"/data.m3u8":    media("data:video/mp2t;base64," + base64.StdEncoding.EncodeToString(seg)),
		"/concat.m3u8":  media("concat:" + fifo + "|" + fifo),
		"/subfile.m3u8": media("subfile,,start,0,end,0,,:" + fifo),
		"/ftp.m3u8":     media("ftp://127.0.0.1:1/seg.ts"),
		"/key.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"file://" + fifo + "\"\n" +
			"#EXTINF:2.0,\nseg0.ts\n#EXT-X-ENDLIST\n",
		"/variant.m3u8": "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nfile://" + fifo + "\n",
	}
	srv := playlistServer(t, pages)
	for path := range pages {
		_, err := source.Open(context.Background(), "hls", srv.URL+path, source.Options{ConnectTimeout: 3 * time.Second})
		if err == nil {
			t.Errorf("%s: opened", path)
			continue
		}
		if !errors.Is(err, source.ErrStreamNotFound) {
			t.Errorf("%s: err = %v, want ErrStreamNotFound", path, err)
		}
		t.Logf("%s: %v", path, err)
	}
	time.Sleep(100 * time.Millisecond)
	if fifoOpened.Load() {
		t.Fatal("a playlist made livesnap open a local file")
	}
}

// Redirects of HTTP inputs are followed only to http(s) on allowed hosts.
func TestAVHTTPRedirects(t *testing.T) {
	clip := sourcetest.Make(t, sourcetest.H264)
	dir := t.TempDir()
	vodHLS(t, clip, dir)
	other, otherRequests := serveCounting(t, "127.0.0.2:0", dir)
	srv := playlistServer(t, map[string]string{
		"/to-other.flv": "redirect:" + other.URL + "/live.flv",
		"/to-file.flv":  "redirect:file:///etc/passwd",
		"/loop.m3u8":    "redirect:/loop.m3u8",
	})
	opt := source.Options{ConnectTimeout: 3 * time.Second, CheckAddr: deny("127.0.0.2/32")}
	for _, path := range []string{"/to-other.flv", "/to-file.flv", "/loop.m3u8"} {
		typ := "http-flv"
		if strings.HasSuffix(path, ".m3u8") {
			typ = "hls"
		}
		_, err := source.Open(context.Background(), typ, srv.URL+path, opt)
		if !errors.Is(err, source.ErrStreamNotFound) {
			t.Errorf("%s: err = %v, want ErrStreamNotFound", path, err)
		}
		t.Logf("%s: %v", path, err)
	}
	if n := otherRequests.Load(); n != 0 {
		t.Errorf("the refused host got %d requests", n)
	}
}

// fakeRTSPRedirect answers every RTSP request with 302 to location.
func fakeRTSPRedirect(t *testing.T, location string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				cseq := "1"
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimSpace(line)
					if v, ok := strings.CutPrefix(line, "CSeq:"); ok {
						cseq = strings.TrimSpace(v)
					}
					if line == "" {
						fmt.Fprintf(conn, "RTSP/1.0 302 Found\r\nCSeq: %s\r\nLocation: %s\r\n\r\n", cseq, location)
					}
				}
			}()
		}
	}()
	return fmt.Sprintf("rtsp://127.0.0.1:%d/live", ln.Addr().(*net.TCPAddr).Port)
}

// An RTSP redirect (libavformat follows it by itself) is checked against the policy before
// any request goes out: a refused target gets no byte; an allowed one works.
func TestAVRTSPRedirect(t *testing.T) {
	target := listenCounting(t, "127.0.0.2:0")
	url := fakeRTSPRedirect(t, fmt.Sprintf("rtsp://127.0.0.2:%d/live", target.port()))
	start := time.Now()
	_, err := source.Open(context.Background(), "rtsp", url, source.Options{ConnectTimeout: 5 * time.Second, CheckAddr: deny("127.0.0.2/32")})
	if !errors.Is(err, source.ErrStreamNotFound) || !errors.Is(err, avformat.ErrURLRefused) {
		t.Fatalf("err = %v, want ErrStreamNotFound for a refused redirect", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusal took %v", d)
	}
	time.Sleep(200 * time.Millisecond)
	if b := target.bytes.Load(); b != 0 {
		t.Errorf("the refused redirect target received %d bytes", b)
	}
	t.Logf("%v (%d connections, no request)", err, target.conns.Load())

	if testing.Short() {
		return
	}
	clip := sourcetest.Make(t, sourcetest.H264)
	real := sourcetest.RTSPServer(t, clip)
	st := openRetry(t, context.Background(), "rtsp", fakeRTSPRedirect(t, real.URL), source.Options{CheckAddr: deny("127.0.0.2/32")})
	au, err := st.Read()
	if err != nil || !au.Keyframe {
		t.Fatalf("allowed redirect: keyframe=%v err=%v", au.Keyframe, err)
	}
	clip.CheckKeyframe(t, sourcetest.DecodeKeyframe(t, au))
}

// A master playlist: livesnap follows one variant, the largest picture of a codec it
// decodes, and fetches no other variant's playlist (however many there are).
func TestAVHLSVariants(t *testing.T) {
	clip := sourcetest.Make(t, sourcetest.H264)
	dir := t.TempDir()
	vodHLS(t, clip, dir)
	var many strings.Builder
	many.WriteString("#EXTM3U\n")
	for i := range 500 {
		fmt.Fprintf(&many, "#EXT-X-STREAM-INF:BANDWIDTH=%d,RESOLUTION=320x240\nv%d.m3u8\n", 1000+i, i)
	}
	master := "#EXTM3U\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=160x120,CODECS=\"avc1.42c00d,mp4a.40.2\"\nsmall.m3u8\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=320x240,CODECS=\"avc1.64001e,mp4a.40.2\"\nvod.m3u8\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080,CODECS=\"vp09.00.40.08,opus\"\nvp9.m3u8\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.2\"\naudio.m3u8\n"
	var requests sync.Map
	count := func(path string) int64 {
		n, _ := requests.LoadOrStore(path, new(atomic.Int64))
		return n.(*atomic.Int64).Load()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := requests.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		switch {
		case r.URL.Path == "/master.m3u8":
			fmt.Fprint(w, master)
		case r.URL.Path == "/many.m3u8":
			fmt.Fprint(w, many.String())
		case r.URL.Path == "/vp9only.m3u8":
			fmt.Fprint(w, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"vp09.00.40.08\"\nvp9.m3u8\n")
		case strings.HasPrefix(r.URL.Path, "/v") && r.URL.Path != "/vod.m3u8":
			fmt.Fprint(w, "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nnone.ts\n")
		default:
			http.FileServer(http.Dir(dir)).ServeHTTP(w, r)
		}
	}))
	defer srv.Close()

	st, err := source.Open(context.Background(), "hls", srv.URL+"/master.m3u8", source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	au, err := st.Read()
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	clip.CheckKeyframe(t, sourcetest.DecodeKeyframe(t, au))
	for _, p := range []string{"/small.m3u8", "/vp9.m3u8", "/audio.m3u8"} {
		if n := count(p); n != 0 {
			t.Errorf("%s fetched %d times: only the chosen variant should be", p, n)
		}
	}
	if count("/vod.m3u8") == 0 {
		t.Error("the largest decodable variant was not followed")
	}

	_, err = source.Open(context.Background(), "hls", srv.URL+"/vp9only.m3u8", source.Options{})
	if !errors.Is(err, source.ErrNoVideo) {
		t.Errorf("no decodable variant: err = %v, want ErrNoVideo", err)
	}

	// 500 variants whose segments never come: one playlist followed, a bounded number of
	// requests until the connect deadline.
	start := time.Now()
	_, err = source.Open(context.Background(), "hls", srv.URL+"/many.m3u8", source.Options{ConnectTimeout: 3 * time.Second})
	if !errors.Is(err, source.ErrStreamNotFound) {
		t.Errorf("many variants: err = %v, want ErrStreamNotFound", err)
	}
	total := int64(0)
	requests.Range(func(k, v any) bool {
		if strings.HasPrefix(k.(string), "/v") && k.(string) != "/vod.m3u8" {
			total += v.(*atomic.Int64).Load()
		}
		return true
	})
	if total > 10 {
		t.Errorf("many variants: %d variant and segment requests", total)
	}
	t.Logf("many variants: %v (%d requests, %v)", err, total, time.Since(start).Round(time.Millisecond))
}

// Inputs are bounded: an oversized playlist is refused at once.
func TestAVHLSBounds(t *testing.T) {
	srv := playlistServer(t, map[string]string{
		"/huge.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + strings.Repeat("#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00Z\n", 30000),
	})
	_, err := source.Open(context.Background(), "hls", srv.URL+"/huge.m3u8", source.Options{ConnectTimeout: 10 * time.Second})
	if !errors.Is(err, avformat.ErrTooLarge) {
		t.Errorf("err = %v, want a bound exceeded", err)
	}
}

// Stream URLs are validated before anything is opened.
func TestAVInvalidURLs(t *testing.T) {
	for _, tc := range []struct{ typ, url string }{
		{"rtsp", "http://127.0.0.1/x"},
		{"hls", "rtsp://127.0.0.1/x"},
		{"http-flv", "file:///etc/passwd"},
		{"hls", "data:text/plain,hello"},
		{"srt", "srt://127.0.0.1"},
		{"srt", "srt://127.0.0.1:9000?mode=listener"},
		{"srt", "srt://127.0.0.1:9000?mode=rendezvous"},
		{"srt", "srt://127.0.0.1:9000?localport=5000"},
		{"srt", "srt://127.0.0.1:9000?transtype=file"},
		{"srt", "srt://127.0.0.1:9000?latency=abc"},
		{"srt", "srt://127.0.0.1:9000?streamid=a&streamid=b"},
		{"srt", "srt://127.0.0.1:9000/path"},
		{"srt", "srt://127.0.0.1:9000?streamid=#!::r=live"},
		{"rtsp", "rtsp://127.0.0.1:99999/x"},
		{"rtsp", "rtsp:///x"},
		{"rtsp", "rtsp://127.0.0.1/x y"},
		{"rtsp", "rtsp://127.0.0.1/x\x00"},
		{"hls", "http://127.0.0.1/" + strings.Repeat("a", 3000)},
	} {
		_, err := source.Open(context.Background(), tc.typ, tc.url, source.Options{ConnectTimeout: time.Second})
		if !errors.Is(err, source.ErrInvalidURL) && !errors.Is(err, source.ErrUnsupported) {
			t.Errorf("%s %q: err = %v, want ErrInvalidURL", tc.typ, tc.url, err)
		}
	}
	_, err := source.Open(context.Background(), "rtsp", "rtsp://127.0.0.1:1/x", source.Options{RTSPTransport: "multicast"})
	if !errors.Is(err, source.ErrInvalidURL) {
		t.Errorf("RTSP transport multicast: err = %v, want ErrInvalidURL", err)
	}
}

// HTTPS inputs verify the server's certificate (Options.TLSConfig gives the roots), and
// errors name URLs without their credentials or query.
func TestAVHTTPS(t *testing.T) {
	clip := sourcetest.Make(t, sourcetest.H264)
	dir := t.TempDir()
	vodHLS(t, clip, dir)
	srv := httptest.NewTLSServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	st, err := source.Open(context.Background(), "hls", srv.URL+"/vod.m3u8", source.Options{TLSConfig: &tls.Config{RootCAs: roots}})
	if err != nil {
		t.Fatal(err)
	}
	au, err := st.Read()
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	clip.CheckKeyframe(t, sourcetest.DecodeKeyframe(t, au))

	secret := strings.Replace(srv.URL, "https://", "https://user:hunter2@", 1) + "/vod.m3u8?token=hunter2"
	_, err = source.Open(context.Background(), "hls", secret, source.Options{ConnectTimeout: 3 * time.Second})
	if err == nil {
		t.Fatal("a certificate from an unknown authority was accepted")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error reveals a secret: %v", err)
	}
	t.Logf("unknown authority: %v", err)
}

// ctxRun runs a tool to completion under a timeout.
func ctxRun(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}
