package bench

import (
	"sort"
	"time"
)

// streamShots is when one stream's consumer was started and when each of its snapshots
// appeared (the file's modification time: both sides write each file once).
type streamShots struct {
	start time.Time
	shots []time.Time
}

// tickStats is how well the snapshots of a set of streams kept to their schedule.
type tickStats struct {
	expected int       // ticks in the window
	onTime   int       // ticks delivered within interval + GOP
	produced int       // snapshots that appeared in the window
	lateness []float64 // seconds, one per delivered tick
	first    []float64 // seconds from start to the first snapshot, per stream that has one
	silent   int       // streams without any snapshot
}

// evaluate matches snapshots to ticks, identically for both sides.
//
// A stream's ideal ticks are t_k = a + k*interval, where a is when its first snapshot
// appeared (so each side's start-up cost is left out of the schedule; it is reported as the
// time to the first snapshot). Ticks are served in order: tick k takes the earliest
// snapshot not taken by an earlier tick that appeared in (t_k - interval/2, t_k + interval +
// gop]; a snapshot earlier than that window is an extra and serves no tick. A tick with no
// such snapshot is missed. Lateness is the appearance minus t_k (negative when a picture
// came earlier in its interval than the first one did). Only ticks with t_k in [w0, w1)
// count. The grid also runs back from a: ticks of the window before the first snapshot
// (a side still starting up when the window opened) are missed, and a stream without any
// snapshot misses every tick of the window (a = its start).
func evaluate(streams []streamShots, interval, gop time.Duration, w0, w1 time.Time) tickStats {
	var ts tickStats
	for _, s := range streams {
		shots := append([]time.Time(nil), s.shots...)
		sort.Slice(shots, func(i, j int) bool { return shots[i].Before(shots[j]) })
		for _, d := range shots {
			if !d.Before(w0) && d.Before(w1) {
				ts.produced++
			}
		}
		anchor := s.start
		if len(shots) > 0 {
			anchor = shots[0]
			ts.first = append(ts.first, shots[0].Sub(s.start).Seconds())
		} else {
			ts.silent++
		}
		for t := anchor.Add(-interval); !t.Before(w0); t = t.Add(-interval) {
			if t.Before(w1) {
				ts.expected++ // before the first snapshot: missed
			}
		}
		p := 0
		for k := 0; ; k++ {
			t := anchor.Add(time.Duration(k) * interval)
			if !t.Before(w1) {
				break
			}
			for p < len(shots) && !shots[p].After(t.Add(-interval/2)) {
				p++ // an extra: too early for this tick
			}
			hit := p < len(shots) && !shots[p].After(t.Add(interval+gop))
			counted := !t.Before(w0)
			if counted {
				ts.expected++
			}
			if hit {
				if counted {
					ts.onTime++
					ts.lateness = append(ts.lateness, shots[p].Sub(t).Seconds())
				}
				p++
			}
		}
	}
	return ts
}

// ratio is onTime/expected (0 when nothing was expected).
func (ts tickStats) ratio() float64 {
	if ts.expected == 0 {
		return 0
	}
	return float64(ts.onTime) / float64(ts.expected)
}

// quantile returns the q-quantile (0..1) of v by the nearest-rank method; 0 for no values.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
