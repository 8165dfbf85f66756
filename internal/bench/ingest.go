package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/livesnap/livesnap/internal/source"
)

// Ingest is the cost of only pulling streams with livesnap's own RTMP source (demux to
// access units, no capture, no decode), measured in a child process: the part of
// livesnap's per-stream cost that does not depend on the interval.
type Ingest struct {
	Variant          string  `json:"variant"`
	Streams          int     `json:"streams"`
	Window           float64 `json:"window_s"`
	CPUPerStreamHour float64 `json:"cpu_s_per_stream_hour"`
	MicrosPerUnit    float64 `json:"cpu_us_per_unit"`
	Units            int64   `json:"units"`
	RSSPerStream     float64 `json:"rss_mib_per_stream"`
	// CoalesceMs is the source's CoalesceReads (the runner's: source.LiveReadPeriod; 0: every
	// picture read as it arrives).
	CoalesceMs float64 `json:"coalesce_ms"`
	// KeyframesOnly: the source was asked for whole keyframes only (source.KeyframesOnly), as
	// the runner asks under the keyframe policy once the GOP is known to be within the interval.
	KeyframesOnly bool `json:"keyframes_only"`
}

// Pull reads every URL with livesnap's RTMP source until ctx ends, one goroutine per
// stream reading straight from the source, counting the units read in units. It is the
// `pull` command MeasureIngest starts.
func Pull(ctx context.Context, urls []string, coalesce time.Duration, keyframesOnly bool, units *atomic.Int64) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(urls))
	for _, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := source.Open(ctx, "rtmp", u, source.Options{CoalesceReads: coalesce})
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			// The source turns keyframes-only off at every keyframe; the runner asks again once
			// its picker has seen it, and so does this loop.
			k, _ := st.(source.KeyframesOnly)
			if k != nil {
				k.SetKeyframesOnly(keyframesOnly)
			}
			for {
				u, err := st.Read()
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				units.Add(1)
				if k != nil && u.Keyframe {
					k.SetKeyframesOnly(keyframesOnly)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// MeasureIngest runs `self pull` on n of the source's streams (self is this program, which
// must implement that command with Pull), lets it settle for warmup, and measures its CPU
// and memory over window; coalesce is the source's CoalesceReads.
func (e *Env) MeasureIngest(ctx context.Context, self string, n int, warmup, window, coalesce time.Duration, keyframesOnly bool) (Ingest, error) {
	if n < 1 || n > e.Source.Streams {
		return Ingest{}, fmt.Errorf("ingest: streams %d: want 1 to %d", n, e.Source.Streams)
	}
	args := []string{"pull", "--coalesce", coalesce.String(), "--keyframes-only=" + strconv.FormatBool(keyframesOnly)}
	for i := 0; i < n; i++ {
		args = append(args, e.Source.URL(i))
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Ingest{}, err
	}
	if err := cmd.Start(); err != nil {
		return Ingest{}, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	e.say("ingest %s N=%d (reads coalesced every %v, keyframes only %v): pulling only, no capture", e.Variant, n, coalesce, keyframesOnly)
	if err := sleep(ctx, warmup); err != nil {
		return Ingest{}, err
	}
	pid := cmd.Process.Pid
	smp := newSampler(func() []int { return []int{pid} }, time.Second)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go smp.run(sctx)
	smp.startWindow()
	u0, err := readCount(cmd, out)
	if err != nil {
		return Ingest{}, err
	}
	if err := sleep(ctx, window); err != nil {
		return Ingest{}, err
	}
	smp.endWindow()
	u1, err := readCount(cmd, out)
	if err != nil {
		return Ingest{}, err
	}
	stop()
	w := smp.end.Sub(smp.start).Seconds()
	in := Ingest{Variant: e.Variant, Streams: n, Window: w, Units: u1 - u0, CoalesceMs: float64(coalesce) / float64(time.Millisecond), KeyframesOnly: keyframesOnly,
		CPUPerStreamHour: smp.cpu / float64(n) / (w / 3600), RSSPerStream: mib(smp.memStats().steadyRSS) / float64(n)}
	if in.Units > 0 {
		in.MicrosPerUnit = smp.cpu * 1e6 / float64(in.Units)
	}
	e.say("ingest %s N=%d: %.1f CPU s per stream-hour, %.0f µs per unit", e.Variant, n, in.CPUPerStreamHour, in.MicrosPerUnit)
	return in, nil
}

// readCount asks the pull child for its unit count (SIGUSR1) and reads the line it prints.
func readCount(cmd *exec.Cmd, out io.Reader) (int64, error) {
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return 0, err
	}
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := out.Read(b); err != nil {
			return 0, fmt.Errorf("ingest child: %w", err)
		}
		if b[0] == '\n' {
			break
		}
		if len(line) > 32 {
			return 0, errors.New("ingest child: unexpected output")
		}
		line = append(line, b[0])
	}
	return strconv.ParseInt(string(line), 10, 64)
}
