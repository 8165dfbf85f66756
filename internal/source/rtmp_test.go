package source_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/media"
	"github.com/livesnap/livesnap/internal/rtmpserver"
	"github.com/livesnap/livesnap/internal/rtmpserver/rtmptest"
	"github.com/livesnap/livesnap/internal/source"
)

func startServer(t *testing.T, hold bool) *rtmpserver.Server {
	t.Helper()
	s := &rtmpserver.Server{Addr: "127.0.0.1:0", HoldUnpublished: hold}
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

func open(t *testing.T, ctx context.Context, url string, opt source.Options) source.Stream {
	t.Helper()
	st, err := source.Open(ctx, "rtmp", url, opt)
	if err != nil {
		t.Fatalf("Open %s: %v", url, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func hasTypes(c media.Codec, au media.AccessUnit, types ...int) bool {
	seen := map[int]bool{}
	for _, n := range au.NALUs {
		if c == media.CodecH265 {
			seen[int(n[0]>>1)&0x3f] = true
		} else {
			seen[int(n[0])&0x1f] = true
		}
	}
	for _, typ := range types {
		if !seen[typ] {
			return false
		}
	}
	return true
}

// checkLive reads units for dur and checks codec, keyframe spacing, parameter sets and PTS.
func checkLive(st source.Stream, dur time.Duration, wantGOP time.Duration) error {
	if st.Codec() != media.CodecH264 {
		return fmt.Errorf("codec = %v, want h264", st.Codec())
	}
	var keys []time.Time
	var lastPTS time.Duration
	n := 0
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		au, err := st.Read()
		if err != nil {
			return fmt.Errorf("read after %d units: %w", n, err)
		}
		if au.Codec != media.CodecH264 || au.Received.IsZero() || len(au.NALUs) == 0 {
			return fmt.Errorf("bad unit %d: codec %v received %v nalus %d", n, au.Codec, au.Received, len(au.NALUs))
		}
		if n == 0 && !au.Keyframe {
			return errors.New("first unit is not a keyframe")
		}
		if n > 0 && au.PTS <= lastPTS {
			return fmt.Errorf("unit %d: PTS %v not after %v", n, au.PTS, lastPTS)
		}
		lastPTS = au.PTS
		if au.Keyframe {
			if !hasTypes(media.CodecH264, au, 7, 8, 5) {
				return fmt.Errorf("keyframe %d lacks SPS/PPS/IDR", len(keys))
			}
			keys = append(keys, au.Received)
		}
		n++
	}
	if len(keys) < 3 {
		return fmt.Errorf("%d keyframes in %v, want >= 3", len(keys), dur)
	}
	// The first keyframe can arrive together with buffered units; check later spacing.
	for i := 2; i < len(keys); i++ {
		gap := keys[i].Sub(keys[i-1])
		if gap < wantGOP-600*time.Millisecond || gap > wantGOP+600*time.Millisecond {
			return fmt.Errorf("keyframe gap %v, want about %v", gap, wantGOP)
		}
	}
	return nil
}

func TestRTMPH264LiveTwoPlayers(t *testing.T) {
	t.Parallel()
	srv := startServer(t, false)
	url := "rtmp://" + srv.ListenAddr() + "/live/test"
	rtmptest.PublishClip(t, url, "0:v", "0:a")
	waitPublished(t, srv, "live/test")

	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			st, err := source.Open(ctx, "rtmp", url, source.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			if !source.ReadsDirectly(st) {
				errs[i] = errors.New("the stream is not on the direct read path")
				return
			}
			errs[i] = checkLive(st, 8500*time.Millisecond, 2667*time.Millisecond)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("player %d: %v", i, err)
		}
	}
}

func TestRTMPH265EnhancedRTMP(t *testing.T) {
	t.Parallel()
	aus := rtmptest.EncodeAnnexB(t, "h265", 2, 25, 25)
	srv := startServer(t, false)
	url := "rtmp://" + srv.ListenAddr() + "/live/hevc"

	ctx, cancel := context.WithCancel(context.Background())
	pubErr := make(chan error, 1)
	pub := &rtmptest.Publisher{URL: url, HEVC: true, AUs: aus, Interval: 40 * time.Millisecond}
	go func() { pubErr <- pub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-pubErr; err != nil {
			t.Errorf("publisher: %v", err)
		}
	})
	waitPublished(t, srv, "live/hevc")

	st := open(t, ctx, url, source.Options{})
	if st.Codec() != media.CodecH265 {
		t.Fatalf("codec = %v, want h265", st.Codec())
	}
	if !source.ReadsDirectly(st) {
		t.Error("the stream is not on the direct read path")
	}
	keys, units := 0, 0
	var lastPTS time.Duration
	for keys < 3 {
		au, err := st.Read()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if units == 0 && !au.Keyframe {
			t.Fatal("first unit is not a keyframe")
		}
		if units > 0 && au.PTS <= lastPTS {
			t.Fatalf("PTS %v not after %v", au.PTS, lastPTS)
		}
		lastPTS = au.PTS
		if au.Keyframe {
			keys++
			if !hasTypes(media.CodecH265, au, 32, 33, 34) {
				t.Fatalf("keyframe lacks VPS/SPS/PPS: %d NALUs", len(au.NALUs))
			}
		}
		units++
	}
	if units < 50 {
		t.Errorf("%d units for 3 keyframes at GOP 25, want >= 50", units)
	}
}

func TestProbeUnknownPathRejected(t *testing.T) {
	t.Parallel()
	srv := startServer(t, false)
	start := time.Now()
	err := source.Probe(context.Background(), "rtmp", "rtmp://"+srv.ListenAddr()+"/live/nobody", 3*time.Second)
	if !errors.Is(err, source.ErrStreamNotFound) {
		t.Fatalf("err = %v, want ErrStreamNotFound", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("rejection took %v, want immediate", d)
	}
}

func TestProbeUnknownPathHeldLikeNginx(t *testing.T) {
	t.Parallel()
	srv := startServer(t, true)
	start := time.Now()
	err := source.Probe(context.Background(), "rtmp", "rtmp://"+srv.ListenAddr()+"/live/nobody", 2*time.Second)
	if !errors.Is(err, source.ErrStreamNotFound) {
		t.Fatalf("err = %v, want ErrStreamNotFound", err)
	}
	if d := time.Since(start); d < 1900*time.Millisecond || d > 3*time.Second {
		t.Errorf("probe took %v, want about the 2 s timeout", d)
	}
}

func TestProbeClosedPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	err = source.Probe(context.Background(), "rtmp", "rtmp://"+addr+"/live/x", 5*time.Second)
	if !errors.Is(err, source.ErrStreamNotFound) {
		t.Fatalf("err = %v, want ErrStreamNotFound", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v, want fast", d)
	}
}

func TestOpenAudioOnlyIsNoVideo(t *testing.T) {
	t.Parallel()
	srv := startServer(t, false)
	url := "rtmp://" + srv.ListenAddr() + "/live/radio"
	rtmptest.PublishClip(t, url, "0:a")
	waitPublished(t, srv, "live/radio")
	_, err := source.Open(context.Background(), "rtmp", url, source.Options{})
	if !errors.Is(err, source.ErrNoVideo) {
		t.Fatalf("err = %v, want ErrNoVideo", err)
	}
	t.Logf("audio only: %v", err)
}

func TestOpenUnsupportedType(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"webrtc", "RTMP", ""} {
		_, err := source.Open(context.Background(), typ, "rtsp://127.0.0.1/x", source.Options{})
		if !errors.Is(err, source.ErrUnsupported) {
			t.Errorf("%q: err = %v, want ErrUnsupported", typ, err)
		}
	}
	_, err := source.Open(context.Background(), "rtmp", "http://127.0.0.1/live/x", source.Options{})
	if !errors.Is(err, source.ErrInvalidURL) {
		t.Errorf("http URL: err = %v, want ErrInvalidURL", err)
	}
}

// readUntilError drains buffered units and returns the first error and when it came.
func readUntilError(st source.Stream) (error, time.Time) {
	for {
		if _, err := st.Read(); err != nil {
			return err, time.Now()
		}
	}
}

func TestReadStallCloseAndCancel(t *testing.T) {
	t.Parallel()
	srv := startServer(t, false)
	url := "rtmp://" + srv.ListenAddr() + "/live/stall"
	ff := rtmptest.PublishClip(t, url, "0:v", "0:a")
	waitPublished(t, srv, "live/stall")

	stalled := open(t, context.Background(), url, source.Options{ReadTimeout: 2 * time.Second})
	closed := open(t, context.Background(), url, source.Options{ReadTimeout: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelled := open(t, ctx, url, source.Options{ReadTimeout: 30 * time.Second})
	for _, st := range []source.Stream{stalled, closed, cancelled} {
		if _, err := st.Read(); err != nil {
			t.Fatal(err)
		}
	}

	// The publisher keeps its TCP connection but sends nothing more.
	if err := ff.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()

	type result struct {
		err error
		at  time.Time
	}
	res := make([]chan result, 3)
	for i, st := range []source.Stream{stalled, closed, cancelled} {
		res[i] = make(chan result, 1)
		go func() {
			err, at := readUntilError(st)
			res[i] <- result{err, at}
		}()
	}

	r := <-res[0]
	if !errors.Is(r.err, source.ErrStalled) {
		t.Errorf("stalled: err = %v, want ErrStalled", r.err)
	}
	if d := r.at.Sub(stoppedAt); d > 3*time.Second {
		t.Errorf("stalled: ErrStalled after %v, want <= ~2 s", d)
	}

	closeAt := time.Now()
	closed.Close()
	closed.Close() // idempotent
	r = <-res[1]
	if !errors.Is(r.err, source.ErrClosed) {
		t.Errorf("closed: err = %v, want ErrClosed", r.err)
	}
	if d := r.at.Sub(closeAt); d > 500*time.Millisecond {
		t.Errorf("Close unblocked Read after %v", d)
	}

	cancelAt := time.Now()
	cancel()
	r = <-res[2]
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", r.err)
	}
	if d := r.at.Sub(cancelAt); d > 500*time.Millisecond {
		t.Errorf("cancel unblocked Read after %v", d)
	}
}

func TestPublisherLeavesAndReturns(t *testing.T) {
	t.Parallel()
	srv := startServer(t, false)
	url := "rtmp://" + srv.ListenAddr() + "/live/again"
	ff := rtmptest.PublishClip(t, url, "0:v", "0:a")
	waitPublished(t, srv, "live/again")

	st := open(t, context.Background(), url, source.Options{})
	if _, err := st.Read(); err != nil {
		t.Fatal(err)
	}
	if err := ff.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	err, at := readUntilError(st)
	if !errors.Is(err, source.ErrEnded) {
		t.Errorf("err = %v, want ErrEnded", err)
	}
	if d := at.Sub(killedAt); d > 2*time.Second {
		t.Errorf("Read failed %v after the publisher left", d)
	}

	rtmptest.PublishClip(t, url, "0:v", "0:a")
	waitPublished(t, srv, "live/again")
	if err := source.Probe(context.Background(), "rtmp", url, 10*time.Second); err != nil {
		t.Fatalf("probe after republish: %v", err)
	}
}
