package bench

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/media"
	"github.com/livesnap/livesnap/internal/replay"
)

// Floor is the pure cost of making one snapshot from the clip in process with
// internal/decode (libavcodec decode, libswscale, MJPEG encode at livesnap's defaults: source
// size, quality 85), in CPU milliseconds.
type Floor struct {
	Variant    string  `json:"variant"`
	KeyframeMS float64 `json:"keyframe_cpu_ms"` // decode one keyframe + encode: the keyframe policy
	// ExactMS decodes from a keyframe to a picture spread evenly over the GOP, then encodes:
	// what the exact policy does on average.
	ExactMS     float64 `json:"exact_cpu_ms"`
	Keyframes   int     `json:"keyframes"`
	Repetitions int     `json:"repetitions"`
}

// cpuNow is this process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MeasureFloor decodes every keyframe of clip (and, for the exact figure, runs from each
// keyframe to pictures spread over its GOP) for at least minCPU of CPU time per figure.
// Run it while nothing else runs in this process: it reads the whole process's CPU time.
func MeasureFloor(ctx context.Context, variant string, clip *replay.Clip, minCPU time.Duration) (Floor, error) {
	f := Floor{Variant: variant}
	keys := clip.Keyframes()
	units := make([]media.AccessUnit, len(clip.Samples))
	for i := range clip.Samples {
		u, err := clip.AccessUnit(i)
		if err != nil {
			return f, err
		}
		units[i] = u
	}
	// Runs for the exact figure: from each keyframe to 0/5 .. 4/5 of the way to the next.
	var exact [][]media.AccessUnit
	for ki, k := range keys {
		end := len(units)
		if ki+1 < len(keys) {
			end = keys[ki+1]
		}
		for step := 0; step < 5; step++ {
			exact = append(exact, units[k:k+1+step*(end-k)/5])
		}
	}
	var single [][]media.AccessUnit
	for _, k := range keys {
		single = append(single, units[k:k+1])
	}
	d, err := decode.New(clip.Codec)
	if err != nil {
		return f, err
	}
	defer d.Close()
	measure := func(runs [][]media.AccessUnit) (float64, int, error) {
		for _, r := range runs[:1] { // warm up: first-use allocations
			if _, err := d.Decode(r, decode.Options{}); err != nil {
				return 0, 0, err
			}
		}
		start := cpuNow()
		n, reps := 0, 0
		for cpuNow()-start < minCPU || reps == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
			for _, r := range runs {
				if _, err := d.Decode(r, decode.Options{}); err != nil {
					return 0, 0, fmt.Errorf("decode %d units: %w", len(r), err)
				}
				n++
			}
			reps++
		}
		return float64(cpuNow()-start) / float64(time.Millisecond) / float64(n), reps, nil
	}
	if f.KeyframeMS, f.Repetitions, err = measure(single); err != nil {
		return f, err
	}
	if f.ExactMS, _, err = measure(exact); err != nil {
		return f, err
	}
	f.Keyframes = len(keys)
	return f, nil
}

// PrintFloor prints the floor next to livesnap's measured CPU per snapshot, when given.
func PrintFloor(w io.Writer, f Floor, measured []Result) {
	fmt.Fprintf(w, "\nfloor (%s, in process, one core): keyframe decode+encode %.1f ms CPU; exact (decode to mid-GOP on average)+encode %.1f ms CPU (%d keyframes x %d)\n",
		f.Variant, f.KeyframeMS, f.ExactMS, f.Keyframes, f.Repetitions)
	for _, r := range measured {
		if r.Side != SideLivesnap || r.Variant != f.Variant || r.CPUPerSnapshotMS == 0 {
			continue
		}
		floor := f.KeyframeMS
		if r.Policy == "exact" {
			floor = f.ExactMS
		}
		fmt.Fprintf(w, "  livesnap %d streams every %gs %s: %.1f ms CPU per snapshot = %.2fx the floor\n",
			r.Streams, r.Interval, r.Policy, r.CPUPerSnapshotMS, r.CPUPerSnapshotMS/floor)
	}
}

// PrintIngest prints the cost of pulling streams without capturing.
func PrintIngest(w io.Writer, in Ingest) {
	fmt.Fprintf(w, "\ningest only (%s, %d streams, livesnap's RTMP source in one process, no capture, reads coalesced every %gms, keyframes only %v): %.1f CPU s per stream-hour, %.0f µs CPU per access unit, %.2f MiB RSS per stream\n",
		in.Variant, in.Streams, in.CoalesceMs, in.KeyframesOnly, in.CPUPerStreamHour, in.MicrosPerUnit, in.RSSPerStream)
}
