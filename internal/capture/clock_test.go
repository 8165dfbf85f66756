package capture

import (
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/media"
)

func unit(dts time.Duration, at time.Time) media.AccessUnit {
	return media.AccessUnit{DTS: dts, PTS: dts, Received: at}
}

// A new player gets 3 s of cached pictures at once, then live ones: the cached pictures are
// stamped with the time they were live, 3 s ago, not with their arrival.
func TestClockStampsABurstWithItsRealAge(t *testing.T) {
	var c Clock
	now := t0
	var out []media.AccessUnit
	for i := 0; i < 75; i++ { // 3 s at 25 fps arriving within 75 ms
		out = append(out, c.Push(unit(time.Duration(i)*40*time.Millisecond, now.Add(time.Duration(i)*time.Millisecond)))...)
	}
	if len(out) != 0 {
		t.Fatalf("%d units released during the burst", len(out))
	}
	// Live from here: frame 75 arrives 40 ms after frame 74 was due.
	for i := 75; i < 100; i++ {
		at := now.Add(74*time.Millisecond + time.Duration(i-74)*40*time.Millisecond)
		out = append(out, c.Push(unit(time.Duration(i)*40*time.Millisecond, at))...)
	}
	if len(out) != 100 {
		t.Fatalf("released %d of 100", len(out))
	}
	first, last := out[0].Received, out[99].Received
	if age := out[74].Received.Sub(first); age < 2900*time.Millisecond || age > 3000*time.Millisecond {
		t.Fatalf("the burst spans %v of stream time; stamped %v apart", 74*40*time.Millisecond, age)
	}
	if !first.Before(now.Add(-2 * time.Second)) {
		t.Fatalf("the oldest cached picture is stamped %v, want about 3 s before its arrival %v", first, now)
	}
	if d := now.Add(74*time.Millisecond + 25*40*time.Millisecond).Sub(last); d < 0 || d > 50*time.Millisecond {
		t.Fatalf("live pictures are stamped at arrival: off by %v", d)
	}
}

// Live units are released at once, stamped no later than their arrival, and jitter does not
// move pictures into the future.
func TestClockLiveAndJitter(t *testing.T) {
	var c Clock
	for i := 0; i < 50; i++ {
		jitter := time.Duration(i%3) * 7 * time.Millisecond
		at := t0.Add(time.Duration(i)*40*time.Millisecond + jitter)
		out := c.Push(unit(time.Duration(i)*40*time.Millisecond, at))
		if i > 1 && len(out) != 1 {
			t.Fatalf("unit %d: released %d", i, len(out))
		}
		for _, u := range out {
			if u.Received.After(at) {
				t.Fatal("stamped after its arrival")
			}
		}
	}
}

// Timestamps that restart (a publisher reconnecting on the same connection) re-anchor the clock.
func TestClockTimestampReset(t *testing.T) {
	var c Clock
	for i := 0; i < 10; i++ {
		c.Push(unit(time.Hour+time.Duration(i)*40*time.Millisecond, t0.Add(time.Duration(i)*40*time.Millisecond)))
	}
	at := t0.Add(time.Second)
	out := c.Push(unit(0, at))
	if len(out) != 1 || out[0].Received.Sub(at).Abs() > time.Millisecond {
		t.Fatalf("after a reset: %+v", out)
	}
}
