package capture

import (
	"time"

	"github.com/livesnap/livesnap/internal/media"
)

// Clock gives each unit the wall-clock time its picture was live, from its stream timestamp,
// so that pictures delivered in a burst are not taken as new. Bursts are normal: a server's
// GOP cache sends the last few seconds at once to a new player, and HLS delivers whole
// segments. A stale picture must never be stored as a fresh snapshot.
//
// The mapping is wall = DTS + lag, where lag is the smallest arrival lag seen (a unit can arrive
// late, never early). After a (re)connect the first units are held until the stream arrives in
// real time; then the held units are stamped with the settled lag and released together.
type Clock struct {
	lag      time.Duration // wall-clock time (as UnixNano) minus DTS; valid when started
	started  bool
	settled  bool
	held     []media.AccessUnit
	lastDTS  time.Duration
	lastWall time.Time
}

// Clock limits.
const (
	// burstTolerance: a unit whose lag is within this of the smallest lag arrived in real time.
	burstTolerance = 20 * time.Millisecond
	// maxHeld bounds the units held while catching up (then they are released as they are).
	maxHeld = 2000
	// maxJump is the largest DTS step taken as continuous; a bigger jump (or any step back
	// beyond reordering) means the timestamps restarted.
	maxJump = 10 * time.Second
)

// Push takes one unit (Received = its arrival time) and returns the units that are ready, in
// order, with Received set to the time their picture was live.
func (c *Clock) Push(u media.AccessUnit) []media.AccessUnit {
	arrival := u.Received
	lag := arrival.Sub(time.Unix(0, 0)) - u.DTS
	if c.started && (u.DTS-c.lastDTS > maxJump || u.DTS < c.lastDTS-time.Second) {
		// Timestamps restarted (publisher reset): re-anchor on this unit.
		c.lag = lag
	}
	c.lastDTS, c.lastWall = u.DTS, arrival
	if !c.started {
		c.started, c.lag = true, lag
		c.held = append(c.held, u)
		return nil
	}
	caughtUp := lag >= c.lag-burstTolerance
	if lag < c.lag {
		c.lag = lag
	}
	if !c.settled {
		c.held = append(c.held, u)
		if !caughtUp && len(c.held) < maxHeld {
			return nil
		}
		c.settled = true
		out := c.held
		c.held = nil
		for i := range out {
			out[i].Received = c.stamp(out[i].DTS, arrival)
		}
		return out
	}
	u.Received = c.stamp(u.DTS, arrival)
	return []media.AccessUnit{u}
}

// stamp maps a DTS to wall-clock time, never later than the arrival.
func (c *Clock) stamp(dts time.Duration, arrival time.Time) time.Time {
	t := time.Unix(0, 0).Add(dts + c.lag)
	if t.After(arrival) {
		return arrival
	}
	return t
}
