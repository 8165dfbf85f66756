package source_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/media"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/source/avformat"
	"github.com/livesnap/livesnap/internal/source/sourcetest"
)

func TestMain(m *testing.M) {
	_ = decode.SetLogLevel("quiet") // libav* logs every skipped playlist line and refused URL
	code := m.Run()
	sourcetest.Cleanup()
	os.Exit(code)
}

// openRetry opens a stream whose server may still be starting (or restarting after its
// previous client) and closes it when the test ends.
func openRetry(t *testing.T, ctx context.Context, typ, url string, opt source.Options) source.Stream {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := source.Open(ctx, typ, url, opt)
		if err == nil {
			t.Cleanup(func() { st.Close() })
			return st
		}
		if !errors.Is(err, source.ErrStreamNotFound) || time.Now().After(deadline) {
			t.Fatalf("open %s %s: %v", typ, url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// liveServer starts a server for a protocol.
type liveServer func(t *testing.T, c *sourcetest.Clip) (url string, srv *sourcetest.Server)

func flvServer(t *testing.T, c *sourcetest.Clip) (string, *sourcetest.Server) {
	s := sourcetest.FLVServer(t, c)
	return s.URL, s
}

func srtServer(t *testing.T, c *sourcetest.Clip) (string, *sourcetest.Server) {
	s := sourcetest.SRTServer(t, c)
	return s.URL, s
}

func rtspServer(t *testing.T, c *sourcetest.Clip) (string, *sourcetest.Server) {
	s := sourcetest.RTSPServer(t, c)
	return s.URL, s
}

func hlsServer(o sourcetest.HLSOptions) liveServer {
	return func(t *testing.T, c *sourcetest.Clip) (string, *sourcetest.Server) {
		h := sourcetest.HLSServer(t, c, o)
		return h.URL, h.Server
	}
}

type inputCase struct {
	name  string
	typ   string
	spec  sourcetest.Spec
	serve liveServer
	opt   source.Options
	// fromStart: the server sends the clip from its first frame to each client (else it is
	// a looping live stream joined at its live edge).
	fromStart bool
}

var inputCases = []inputCase{
	{name: "http-flv/h264", typ: "http-flv", spec: sourcetest.H264, serve: flvServer, fromStart: true},
	{name: "srt/h264", typ: "srt", spec: sourcetest.H264, serve: srtServer, fromStart: true},
	{name: "srt/h265", typ: "srt", spec: sourcetest.H265, serve: srtServer, fromStart: true},
	{name: "srt/h265-10bit", typ: "srt", spec: sourcetest.H265Main10, serve: srtServer, fromStart: true},
	{name: "hls/h264", typ: "hls", spec: sourcetest.H264, serve: hlsServer(sourcetest.HLSOptions{})},
	{name: "hls/h265", typ: "hls", spec: sourcetest.H265, serve: hlsServer(sourcetest.HLSOptions{})},
	{name: "hls/h265-fmp4", typ: "hls", spec: sourcetest.H265, serve: hlsServer(sourcetest.HLSOptions{FMP4: true})},
	{name: "hls/h265-10bit", typ: "hls", spec: sourcetest.H265Main10, serve: hlsServer(sourcetest.HLSOptions{})},
	// FFmpeg 5.1 carries AV1 in MP4 only (not in MPEG-TS, RTP or FLV): HLS with fMP4.
	{name: "hls/av1-fmp4", typ: "hls", spec: sourcetest.AV1, serve: hlsServer(sourcetest.HLSOptions{FMP4: true})},
	{name: "hls/h264-aes128", typ: "hls", spec: sourcetest.H264, serve: hlsServer(sourcetest.HLSOptions{Encrypt: true})},
	{name: "rtsp/h264-tcp", typ: "rtsp", spec: sourcetest.H264, serve: rtspServer, fromStart: true},
	{name: "rtsp/h265-tcp", typ: "rtsp", spec: sourcetest.H265, serve: rtspServer, fromStart: true},
	{name: "rtsp/h264-udp", typ: "rtsp", spec: sourcetest.H264, serve: rtspServer, fromStart: true,
		opt: source.Options{RTSPTransport: "udp"}},
}

// Every protocol and codec: the first unit is a keyframe, every keyframe decodes on its own
// and shows the clip's next keyframe (PSNR), timestamps increase, and a server that sends
// in real time delivers keyframes in real time.
func TestAVInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time streams")
	}
	for _, tc := range inputCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clip := sourcetest.Make(t, tc.spec)
			url, _ := tc.serve(t, clip)
			opened := time.Now()
			st := openRetry(t, context.Background(), tc.typ, url, tc.opt)
			want := map[string]media.Codec{"h264": media.CodecH264, "h265": media.CodecH265, "av1": media.CodecAV1}[tc.spec.Codec]
			if st.Codec() != want {
				t.Fatalf("codec %v, want %v", st.Codec(), want)
			}
			checkKeyframes(t, st, clip, opened, tc.fromStart, 3)
		})
	}
}

