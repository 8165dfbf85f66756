// Package capture decides, tick by tick, which pictures of a live stream become snapshots.
// It knows nothing of protocols or codecs' internals: it sees access units (with a keyframe
// flag and an arrival time) and wall-clock ticks, and answers with decode requests and misses.
package capture

import (
	"time"

	"github.com/livesnap/livesnap/internal/media"
)

// Policy says which picture a tick takes.
type Policy string

const (
	// Keyframe takes the first clean keyframe arriving at or after the tick (ICE's behaviour).
	// When the stream's GOP is longer than the interval, so no keyframe comes before the next
	// tick, it decodes forward from the last keyframe to the picture nearest the missed tick.
	Keyframe Policy = "keyframe"
	// Exact decodes forward from the last keyframe to the picture nearest the tick.
	Exact Policy = "exact"
)

// DefaultMaxGOPBytes bounds the buffered group of pictures per stream.
const DefaultMaxGOPBytes = 16 << 20

// Request asks for one snapshot: decode Units in order (Units[0] is a keyframe) and keep the
// picture of the last one. Tick is the tick it serves.
type Request struct {
	Tick  time.Time
	Units []media.AccessUnit
}

// Picture is the unit whose picture the request wants.
func (r *Request) Picture() media.AccessUnit { return r.Units[len(r.Units)-1] }

// Miss is a tick that got no picture, with the reason.
type Miss struct {
	Tick   time.Time
	Reason string
}

// Miss reasons.
const (
	MissNoKeyframe = "no_keyframe_before_next_tick"
	MissNoPicture  = "no_clean_picture_before_next_tick"
)

// Picker is one stream's capture state. Feed it every video unit (Unit) and every tick (Tick),
// from one goroutine.
type Picker struct {
	Policy      Policy
	Interval    time.Duration
	MaxGOPBytes int // 0 → DefaultMaxGOPBytes

	pending time.Time // tick waiting for its picture; zero if none

	gop      []media.AccessUnit // units since the last keyframe, when buffering
	gopBytes int
	gopBroke bool // the buffer overflowed: it no longer starts at a keyframe

	lastKey    time.Time     // arrival of the last keyframe
	gopSpan    time.Duration // arrival gap between the last two keyframes
	usedKeyPTS time.Duration // the keyframe that served the last tick, never reused
	usedKey    bool
}

// Start sets the first tick (the moment the stream opened).
func (p *Picker) Start(at time.Time) { p.pending = at }

// buffering reports whether non-key units must be kept: always for Exact; for Keyframe while
// the GOP length is unknown (first GOP) or longer than the interval (the fallback needs them).
func (p *Picker) buffering() bool {
	return p.Policy == Exact || p.gopSpan == 0 || p.gopSpan > p.Interval
}

// Tick is called at every wall-clock tick. If the previous tick is still waiting, it either
// falls back to decoding the buffered GOP (a long GOP under Keyframe) or reports a miss.
func (p *Picker) Tick(now time.Time) (*Request, *Miss) {
	var req *Request
	var miss *Miss
	if !p.pending.IsZero() {
		if r := p.fromGOP(p.pending); r != nil {
			req = r
		} else {
			reason := MissNoKeyframe
			if p.Policy == Exact {
				reason = MissNoPicture
			}
			miss = &Miss{Tick: p.pending, Reason: reason}
		}
	}
	p.pending = now
	return req, miss
}

// Unit is called for every video unit in arrival order; it may complete the pending tick.
func (p *Picker) Unit(u media.AccessUnit) *Request {
	if u.Keyframe {
		if !p.lastKey.IsZero() {
			p.gopSpan = u.Received.Sub(p.lastKey)
		}
		p.lastKey = u.Received
		p.gop, p.gopBytes, p.gopBroke = p.gop[:0], 0, false
	}
	if p.buffering() && (u.Keyframe || len(p.gop) > 0) && !p.gopBroke {
		max := p.MaxGOPBytes
		if max <= 0 {
			max = DefaultMaxGOPBytes
		}
		if p.gopBytes+u.Size() > max {
			// Too long to keep: drop it all; exact snapshots wait for the next keyframe.
			p.gop, p.gopBytes, p.gopBroke = nil, 0, true
		} else {
			p.gop = append(p.gop, u)
			p.gopBytes += u.Size()
		}
	}
	if p.pending.IsZero() || u.Received.Before(p.pending) {
		return nil
	}
	tick := p.pending
	switch {
	case p.Policy == Keyframe && u.Keyframe && !(p.usedKey && p.usedKeyPTS == u.PTS):
		p.pending = time.Time{}
		p.useKey(u)
		return &Request{Tick: tick, Units: []media.AccessUnit{u}}
	case p.Policy == Exact:
		if r := p.fromGOP(tick); r != nil {
			return r
		}
	}
	return nil
}

// fromGOP builds a request for tick from the buffered GOP: the unit nearest the tick (by
// arrival), never a keyframe that already served a tick. Nil if the buffer cannot serve it.
func (p *Picker) fromGOP(tick time.Time) *Request {
	if len(p.gop) == 0 || p.gopBroke || !p.gop[0].Keyframe {
		return nil
	}
	best := -1
	for i, u := range p.gop {
		if u.Keyframe && p.usedKey && p.usedKeyPTS == u.PTS {
			continue
		}
		if best < 0 || absDur(u.Received.Sub(tick)) < absDur(p.gop[best].Received.Sub(tick)) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	if p.pending.Equal(tick) {
		p.pending = time.Time{}
	}
	units := append([]media.AccessUnit(nil), p.gop[:best+1]...)
	if units[best].Keyframe {
		p.useKey(units[best])
		units = units[best:]
	}
	return &Request{Tick: tick, Units: units}
}

func (p *Picker) useKey(u media.AccessUnit) {
	p.usedKey, p.usedKeyPTS = true, u.PTS
}

// BufferedBytes is the size of the GOP buffer (for memory accounting).
func (p *Picker) BufferedBytes() int { return p.gopBytes }

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
