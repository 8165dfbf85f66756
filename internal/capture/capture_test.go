package capture

import (
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/media"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// stream simulates a live stream: fps pictures per second, a keyframe every gop pictures,
// ticks every interval from t0; it returns what the picker asked for, in order.
type result struct {
	reqs   []*Request
	misses []*Miss
}

func run(p *Picker, fps int, gop int, seconds float64, skipKeys map[int]bool) result {
	var res result
	frameDur := time.Second / time.Duration(fps)
	p.Start(t0)
	nextTick := t0.Add(p.Interval)
	n := int(seconds * float64(fps))
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i) * frameDur)
		for !nextTick.After(at) {
			r, m := p.Tick(nextTick)
			if r != nil {
				res.reqs = append(res.reqs, r)
			}
			if m != nil {
				res.misses = append(res.misses, m)
			}
			nextTick = nextTick.Add(p.Interval)
		}
		u := media.AccessUnit{Codec: media.CodecH264, PTS: time.Duration(i) * frameDur, Received: at,
			Keyframe: i%gop == 0 && !skipKeys[i], NALUs: [][]byte{make([]byte, 1000)}}
		if r := p.Unit(u); r != nil {
			res.reqs = append(res.reqs, r)
		}
	}
	return res
}

func TestKeyframePolicyTakesFirstKeyframeAtOrAfterTick(t *testing.T) {
	p := &Picker{Policy: Keyframe, Interval: 5 * time.Second}
	res := run(p, 25, 50, 30, nil) // 2 s GOP, 30 s
	if len(res.misses) != 0 || len(res.reqs) != 6 {
		t.Fatalf("%d requests, %d misses; want 6 and 0", len(res.reqs), len(res.misses))
	}
	for i, r := range res.reqs {
		tick := t0.Add(time.Duration(i) * 5 * time.Second)
		pic := r.Picture()
		if len(r.Units) != 1 || !pic.Keyframe || pic.Received.Before(tick) || pic.Received.Sub(tick) >= 2*time.Second {
			t.Fatalf("tick %v took %+v (%d units)", tick, pic.Received, len(r.Units))
		}
	}
	if p.BufferedBytes() != 0 {
		t.Fatalf("a short-GOP stream under the keyframe policy buffers %d bytes", p.BufferedBytes())
	}
}

func TestKeyframePolicyFallsBackOnLongGOP(t *testing.T) {
	p := &Picker{Policy: Keyframe, Interval: 5 * time.Second}
	res := run(p, 25, 250, 60, nil) // 10 s GOP, 5 s interval, 60 s
	if len(res.misses) != 0 {
		t.Fatalf("misses with a long GOP: %+v", res.misses)
	}
	if len(res.reqs) < 11 {
		t.Fatalf("%d snapshots in 60 s at 5 s", len(res.reqs))
	}
	seen := map[time.Duration]bool{}
	for _, r := range res.reqs {
		pic := r.Picture()
		if seen[pic.PTS] {
			t.Fatalf("picture %v served two ticks", pic.PTS)
		}
		seen[pic.PTS] = true
		if !r.Units[0].Keyframe {
			t.Fatal("a request must start at a keyframe")
		}
		if d := pic.Received.Sub(r.Tick); d < -40*time.Millisecond || d > 40*time.Millisecond {
			if !pic.Keyframe {
				t.Fatalf("fallback picture %v is %v from its tick", pic.Received, d)
			}
		}
	}
}

func TestExactPolicyTakesPictureNearestTick(t *testing.T) {
	p := &Picker{Policy: Exact, Interval: 3 * time.Second}
	res := run(p, 25, 100, 20, nil) // 4 s GOP, 3 s interval
	if len(res.misses) != 0 || len(res.reqs) != 7 {
		t.Fatalf("%d requests, %d misses", len(res.reqs), len(res.misses))
	}
	for _, r := range res.reqs {
		if d := r.Picture().Received.Sub(r.Tick); d < -20*time.Millisecond || d > 20*time.Millisecond {
			t.Fatalf("exact picture %v from tick %v", d, r.Tick)
		}
		if !r.Units[0].Keyframe {
			t.Fatal("decode must start at a keyframe")
		}
		for i := 1; i < len(r.Units); i++ {
			if r.Units[i].Keyframe {
				t.Fatal("a request holds one GOP only")
			}
		}
	}
}

func TestMissWhenNoKeyframe(t *testing.T) {
	// Keyframes every 2 s but two in a row lost: the ticks they would serve are missed once,
	// never made up later by a burst.
	p := &Picker{Policy: Keyframe, Interval: 2 * time.Second}
	res := run(p, 10, 20, 12, map[int]bool{40: true, 60: true})
	if len(res.misses) == 0 {
		t.Fatal("want a miss")
	}
	perTick := map[time.Time]int{}
	for _, r := range res.reqs {
		perTick[r.Tick]++
	}
	for tick, n := range perTick {
		if n > 1 {
			t.Fatalf("tick %v served %d times", tick, n)
		}
	}
}

func TestGOPBufferIsBounded(t *testing.T) {
	p := &Picker{Policy: Exact, Interval: 5 * time.Second, MaxGOPBytes: 50_000}
	res := run(p, 25, 1000, 20, nil) // one 40 s GOP, 1000 bytes a unit
	if p.BufferedBytes() > 50_000 {
		t.Fatalf("buffer %d over its bound", p.BufferedBytes())
	}
	for _, r := range res.reqs {
		if !r.Units[0].Keyframe {
			t.Fatal("after overflow no request may start without a keyframe")
		}
	}
	if len(res.misses) == 0 {
		t.Fatal("ticks after the overflow must be misses")
	}
}