// checkKeyframes reads until n keyframes came and checks them (see TestAVInputs).
func checkKeyframes(t *testing.T, st source.Stream, clip *sourcetest.Clip, opened time.Time, fromStart bool, n int) {
	t.Helper()
	var keys []int
	var keyAt []time.Time
	var lastDTS time.Duration
	for units := 0; len(keys) < n; units++ {
		au, err := st.Read()
		if err != nil {
			t.Fatalf("read after %d units, %d keyframes: %v", units, len(keys), err)
		}
		if au.Codec != st.Codec() || au.Received.IsZero() || len(au.NALUs) == 0 {
			t.Fatalf("unit %d: codec %v, received %v, %d NAL units", units, au.Codec, au.Received, len(au.NALUs))
		}
		if units == 0 && !au.Keyframe {
			t.Fatal("first unit is not a keyframe")
		}
		if units > 0 && au.DTS < lastDTS-200*time.Millisecond {
			t.Fatalf("unit %d: DTS went back from %v to %v", units, lastDTS, au.DTS)
		}
		lastDTS = au.DTS
		if !au.Keyframe {
			continue
		}
		k := clip.CheckKeyframe(t, sourcetest.DecodeKeyframe(t, au))
		if len(keys) > 0 && k != (keys[len(keys)-1]+1)%clip.Keyframes() {
			t.Fatalf("keyframes show clip keyframes %v then %d: not consecutive", keys, k)
		}
		keys, keyAt = append(keys, k), append(keyAt, au.Received)
	}
	t.Logf("keyframes %v after %v", keys, time.Since(opened).Round(time.Millisecond))
	if fromStart {
		if keys[0] != 0 {
			t.Errorf("the server sends the clip from its start, but the first keyframe is clip keyframe %d", keys[0])
		}
		// Real time: keyframe k+1 arrives one GOP after keyframe k (the first may come with
		// a server's initial burst).
		gop := time.Duration(clip.GOP) * time.Second / sourcetest.FPS
		for i := 2; i < len(keyAt); i++ {
			if gap := keyAt[i].Sub(keyAt[i-1]); gap < gop-700*time.Millisecond || gap > gop+700*time.Millisecond {
				t.Errorf("keyframes %d and %d arrived %v apart, want about %v", keys[i-1], keys[i], gap, gop)
			}
		}
	}
}

// waitErr reads until an error and returns it with the time it came.
func waitErr(st source.Stream) (error, time.Time) {
	for {
		if _, err := st.Read(); err != nil {
			return err, time.Now()
		}
	}
}

