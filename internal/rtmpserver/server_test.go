package rtmpserver_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"

	"github.com/livesnap/livesnap/internal/rtmpserver"
	"github.com/livesnap/livesnap/internal/rtmpserver/rtmptest"
	"github.com/livesnap/livesnap/internal/source"
)

func start(t *testing.T, s *rtmpserver.Server) *rtmpserver.Server {
	t.Helper()
	if s.Addr == "" {
		s.Addr = "127.0.0.1:0"
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitPublished(t *testing.T, s *rtmpserver.Server, name string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !s.Published(name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not published within 15 s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runPublisher runs a gortmplib publisher until the test ends; its error is reported on the
// returned channel.
func runPublisher(t *testing.T, p *rtmptest.Publisher) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errc <- p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return errc
}

// dialPlayer plays rtmp://addr/app#key with gortmplib, optionally with a tiny receive buffer.
func dialPlayer(t *testing.T, addr, app, key string, smallBuffer bool) *gortmplib.Client {
	t.Helper()
	c := &gortmplib.Client{URL: &url.URL{Scheme: "rtmp", Host: addr, Path: "/" + app, Fragment: key}}
	if smallBuffer {
		c.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
				if err != nil {
					return err
				}
				return serr
			}}
			return d.DialContext(ctx, network, address)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Initialize(ctx); err != nil {
		t.Fatalf("play %s/%s: %v", app, key, err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestMidStreamPlayerGetsConfigThenKeyframe(t *testing.T) {
	t.Parallel()
	srv := start(t, &rtmpserver.Server{})
	rtmptest.PublishClip(t, "rtmp://"+srv.ListenAddr()+"/live/mid", "0:v", "0:a")
	waitPublished(t, srv, "live/mid")
	time.Sleep(1200 * time.Millisecond) // join in the middle of a GOP

	c := dialPlayer(t, srv.ListenAddr(), "live", "mid", false)
	_ = c.NetConn().SetDeadline(time.Now().Add(10 * time.Second))
	r := &gortmplib.Reader{Conn: c}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	var events []string // "config", "key", "delta", "audio"
	for _, tr := range r.Tracks() {
		switch codec := tr.Codec.(type) {
		case *codecs.H264:
			if len(codec.SPS) == 0 || len(codec.PPS) == 0 {
				t.Fatal("video track without SPS/PPS")
			}
			r.OnDataH264(tr, func(_, _ time.Duration, au [][]byte) {
				typ := au[len(au)-1][0] & 0x1f
				switch {
				case typ == 7 || typ == 8:
					events = append(events, "config")
				case typ == 5:
					events = append(events, "key")
				default:
					events = append(events, "delta")
				}
			})
		case *codecs.MPEG4Audio:
			r.OnDataMPEG4Audio(tr, func(time.Duration, []byte) { events = append(events, "audio") })
		default:
			t.Fatalf("unexpected track %T", tr.Codec)
		}
	}
	for len(events) < 40 {
		if err := r.Read(); err != nil {
			t.Fatal(err)
		}
	}
	first := -1
	for i, e := range events {
		if e == "config" {
			continue
		}
		first = i
		break
	}
	if first < 0 || events[first] != "key" {
		t.Fatalf("first media event is not a video keyframe: %v", events[:min(len(events), 10)])
	}
}

func TestSecondPublisherRefused(t *testing.T) {
	t.Parallel()
	aus := rtmptest.EncodeAnnexB(t, "h264", 1, 25, 25)
	srv := start(t, &rtmpserver.Server{})
	u := "rtmp://" + srv.ListenAddr() + "/live/one"
	first := &rtmptest.Publisher{URL: u, AUs: aus, Interval: 40 * time.Millisecond}
	firstErr := runPublisher(t, first)
	waitPublished(t, srv, "live/one")

	second := &rtmptest.Publisher{URL: u, AUs: aus, Interval: 40 * time.Millisecond}
	select {
	case err := <-runPublisher(t, second):
		if err == nil {
			t.Fatal("second publisher accepted")
		}
		t.Logf("second publisher: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("second publisher neither refused nor failed")
	}
	select {
	case err := <-firstErr:
		t.Fatalf("first publisher stopped: %v", err)
	default:
	}
}

func TestSlowPlayerDroppedOthersUnaffected(t *testing.T) {
	t.Parallel()
	aus := rtmptest.EncodeAnnexB(t, "h264", 2, 25, 25)
	srv := start(t, &rtmpserver.Server{PlayerQueue: 256, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	addr := srv.ListenAddr()
	pub := &rtmptest.Publisher{URL: "rtmp://" + addr + "/live/fast", AUs: aus, Interval: 2 * time.Millisecond}
	runPublisher(t, pub)
	waitPublished(t, srv, "live/fast")

	slow := dialPlayer(t, addr, "live", "fast", true) // never reads

	fast := dialPlayer(t, addr, "live", "fast", false)
	var got atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		r := &gortmplib.Reader{Conn: fast}
		_ = fast.NetConn().SetDeadline(time.Now().Add(20 * time.Second))
		if r.Initialize() != nil {
			return
		}
		for _, tr := range r.Tracks() {
			r.OnDataH264(tr, func(time.Duration, time.Duration, [][]byte) { got.Add(1) })
		}
		for {
			_ = fast.NetConn().SetDeadline(time.Now().Add(5 * time.Second))
			if err := r.Read(); err != nil {
				t.Logf("fast player: %v after %d units", err, got.Load())
				return
			}
		}
	})
	t.Cleanup(func() { fast.Close(); wg.Wait() })

	// The server must close the slow player: draining its socket ends with EOF, not a timeout.
	time.Sleep(3 * time.Second)
	_ = slow.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, slow.NetConn())
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("slow player was not disconnected")
	}

	before, written := got.Load(), pub.Written.Load()
	time.Sleep(time.Second)
	if got.Load()-before < 100 {
		t.Errorf("fast player got %d units in 1 s after the drop, want >= 100", got.Load()-before)
	}
	if pub.Written.Load()-written < 100 {
		t.Errorf("publisher wrote %d units in 1 s, want >= 100 (blocked?)", pub.Written.Load()-written)
	}
}

func TestHeldPlayerAttachesWhenPublisherStarts(t *testing.T) {
	t.Parallel()
	aus := rtmptest.EncodeAnnexB(t, "h264", 2, 25, 25)
	srv := start(t, &rtmpserver.Server{HoldUnpublished: true})
	u := "rtmp://" + srv.ListenAddr() + "/live/later"

	type result struct {
		st  source.Stream
		err error
	}
	res := make(chan result, 1)
	go func() {
		st, err := source.Open(context.Background(), "rtmp", u, source.Options{ConnectTimeout: 15 * time.Second})
		res <- result{st, err}
	}()
	time.Sleep(500 * time.Millisecond)
	runPublisher(t, &rtmptest.Publisher{URL: u, AUs: aus, Interval: 40 * time.Millisecond})

	r := <-res
	if r.err != nil {
		t.Fatalf("Open: %v", r.err)
	}
	defer r.st.Close()
	au, err := r.st.Read()
	if err != nil || !au.Keyframe {
		t.Fatalf("first unit: key %v err %v", au.Keyframe, err)
	}
}

func TestPublisherLeavingDisconnectsPlayers(t *testing.T) {
	t.Parallel()
	aus := rtmptest.EncodeAnnexB(t, "h264", 2, 25, 25)
	srv := start(t, &rtmpserver.Server{})
	u := "rtmp://" + srv.ListenAddr() + "/live/bye"
	ctx, cancel := context.WithCancel(context.Background())
	pub := &rtmptest.Publisher{URL: u, AUs: aus, Interval: 40 * time.Millisecond}
	done := make(chan struct{})
	go func() { defer close(done); _ = pub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitPublished(t, srv, "live/bye")

	st, err := source.Open(context.Background(), "rtmp", u, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cancel()
	<-done
	left := time.Now()
	for {
		if _, err = st.Read(); err != nil {
			break
		}
	}
	if !errors.Is(err, source.ErrEnded) || time.Since(left) > 2*time.Second {
		t.Fatalf("after publisher left: %v after %v", err, time.Since(left))
	}
	if srv.Published("live/bye") {
		t.Error("path still published")
	}
}

func TestConnectionLimitAndHandshakeTimeout(t *testing.T) {
	t.Parallel()
	srv := start(t, &rtmpserver.Server{MaxConns: 1, HandshakeTimeout: 700 * time.Millisecond})
	idle, err := net.Dial("tcp", srv.ListenAddr()) // takes the only slot, never handshakes
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	time.Sleep(100 * time.Millisecond)

	extra, err := net.Dial("tcp", srv.ListenAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := extra.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("connection over the limit not closed: %v", err)
	}

	start := time.Now()
	_ = idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = idle.Read(make([]byte, 1))
	if err == nil || isTimeout(err) {
		t.Fatalf("idle connection not closed by the handshake timeout: %v", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("handshake timeout took %v", d)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestCloseStopsEverything(t *testing.T) {
	t.Parallel()
	aus := rtmptest.EncodeAnnexB(t, "h264", 1, 25, 25)
	srv := &rtmpserver.Server{Addr: "127.0.0.1:0"}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	u := "rtmp://" + srv.ListenAddr() + "/live/close"
	pubErr := runPublisher(t, &rtmptest.Publisher{URL: u, AUs: aus, Interval: 40 * time.Millisecond})
	waitPublished(t, srv, "live/close")
	st, err := source.Open(context.Background(), "rtmp", u, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	begin := time.Now()
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case <-pubErr:
	case <-time.After(2 * time.Second):
		t.Error("publisher still connected after Close")
	}
	for {
		if _, err = st.Read(); err != nil {
			break
		}
	}
	if !errors.Is(err, source.ErrEnded) {
		t.Errorf("player: %v, want ErrEnded", err)
	}
	if _, err := net.Dial("tcp", srv.ListenAddr()); err == nil {
		t.Error("still listening after Close")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
