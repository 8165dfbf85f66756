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
	// In an intra-refresh stream, which has no keyframe after the first picture, that is the
	// first clean picture after a recovery point. When the stream's GOP is longer than the
	// interval, so no keyframe comes before the next tick, it decodes forward from the last
	// keyframe to the picture nearest the missed tick.
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
	gop   int64 // which GOP of the picker it was made from
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

// A Picker's GOP buffer and its clean point: the pictures of a GOP are clean from index
// gopClean on (0 after an IDR; recovery_frame_cnt after an intra-refresh recovery point).

// Picker is one stream's capture state. Feed it every video unit (Unit) and every tick (Tick),
// from one goroutine.
type Picker struct {
	Policy      Policy
	Interval    time.Duration
	MaxGOPBytes int // 0 → DefaultMaxGOPBytes

	pending     time.Time // tick waiting for its picture; zero if none
	retryReason string    // why the pending tick's first picture failed, if it did

	gop      []media.AccessUnit // units since the last keyframe, when buffering
	gopBytes int
	gopBroke bool  // overflowed or damaged: no picture of this GOP can be served any more
	gopClean int   // index of the GOP's first clean picture
	gopSeq   int64 // counts GOPs, to tell whether a failed request came from this one

	lastKey   time.Time     // arrival of the last keyframe
	gopSpan   time.Duration // arrival gap between the last two keyframes
	servedPTS time.Duration // the picture that served the last tick, never reused
	served    bool
}

// Start sets the first tick (the moment the stream opened).
func (p *Picker) Start(at time.Time) { p.pending = at }

// buffering reports whether non-key units must be kept: always for Exact; for Keyframe while
// the GOP length is unknown (first GOP) or longer than the interval (the fallback needs
// them), and after a recovery point (its clean picture needs the units before it).
func (p *Picker) buffering() bool {
	return p.Policy == Exact || p.gopSpan == 0 || p.gopSpan > p.Interval || p.gopClean > 0
}

// NeedsAllUnits reports whether the picker needs the data of every unit. When it does not,
// the source may hand out units that are not keyframes as media.AccessUnit.Skipped (timing
// only): the picker then only takes keyframes.
func (p *Picker) NeedsAllUnits() bool { return p.buffering() }

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
			if p.retryReason != "" {
				reason = p.retryReason
			}
			miss = &Miss{Tick: p.pending, Reason: reason}
		}
	}
	p.pending, p.retryReason = now, ""
	return req, miss
}

// Retry is called when r's picture could not be made (the decoder found it damaged, or gave
// none). No later picture of that GOP can be trusted, so the tick waits for the next clean
// picture, as long as the next tick has not come yet; otherwise it is a miss with reason.
func (p *Picker) Retry(r *Request, reason string) *Miss {
	if r.gop == p.gopSeq {
		p.gop, p.gopBytes, p.gopBroke = nil, 0, true
	}
	if !p.pending.IsZero() {
		return &Miss{Tick: r.Tick, Reason: reason}
	}
	p.pending, p.retryReason = r.Tick, reason
	return nil
}

// Unit is called for every video unit in arrival order; it may complete the pending tick.
func (p *Picker) Unit(u media.AccessUnit) *Request {
	if u.Keyframe {
		if !p.lastKey.IsZero() {
			p.gopSpan = u.Received.Sub(p.lastKey)
		}
		p.lastKey = u.Received
		clear(p.gop) // drop the old GOP's pictures even when the buffer is kept for reuse
		p.gop, p.gopBytes, p.gopBroke = p.gop[:0], 0, false
		p.gopClean = u.RecoveryFrames
		p.gopSeq++
	}
	if p.buffering() && (u.Keyframe || len(p.gop) > 0) && !p.gopBroke {
		max := p.MaxGOPBytes
		if max <= 0 {
			max = DefaultMaxGOPBytes
		}
		switch {
		case u.Skipped:
			// The source dropped this unit's data before the picker said it needed it (the
			// GOP got longer than the interval): no later picture of this GOP decodes.
			p.gop, p.gopBytes, p.gopBroke = nil, 0, true
		case p.gopBytes+u.Size() > max:
			// Too long to keep: drop it all; exact snapshots wait for the next keyframe.
			p.gop, p.gopBytes, p.gopBroke = nil, 0, true
		default:
			p.gop = append(p.gop, u)
			p.gopBytes += u.Size()
		}
	}
	if p.pending.IsZero() || u.Received.Before(p.pending) {
		return nil
	}
	tick := p.pending
	if p.Policy == Exact {
		return p.fromGOP(tick)
	}
	var units []media.AccessUnit
	switch {
	case p.isServed(u):
		return nil
	case u.Keyframe && u.RecoveryFrames == 0:
		units = []media.AccessUnit{u}
	case p.gopClean > 0 && !p.gopBroke && len(p.gop) == p.gopClean+1 && p.gop[0].Keyframe:
		// The first clean picture after a recovery point (u, the last one buffered).
		units = append([]media.AccessUnit(nil), p.gop...)
	default:
		return nil
	}
	p.serve(u)
	return &Request{Tick: tick, Units: units, gop: p.gopSeq}
}

// fromGOP builds a request for tick from the buffered GOP: the clean picture nearest the tick
// (by arrival), never the picture that served the last tick. Nil if the buffer cannot serve it.
func (p *Picker) fromGOP(tick time.Time) *Request {
	if len(p.gop) <= p.gopClean || p.gopBroke || !p.gop[0].Keyframe {
		return nil
	}
	best := -1
	for i := p.gopClean; i < len(p.gop); i++ {
		u := p.gop[i]
		if p.isServed(u) {
			continue
		}
		if best < 0 || absDur(u.Received.Sub(tick)) < absDur(p.gop[best].Received.Sub(tick)) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	p.serve(p.gop[best])
	return &Request{Tick: tick, Units: append([]media.AccessUnit(nil), p.gop[:best+1]...), gop: p.gopSeq}
}

// serve marks u as the picture of the pending tick.
func (p *Picker) serve(u media.AccessUnit) {
	p.served, p.servedPTS = true, u.PTS
	p.pending, p.retryReason = time.Time{}, ""
}

func (p *Picker) isServed(u media.AccessUnit) bool { return p.served && p.servedPTS == u.PTS }

// BufferedBytes is the size of the GOP buffer (for memory accounting).
func (p *Picker) BufferedBytes() int { return p.gopBytes }

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