// A server that keeps its connection but sends nothing (SIGSTOP) is ErrStalled after the
// read timeout (HLS: at least three target durations, its segments come in bursts).
func TestAVStall(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time streams")
	}
	cases := []struct {
		name        string
		typ         string
		serve       liveServer
		readTimeout time.Duration
		within      time.Duration
	}{
		{"http-flv", "http-flv", flvServer, 2 * time.Second, 4 * time.Second},
		{"srt", "srt", srtServer, 2 * time.Second, 4 * time.Second},
		// Longer than libsrt's 5 s peer idle timeout: the broken connection it reports after
		// that much silence is still a stall.
		{"srt-peer-idle", "srt", srtServer, 9 * time.Second, 11 * time.Second},
		{"rtsp", "rtsp", rtspServer, 2 * time.Second, 4 * time.Second},
		// Three target durations (6 s) after the last unit, which comes up to two segments
		// after the stop: the live edge is a segment or two behind the muxer.
		{"hls", "hls", hlsServer(sourcetest.HLSOptions{}), 2 * time.Second, 16 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clip := sourcetest.Make(t, sourcetest.H264)
			url, srv := tc.serve(t, clip)
			st := openRetry(t, context.Background(), tc.typ, url, source.Options{ReadTimeout: tc.readTimeout})
			if _, err := st.Read(); err != nil {
				t.Fatal(err)
			}
			srv.Signal(stopSignal)
			stopped := time.Now()
			err, at := waitErr(st)
			if !errors.Is(err, source.ErrStalled) {
				t.Fatalf("err = %v, want ErrStalled", err)
			}
			if d := at.Sub(stopped); d > tc.within {
				t.Errorf("ErrStalled %v after the server stopped, want within %v", d, tc.within)
			}
			t.Logf("%v after %v", err, at.Sub(stopped).Round(time.Millisecond))
			if _, err := st.Read(); err == nil {
				t.Error("Read after an error succeeded")
			}
		})
	}
}

// A server that goes away is ErrEnded at once; an HLS playlist that ends (#EXT-X-ENDLIST,
// written when ffmpeg stops cleanly) is ErrEnded once its segments are read.
func TestAVEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time streams")
	}
	cases := []struct {
		name   string
		typ    string
		serve  liveServer
		signal os.Signal
		within time.Duration
	}{
		{"http-flv", "http-flv", flvServer, killSignal, 2 * time.Second},
		// SRT: ffmpeg closing its socket sends a shutdown (a killed one is silent, which is
		// a stall: see TestAVStall/srt-peer-idle).
		{"srt", "srt", srtServer, termSignal, 2 * time.Second},
		{"rtsp", "rtsp", rtspServer, killSignal, 2 * time.Second},
		{"hls-endlist", "hls", hlsServer(sourcetest.HLSOptions{}), termSignal, 10 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clip := sourcetest.Make(t, sourcetest.H264)
			url, srv := tc.serve(t, clip)
			st := openRetry(t, context.Background(), tc.typ, url, source.Options{ReadTimeout: 30 * time.Second})
			if _, err := st.Read(); err != nil {
				t.Fatal(err)
			}
			if tc.signal == termSignal {
				srv.Signal(tc.signal)
			} else {
				srv.Kill()
			}
			gone := time.Now()
			err, at := waitErr(st)
			if !errors.Is(err, source.ErrEnded) {
				t.Fatalf("err = %v, want ErrEnded", err)
			}
			if d := at.Sub(gone); d > tc.within {
				t.Errorf("ErrEnded %v after the server left, want within %v", d, tc.within)
			}
			t.Logf("%v after %v", err, at.Sub(gone).Round(time.Millisecond))
		})
	}
}

// Close and context cancellation unblock a Read that waits on a silent server, promptly and
// from another goroutine; cancellation also cuts Open short.
func TestAVCloseAndCancelWhileBlocked(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time streams")
	}
	servers := map[string]liveServer{"http-flv": flvServer, "srt": srtServer, "rtsp": rtspServer,
		"hls": hlsServer(sourcetest.HLSOptions{})}
	for _, typ := range []string{"http-flv", "srt", "rtsp", "hls"} {
		for _, how := range []string{"close", "cancel"} {
			t.Run(typ+"/"+how, func(t *testing.T) {
				t.Parallel()
				clip := sourcetest.Make(t, sourcetest.H264)
				url, srv := servers[typ](t, clip)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				st := openRetry(t, ctx, typ, url, source.Options{ReadTimeout: time.Minute})
				if _, err := st.Read(); err != nil {
					t.Fatal(err)
				}
				srv.Signal(stopSignal)
				res := make(chan error, 1)
				go func() {
					err, _ := waitErr(st)
					res <- err
				}()
				time.Sleep(1500 * time.Millisecond) // blocked by now, buffered units drained
				at := time.Now()
				if how == "close" {
					st.Close()
					st.Close() // idempotent
				} else {
					cancel()
				}
				var err error
				select {
				case err = <-res:
				case <-time.After(5 * time.Second):
					t.Fatal("Read still blocked 5 s after " + how)
				}
				d := time.Since(at)
				want := source.ErrClosed
				if how == "cancel" {
					want = context.Canceled
				}
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
				if d > time.Second {
					t.Errorf("Read returned %v after %s, want promptly", d, how)
				}
			})
		}
	}

	// Open of an SRT listener that is not there waits for the handshake; cancel cuts it short.
	t.Run("srt/cancel-open", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err := source.Open(ctx, "srt", fmt.Sprintf("srt://127.0.0.1:%d", sourcetest.FreeUDPPort(t)), source.Options{ConnectTimeout: 20 * time.Second})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Open returned %v after start, want about 300 ms", d)
		}
	})
}

