package source_test

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/livesnap/livesnap/internal/media"
	"github.com/livesnap/livesnap/internal/rtmpserver/rtmptest"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/source/sourcetest"
)

// openFFmpegRTMP opens a clip served by ffmpeg as an RTMP server, on the direct read path.
func openFFmpegRTMP(t *testing.T, c *sourcetest.Clip) source.Stream {
	t.Helper()
	srv := sourcetest.RTMPServer(t, c)
	srv.WaitReady(t)
	st := open(t, context.Background(), srv.URL, source.Options{})
	if !source.ReadsDirectly(st) {
		t.Fatal("the stream is not on the direct read path")
	}
	return st
}

// An RTMP server other than gortmplib's (ffmpeg: 4096-byte chunks, audio between the video
// chunks) read on the direct path.
func TestRTMPDirectFromFFmpegServer(t *testing.T) {
	t.Parallel()
	c := sourcetest.Make(t, sourcetest.H264) // with B-pictures: PTS is not in decoding order
	st := openFFmpegRTMP(t, c)
	keys := 0
	var lastDTS time.Duration
	for n := 0; keys < 3; n++ {
		au, err := st.Read()
		if err != nil {
			t.Fatalf("read after %d units: %v", n, err)
		}
		if au.Codec != media.CodecH264 || au.Received.IsZero() || len(au.NALUs) == 0 || au.Skipped {
			t.Fatalf("bad unit %d: codec %v received %v nalus %d skipped %v", n, au.Codec, au.Received, len(au.NALUs), au.Skipped)
		}
		if n > 0 && au.DTS <= lastDTS {
			t.Fatalf("unit %d: DTS %v not after %v", n, au.DTS, lastDTS)
		}
		if au.PTS < au.DTS {
			t.Fatalf("unit %d: PTS %v before DTS %v", n, au.PTS, au.DTS)
		}
		lastDTS = au.DTS
		if au.Keyframe {
			if !hasTypes(media.CodecH264, au, 7, 8, 5) {
				t.Fatalf("keyframe %d lacks SPS/PPS/IDR", keys)
			}
			c.CheckKeyframe(t, sourcetest.DecodeKeyframe(t, au))
			keys++
		}
	}
}

// With keyframes only, keyframes come whole and decode to the right picture; the pictures
// between them come as timing only; switched off, they come whole again at once.
func TestRTMPKeyframesOnly(t *testing.T) {
	t.Parallel()
	c := sourcetest.Make(t, sourcetest.H264)
	st := openFFmpegRTMP(t, c)
	ko, ok := st.(source.KeyframesOnly)
	if !ok {
		t.Fatal("an RTMP stream does not implement KeyframesOnly")
	}
	ko.SetKeyframesOnly(true)
	keys, skipped := 0, 0
	var lastDTS time.Duration
	afterKey := false
	for n := 0; keys < 3; n++ {
		au, err := st.Read()
		if err != nil {
			t.Fatalf("read after %d units: %v", n, err)
		}
		if n > 0 && au.DTS <= lastDTS {
			t.Fatalf("unit %d: DTS %v not after %v", n, au.DTS, lastDTS)
		}
		lastDTS = au.DTS
		switch {
		case au.Keyframe:
			if au.Skipped || !hasTypes(media.CodecH264, au, 7, 8, 5) {
				t.Fatalf("keyframe %d: skipped %v, %d NAL units", keys, au.Skipped, len(au.NALUs))
			}
			c.CheckKeyframe(t, sourcetest.DecodeKeyframe(t, au))
			keys++
			afterKey = true
			continue
		case afterKey:
			// The stream turned keyframes-only off at the keyframe: this one is whole, and
			// the consumer, having seen the keyframe, turns it on again.
			if au.Skipped || len(au.NALUs) == 0 {
				t.Fatalf("unit %d after a keyframe came skipped", n)
			}
			ko.SetKeyframesOnly(true)
		case skipped == 0 && !au.Skipped:
			// Units of track discovery, which gortmplib's reader replays, come whole.
		case !au.Skipped || len(au.NALUs) != 0 || au.Received.IsZero():
			t.Fatalf("unit %d: skipped %v, %d NAL units, received %v; want timing only", n, au.Skipped, len(au.NALUs), au.Received)
		default:
			skipped++
		}
		afterKey = false
	}
	if skipped < sourcetest.FPS {
		t.Errorf("%d pictures skipped in 3 GOPs of 2 s, want >= %d", skipped, sourcetest.FPS)
	}

	ko.SetKeyframesOnly(false)
	for n := 0; n < 30; n++ {
		au, err := st.Read()
		if err != nil {
			t.Fatal(err)
		}
		if au.Skipped || len(au.NALUs) == 0 {
			t.Fatalf("unit %d after keyframes only was switched off: skipped %v, %d NAL units", n, au.Skipped, len(au.NALUs))
		}
	}
}

// An intra-refresh stream's recovery points (P pictures with a recovery point SEI, its only
// entry points) come whole with keyframes only.
func TestRTMPKeyframesOnlyKeepsRecoveryPoints(t *testing.T) {
	t.Parallel()
	sourcetest.NeedFFmpeg(t)
	path := filepath.Join(t.TempDir(), "intra-refresh.mkv")
	ff := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-x264-params", "keyint=50:intra-refresh=1",
		"-pix_fmt", "yuv420p", path)
	if out, err := ff.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	st := openFFmpegRTMP(t, &sourcetest.Clip{Path: path})
	st.(source.KeyframesOnly).SetKeyframesOnly(true)
	recoveries, skipped := 0, 0
	for n := 0; recoveries < 3; n++ {
		if n > 400 {
			t.Fatalf("%d recovery points in %d units", recoveries, n)
		}
		au, err := st.Read()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case au.Keyframe && au.RecoveryFrames > 0:
			if au.Skipped || len(au.NALUs) == 0 {
				t.Fatalf("recovery point %d came without its data", recoveries)
			}
			recoveries++
			st.(source.KeyframesOnly).SetKeyframesOnly(true) // the stream turned it off here
		case au.Skipped:
			skipped++
		}
	}
	if skipped == 0 {
		t.Error("no picture was skipped")
	}
}

