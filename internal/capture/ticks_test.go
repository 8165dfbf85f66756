package capture

import (
	"testing"
	"time"
)

func TestTicksRealTimeStreamPassesStraightThrough(t *testing.T) {
	var q Ticks
	t0 := time.Unix(1000, 0)
	q.Observe(t0, t0)
	q.Add(t0)
	if due := q.Due(t0, time.Time{}); len(due) != 1 || !due[0].Equal(t0) {
		t.Fatalf("due %v, want the tick at once", due)
	}
}

func TestTicksWaitForALateStream(t *testing.T) {
	var q Ticks
	t0 := time.Unix(1000, 0)
	q.Observe(t0.Add(6*time.Second), t0) // pictures arrive 6 s after they were live
	tick := t0.Add(4 * time.Second)
	q.Add(tick)
	if due := q.Due(tick, time.Time{}); len(due) != 0 {
		t.Fatalf("tick released before the stream caught up: %v", due)
	}
	// A picture live just before the tick arrives: still the previous window.
	if due := q.Due(tick.Add(5*time.Second), tick.Add(-time.Millisecond)); len(due) != 0 {
		t.Fatalf("released by a picture of the previous window: %v", due)
	}
	// The first picture live at or after the tick arrives: the previous window is over.
	if due := q.Due(tick.Add(6*time.Second), tick); len(due) != 1 {
		t.Fatalf("due %v, want the tick", due)
	}
}

func TestTicksStalledStreamStillGetsItsTicks(t *testing.T) {
	var q Ticks
	t0 := time.Unix(1000, 0)
	q.Observe(t0.Add(3*time.Second), t0)
	q.Add(t0)
	q.Add(t0.Add(4 * time.Second))
	due := q.Due(t0.Add(3*time.Second), time.Time{})
	if len(due) != 1 || !due[0].Equal(t0) {
		t.Fatalf("due %v, want the first tick once the delay passed", due)
	}
	if due := q.Due(t0.Add(7*time.Second), time.Time{}); len(due) != 1 {
		t.Fatalf("due %v, want the second tick", due)
	}
}

func TestTicksWaitWhileTheDelayIsUnknown(t *testing.T) {
	var q Ticks
	t0 := time.Unix(1000, 0)
	q.Add(t0)
	if due := q.Due(t0.Add(10*time.Second), time.Time{}); len(due) != 0 {
		t.Fatalf("released before any unit came out of the Clock: %v", due)
	}
	if due := q.Due(t0.Add(MaxTickDelay), time.Time{}); len(due) != 1 {
		t.Fatalf("due %v, want the tick after MaxTickDelay", due)
	}
}

func TestTicksBounded(t *testing.T) {
	var q Ticks
	t0 := time.Unix(1000, 0)
	q.Observe(t0.Add(time.Hour), t0)
	if q.delay != MaxTickDelay {
		t.Fatalf("delay %v, want the bound %v", q.delay, MaxTickDelay)
	}
	for i := range maxQueuedTicks + 5 {
		q.Add(t0.Add(time.Duration(i) * time.Second))
	}
	if due := q.Due(t0, time.Time{}); len(due) != 5 {
		t.Fatalf("%d ticks released, want the 5 beyond the bound", len(due))
	}
}