// An audio-only stream is ErrNoVideo, for every protocol, without waiting for the timeout.
func TestAVAudioOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time streams")
	}
	servers := map[string]liveServer{"http-flv": flvServer, "srt": srtServer, "rtsp": rtspServer,
		"hls": hlsServer(sourcetest.HLSOptions{})}
	for _, typ := range []string{"http-flv", "srt", "rtsp", "hls"} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			clip := sourcetest.Make(t, sourcetest.AudioOnly)
			url, _ := servers[typ](t, clip)
			deadline := time.Now().Add(20 * time.Second)
			for {
				start := time.Now()
				_, err := source.Open(context.Background(), typ, url, source.Options{ConnectTimeout: 8 * time.Second})
				if errors.Is(err, source.ErrStreamNotFound) && time.Now().Before(deadline) {
					time.Sleep(200 * time.Millisecond) // server (re)starting
					continue
				}
				if !errors.Is(err, source.ErrNoVideo) {
					t.Fatalf("err = %v, want ErrNoVideo", err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("took %v", d)
				}
				t.Logf("%v (%v)", err, time.Since(start).Round(time.Millisecond))
				return
			}
		})
	}
}

// Probe answers nil for a live stream of every type, and ErrStreamNotFound fast for a port
// nobody listens on.
func TestAVProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time streams")
	}
	for _, tc := range []struct {
		typ   string
		serve liveServer
	}{{"http-flv", flvServer}, {"srt", srtServer}, {"rtsp", rtspServer}, {"hls", hlsServer(sourcetest.HLSOptions{})}} {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			clip := sourcetest.Make(t, sourcetest.H264)
			url, _ := tc.serve(t, clip)
			deadline := time.Now().Add(20 * time.Second)
			for {
				err := source.Probe(context.Background(), tc.typ, url, 5*time.Second)
				if err == nil {
					break
				}
				if !errors.Is(err, source.ErrStreamNotFound) || time.Now().After(deadline) {
					t.Fatalf("probe: %v", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
	closed := map[string]string{
		"http-flv": fmt.Sprintf("http://127.0.0.1:%d/live.flv", sourcetest.FreeTCPPort(t)),
		"hls":      fmt.Sprintf("http://127.0.0.1:%d/live.m3u8", sourcetest.FreeTCPPort(t)),
		"rtsp":     fmt.Sprintf("rtsp://127.0.0.1:%d/live", sourcetest.FreeTCPPort(t)),
	}
	for typ, url := range closed {
		start := time.Now()
		err := source.Probe(context.Background(), typ, url, 5*time.Second)
		if !errors.Is(err, source.ErrStreamNotFound) {
			t.Errorf("%s closed port: err = %v, want ErrStreamNotFound", typ, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s closed port: took %v, want fast", typ, d)
		}
	}
	// SRT runs over UDP: nothing refuses, so nobody there is "no answer within the timeout".
	start := time.Now()
	err := source.Probe(context.Background(), "srt", fmt.Sprintf("srt://127.0.0.1:%d", sourcetest.FreeUDPPort(t)), 2*time.Second)
	if !errors.Is(err, source.ErrStreamNotFound) {
		t.Errorf("srt nobody: err = %v, want ErrStreamNotFound", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("srt nobody: took %v", d)
	}
	if n := avformat.LiveHandles(); n != 0 {
		// Other parallel tests may hold streams; only a sequential run can check this.
		t.Logf("%d avformat handles alive", n)
	}
}
