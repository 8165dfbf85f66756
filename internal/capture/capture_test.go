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

// intraRefreshUnit is picture i of an intra-refresh stream: an IDR first, then a recovery
// point every gop pictures whose pictures are clean recovery pictures later.
func intraRefreshUnit(i, fps, gop, recovery int) media.AccessUnit {
	frameDur := time.Second / time.Duration(fps)
	u := media.AccessUnit{Codec: media.CodecH264, PTS: time.Duration(i) * frameDur, Received: t0.Add(time.Duration(i) * frameDur),
		NALUs: [][]byte{make([]byte, 1000)}}
	if i%gop == 0 {
		u.Keyframe = true
		if i > 0 {
			u.RecoveryFrames = recovery
		}
	}
	return u
}

// feed runs p over n pictures from unit, with ticks every p.Interval from t0.
func feed(p *Picker, n int, unit func(i int) media.AccessUnit) result {
	var res result
	p.Start(t0)
	nextTick := t0.Add(p.Interval)
	for i := 0; i < n; i++ {
		u := unit(i)
		for !nextTick.After(u.Received) {
			r, m := p.Tick(nextTick)
			if r != nil {
				res.reqs = append(res.reqs, r)
			}
			if m != nil {
				res.misses = append(res.misses, m)
			}
			nextTick = nextTick.Add(p.Interval)
		}
		if r := p.Unit(u); r != nil {
			res.reqs = append(res.reqs, r)
		}
	}
	return res
}

// Both policies serve intra-refresh streams: a request starts at a recovery point and its
// picture is one the refresh has made clean.
func TestIntraRefresh(t *testing.T) {
	const fps, gop, recovery = 25, 50, 18
	for _, policy := range []Policy{Keyframe, Exact} {
		t.Run(string(policy), func(t *testing.T) {
			p := &Picker{Policy: policy, Interval: 5 * time.Second}
			res := feed(p, 30*fps, func(i int) media.AccessUnit { return intraRefreshUnit(i, fps, gop, recovery) })
			if len(res.misses) != 0 || len(res.reqs) < 5 {
				t.Fatalf("%d requests, %d misses in 30 s at 5 s", len(res.reqs), len(res.misses))
			}
			for _, r := range res.reqs {
				first, pic := r.Units[0], r.Picture()
				if !first.Keyframe {
					t.Fatal("a request must start at a recovery point")
				}
				if first.RecoveryFrames > 0 && len(r.Units) <= first.RecoveryFrames {
					t.Fatalf("picture %d units after the recovery point, before it is clean (%d)", len(r.Units)-1, first.RecoveryFrames)
				}
				switch policy {
				case Keyframe:
					if pic.Received.Before(r.Tick) || pic.Received.Sub(r.Tick) > 2*time.Second+recovery*time.Second/fps {
						t.Fatalf("tick %v took the picture of %v", r.Tick, pic.Received)
					}
				case Exact:
					if d := pic.Received.Sub(r.Tick); first.RecoveryFrames == 0 && (d < -40*time.Millisecond || d > 40*time.Millisecond) {
						t.Fatalf("exact picture %v from its tick", d)
					}
				}
			}
		})
	}
}

// A tick whose picture turns out damaged is served by the next clean picture before the
// next tick, or else missed with the damage as the reason; never served twice.
func TestRetryAfterDamagedPicture(t *testing.T) {
	p := &Picker{Policy: Keyframe, Interval: 5 * time.Second}
	var reqs []*Request
	var misses []*Miss
	failed := map[time.Time]bool{}
	// A 2 s GOP of IDRs; the first attempt of every tick fails.
	p.Start(t0)
	nextTick := t0.Add(p.Interval)
	handle := func(r *Request) {
		if r == nil {
			return
		}
		if !failed[r.Tick] {
			failed[r.Tick] = true
			if m := p.Retry(r, "decode_failed"); m != nil {
				misses = append(misses, m)
			}
			return
		}
		reqs = append(reqs, r)
	}
	for i := 0; i < 20*25; i++ {
		u := intraRefreshUnit(i, 25, 50, 0)
		for !nextTick.After(u.Received) {
			r, m := p.Tick(nextTick)
			handle(r)
			if m != nil {
				misses = append(misses, m)
			}
			nextTick = nextTick.Add(p.Interval)
		}
		handle(p.Unit(u))
	}
	if len(misses) != 0 {
		t.Fatalf("misses %+v: a 2 s GOP leaves time to retry within a 5 s interval", misses)
	}
	seen := map[time.Time]bool{}
	for _, r := range reqs {
		if seen[r.Tick] {
			t.Fatalf("tick %v served twice", r.Tick)
		}
		seen[r.Tick] = true
		if d := r.Picture().Received.Sub(r.Tick); d < 2*time.Second-40*time.Millisecond {
			t.Fatalf("retry of %v took a picture %v after it: not the next GOP", r.Tick, d)
		}
	}
	if len(reqs) < 3 {
		t.Fatalf("%d retried requests served", len(reqs))
	}

	// With a GOP as long as the interval there is no time to retry: a miss, with the reason.
	p = &Picker{Policy: Keyframe, Interval: 2 * time.Second}
	p.Start(t0)
	r := p.Unit(intraRefreshUnit(0, 25, 50, 0))
	if r == nil {
		t.Fatal("no request for the first keyframe")
	}
	if m := p.Retry(r, "decode_failed"); m != nil {
		t.Fatalf("retry refused while no newer tick is pending: %+v", m)
	}
	if _, m := p.Tick(t0.Add(2 * time.Second)); m == nil || m.Reason != "decode_failed" || !m.Tick.Equal(t0) {
		t.Fatalf("miss %+v, want the first tick missed as decode_failed", m)
	}
}

