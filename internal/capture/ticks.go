package capture

import "time"

// MaxTickDelay bounds how long Ticks holds a tick back for a late stream.
const MaxTickDelay = 30 * time.Second

// maxQueuedTicks bounds the ticks held back (beyond it the oldest are released at once).
const maxQueuedTicks = 64

// Ticks hands wall-clock ticks to a Picker once the stream has caught up with them.
//
// A source that delivers pictures late (HLS: a segment arrives a segment or more after its
// first picture was live) has its units stamped by the Clock with when they were live. A tick
// given to the Picker at once would be closed, as a miss, before the pictures of its moment
// arrive. So a tick is held until the window of the tick before it, [previous, tick), is
// over: a picture stamped at or after the tick has arrived, or, for a stream that stopped
// delivering, the wall clock is past the tick by the longest delivery delay seen (until the
// first unit comes out of the Clock the delay is unknown, so MaxTickDelay). For a stream
// delivered in real time the delay is about zero and ticks pass straight through.
type Ticks struct {
	queue    []time.Time
	delay    time.Duration // longest arrival − stamp seen, at most MaxTickDelay
	observed bool
}

// Add queues a wall-clock tick.
func (q *Ticks) Add(t time.Time) { q.queue = append(q.queue, t) }

// Observe records one unit's delivery delay: its arrival and the Clock's stamp.
func (q *Ticks) Observe(arrival, stamp time.Time) {
	q.observed = true
	if d := arrival.Sub(stamp); d > q.delay {
		q.delay = min(d, MaxTickDelay)
	}
}

// Due returns the queued ticks to give to the Picker now, oldest first: now is the wall
// clock, stamp the stamp of the unit about to be given to the Picker (zero if none).
func (q *Ticks) Due(now, stamp time.Time) []time.Time {
	delay := q.delay
	if !q.observed {
		delay = MaxTickDelay
	}
	n := 0
	for n < len(q.queue) {
		t := q.queue[n]
		if len(q.queue)-n <= maxQueuedTicks && stamp.Before(t) && now.Before(t.Add(delay)) {
			break
		}
		n++
	}
	if n == 0 {
		return nil
	}
	due := append([]time.Time(nil), q.queue[:n]...)
	q.queue = append(q.queue[:0], q.queue[n:]...)
	return due
}