// ackServer plays aus (H.264, the first with SPS/PPS) to one client as fast as it reads, after
// asking for an acknowledgement every window bytes, and pings the client (user control event
// 6) every 50 pictures; it returns what the client sent back and the bytes it sent when the
// client went away.
func ackServer(t *testing.T, window uint32, aus [][][]byte) (url string, result func() ackResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var res ackResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		sc := &gortmplib.ServerConn{RW: c}
		if sc.Initialize() != nil || sc.AcceptConn() != nil {
			return
		}
		var sps, pps []byte
		for _, n := range aus[0] {
			switch n[0] & 0x1f {
			case 7:
				sps = n
			case 8:
				pps = n
			}
		}
		track := &gortmplib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}}
		w := &gortmplib.Writer{Conn: sc, Tracks: []*gortmplib.Track{track}}
		if w.Initialize() != nil || sc.Write(&message.SetWindowAckSize{Value: window}) != nil {
			return
		}
		readerDone := make(chan struct{})
		defer func() {
			// Every acknowledgement the client sent before it left is read before its FIN.
			select {
			case <-readerDone:
			case <-time.After(5 * time.Second):
			}
		}()
		go func() {
			defer close(readerDone)
			for {
				m, err := sc.Read()
				if err != nil {
					return
				}
				mu.Lock()
				switch m := m.(type) {
				case *message.Acknowledge:
					res.acks = append(res.acks, m.Value)
				case *message.UserControlPingResponse:
					res.pongs = append(res.pongs, m.ServerTime)
				}
				mu.Unlock()
			}
		}()
		for i := 0; ; i++ {
			pts := time.Duration(i) * 40 * time.Millisecond
			err := w.WriteH264(track, pts, pts, aus[i%len(aus)])
			if err == nil && i%50 == 49 {
				if err = sc.Write(&message.UserControlPingRequest{ServerTime: uint32(1000 + i)}); err == nil {
					mu.Lock()
					res.pings = append(res.pings, uint32(1000+i))
					mu.Unlock()
				}
			}
			if err != nil {
				mu.Lock()
				res.sent = sc.BytesSent()
				mu.Unlock()
				return
			}
			time.Sleep(time.Millisecond) // faster than live, not faster than the client reads
		}
	}()
	return "rtmp://" + ln.Addr().String() + "/live/s", func() ackResult {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return res
	}
}

// ackResult is what ackServer's client sent back.
type ackResult struct {
	acks         []uint32 // acknowledged byte counts
	pings, pongs []uint32 // times of the pings sent, of the ping responses received
	sent         uint64   // bytes sent
}

// The direct path acknowledges what it received as the server's window asks, and a window of
// one byte gets at most one acknowledgement per chunk, not one per byte.
func TestRTMPDirectAcknowledges(t *testing.T) {
	t.Parallel()
	aus := rtmptest.EncodeAnnexB(t, "h264", 2, 25, 25)
	for _, window := range []uint32{20000, 1} {
		url, result := ackServer(t, window, aus)
		st := open(t, context.Background(), url, source.Options{})
		if !source.ReadsDirectly(st) {
			t.Fatal("the stream is not on the direct read path")
		}
		units := 0
		for ; units < 300; units++ {
			if _, err := st.Read(); err != nil {
				t.Fatalf("window %d: read %d: %v", window, units, err)
			}
		}
		if !source.ReleasedSetup(st) {
			t.Error("gortmplib's client and reader are still held after the takeover")
		}
		st.Close()
		r := result()
		acks, sent := r.acks, r.sent
		// Pings the client saw are answered in order with their time, by whichever path read
		// them; the last one may have been sent as the client left.
		if len(r.pings) < 5 || len(r.pongs) < len(r.pings)-1 {
			t.Errorf("window %d: %d ping responses to %d pings", window, len(r.pongs), len(r.pings))
		}
		for i, p := range r.pongs {
			if i >= len(r.pings) || p != r.pings[i] {
				t.Errorf("window %d: ping response %d is for time %d, pings were %v", window, i, p, r.pings)
				break
			}
		}
		if len(acks) == 0 {
			t.Fatalf("window %d: no acknowledgement for %d bytes", window, sent)
		}
		// One acknowledgement after each chunk that takes the unacknowledged bytes past the
		// window: consecutive ones are less than a window and a chunk apart (gortmplib's server
		// sends chunks of 65536 bytes), and not much less than a window (gortmplib's reader,
		// which counts windows rather than bytes, and the handover make some gaps shorter).
		for i := 1; i < len(acks) && window > 1; i++ {
			if d := acks[i] - acks[i-1]; d < window/2 || d > window+65536+18 {
				t.Fatalf("window %d: acknowledgements %d and %d are %d bytes apart", window, acks[i-1], acks[i], d)
			}
		}
		if window > 1 && len(acks) < 10 {
			t.Errorf("window %d: %d acknowledgements for %d units read (%d bytes sent)", window, len(acks), units, sent)
		}
		if window == 1 && len(acks) > 2*units+100 {
			t.Errorf("window 1: %d acknowledgements for %d units read", len(acks), units)
		}
	}
}