// A source that honours NeedsAllUnits (as RTMP's KeyframesOnly does, from the next unit on):
// pictures that are not keyframes come Skipped whenever the picker said it did not need them.
func skippingSource(p *Picker, fps int, gopAt func(i int) bool) func(i int) media.AccessUnit {
	frameDur := time.Second / time.Duration(fps)
	return func(i int) media.AccessUnit {
		u := media.AccessUnit{Codec: media.CodecH264, PTS: time.Duration(i) * frameDur, Received: t0.Add(time.Duration(i) * frameDur),
			Keyframe: gopAt(i)}
		if !u.Keyframe && !p.NeedsAllUnits() {
			u.Skipped = true
		} else {
			u.NALUs = [][]byte{make([]byte, 1000)}
		}
		return u
	}
}

func checkNoSkipped(t *testing.T, res result) {
	t.Helper()
	for _, r := range res.reqs {
		for _, u := range r.Units {
			if u.Skipped || len(u.NALUs) == 0 {
				t.Fatalf("request for tick %v holds a unit without data", r.Tick)
			}
		}
	}
}

// Under the keyframe policy the picker needs every unit only until it knows the GOP fits in
// the interval; then keyframes alone serve every tick.
func TestKeyframePolicyNeedsOnlyKeyframesOnceGOPIsKnown(t *testing.T) {
	p := &Picker{Policy: Keyframe, Interval: 5 * time.Second}
	if !p.NeedsAllUnits() {
		t.Fatal("the picker does not need every unit before it knows the GOP")
	}
	res := feed(p, 25*30, skippingSource(p, 25, func(i int) bool { return i%50 == 0 }))
	if p.NeedsAllUnits() {
		t.Error("the picker still needs every unit of a 2 s GOP stream at a 5 s interval")
	}
	if len(res.misses) != 0 || len(res.reqs) != 6 {
		t.Fatalf("%d requests, %d misses; want 6 and 0", len(res.reqs), len(res.misses))
	}
	checkNoSkipped(t, res)

	for _, policy := range []Policy{Exact} {
		p := &Picker{Policy: policy, Interval: 5 * time.Second}
		feed(p, 25*10, skippingSource(p, 25, func(i int) bool { return i%50 == 0 }))
		if !p.NeedsAllUnits() {
			t.Errorf("%s: the picker does not need every unit", policy)
		}
	}
}

// When the GOP grows past the interval, the GOP during which the picker learns it was read
// without its pictures: its ticks are missed, never served from units without data; from the
// next GOP on the fallback serves them again.
func TestKeyframePolicyGOPGrowsPastInterval(t *testing.T) {
	p := &Picker{Policy: Keyframe, Interval: 5 * time.Second}
	// 2 s GOPs for 10 s, then 12 s GOPs: keyframes at 10, 22, 34, 46 and 58 s. The tick at
	// 15 s needs the fallback at 20 s in the GOP from 10 s, read without its pictures.
	key := func(i int) bool { return (i < 250 && i%50 == 0) || (i >= 250 && (i-250)%300 == 0) }
	res := feed(p, 25*60, skippingSource(p, 25, key))
	checkNoSkipped(t, res)
	if !p.NeedsAllUnits() {
		t.Error("the picker does not need every unit of a 12 s GOP stream at a 5 s interval")
	}
	if len(res.misses) != 1 || !res.misses[0].Tick.Equal(t0.Add(15*time.Second)) || res.misses[0].Reason != MissNoKeyframe {
		for _, m := range res.misses {
			t.Logf("missed %v: %s", m.Tick.Sub(t0), m.Reason)
		}
		t.Fatal("want exactly the tick at 15 s missed")
	}
	late := 0
	for _, r := range res.reqs {
		if r.Tick.After(t0.Add(20 * time.Second)) {
			late++
		}
	}
	if late < 7 {
		t.Errorf("%d ticks served after the GOP change settled, want >= 7 of 8", late)
	}
}
