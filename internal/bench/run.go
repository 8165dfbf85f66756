package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/livesnap/livesnap/internal/replay"
)

// Sides.
const (
	SideLivesnap = "livesnap"
	SideFFmpeg   = "ffmpeg"
)

// Limits on a step's settings.
const (
	MaxStreams  = 10000
	MaxInterval = time.Hour
)

// Env is what every step shares: the binaries, the replay server and where steps write.
type Env struct {
	Livesnap string // the livesnap binary
	FFmpeg   string // the ffmpeg binary ("" → "ffmpeg")
	Runners  int    // serve --runners; < 0 leaves serve's default (one per CPU)
	Source   *replay.Server
	Variant  string // name of the replay server's content
	WorkDir  string // each step writes under a directory of its own here
	Keep     bool   // keep step directories (logs, snapshots) after the step
	// Progress receives a line whenever something happens; nil prints nothing.
	Progress func(string)
	// StartRate bounds how many streams are started per second (0 → 20), so start-up does
	// not crowd the first measurements.
	StartRate float64
}

// Config is one step: one side, a number of streams, a schedule.
type Config struct {
	Side     string
	Streams  int
	Interval time.Duration // whole seconds
	Policy   string        // keyframe or exact
	Warmup   time.Duration // after the last stream started, before the window
	Window   time.Duration // CPU and ticks are measured over this window
}

// Result is what one step measured. Durations and times are in seconds, memory in MiB.
type Result struct {
	Side      string  `json:"side"`
	Variant   string  `json:"variant"`
	Streams   int     `json:"streams"`
	Interval  float64 `json:"interval_s"`
	Policy    string  `json:"policy"`
	GOP       float64 `json:"gop_s"`
	Window    float64 `json:"window_s"`
	CPUs      int     `json:"cpus"`
	Processes int     `json:"processes"`

	CPUSeconds       float64 `json:"cpu_s"`
	CPUPerStreamHour float64 `json:"cpu_s_per_stream_hour"`
	CPUPercent       float64 `json:"cpu_percent"`        // of all cores, this side's processes
	SourceCPUPercent float64 `json:"source_cpu_percent"` // the replay server and harness
	MachinePercent   float64 `json:"machine_cpu_percent"`
	CPUPerSnapshotMS float64 `json:"cpu_ms_per_snapshot"`

	PeakRSSPerStream     float64 `json:"peak_rss_mib_per_stream"`
	SteadyRSSPerStream   float64 `json:"steady_rss_mib_per_stream"`
	SteadyPSSPerStream   float64 `json:"steady_pss_mib_per_stream"`
	IdleRSS              float64 `json:"idle_rss_mib"` // before any stream (livesnap: serve and runners)
	MarginalRSSPerStream float64 `json:"marginal_rss_mib_per_stream"`
	RSSGrowthPerStream   float64 `json:"rss_growth_mib_per_stream"` // window's last fifth minus its first
	// GoGrowth is the part of the growth (all processes, MiB) that the Go runtimes hold
	// (livesnap only; the rest is C: codec frames, SQLite's cache, libraries' pages).
	GoGrowth       *float64 `json:"go_growth_mib,omitempty"`
	SteadyRSSTotal float64  `json:"steady_rss_mib"`

	Expected    int     `json:"ticks_expected"`
	OnTime      int     `json:"ticks_on_time"`
	Produced    int     `json:"snapshots_in_window"`
	OnTimeRatio float64 `json:"on_time_ratio"`
	LatenessP50 float64 `json:"lateness_p50_s"`
	LatenessP99 float64 `json:"lateness_p99_s"`
	FirstP50    float64 `json:"first_snapshot_p50_s"`
	FirstMax    float64 `json:"first_snapshot_max_s"`
	Silent      int     `json:"silent_streams"`
	JPEGKiB     float64 `json:"jpeg_kib_avg"`

	Sustained bool               `json:"sustained"`
	Misses    map[string]float64 `json:"livesnap_misses,omitempty"`
	Notes     []string           `json:"notes,omitempty"`
}

// Criteria for a sustained step.
const (
	MinOnTimeRatio = 0.99
	MaxCPUPercent  = 90
)

func (e *Env) say(format string, args ...any) {
	if e.Progress != nil {
		e.Progress(fmt.Sprintf(format, args...))
	}
}

func (c Config) check(e *Env) error {
	switch {
	case c.Side != SideLivesnap && c.Side != SideFFmpeg:
		return fmt.Errorf("side %q: want %s or %s", c.Side, SideLivesnap, SideFFmpeg)
	case c.Streams < 1 || c.Streams > MaxStreams || c.Streams > e.Source.Streams:
		return fmt.Errorf("streams %d: want 1 to %d", c.Streams, min(MaxStreams, e.Source.Streams))
	case c.Interval < time.Second || c.Interval > MaxInterval || c.Interval%time.Second != 0:
		return fmt.Errorf("interval %v: want whole seconds from 1 s to %v", c.Interval, MaxInterval)
	case c.Policy != "keyframe" && c.Policy != "exact":
		return fmt.Errorf("policy %q: want keyframe or exact", c.Policy)
	case c.Window < c.Interval:
		return fmt.Errorf("window %v shorter than the interval", c.Window)
	case c.Warmup < 0:
		return errors.New("negative warmup")
	}
	return nil
}

// Run runs one step: the side starts every stream, warms up, is measured over the window,
// then runs on for interval + GOP so the window's last ticks can be delivered, and stops.
func (e *Env) Run(ctx context.Context, c Config) (Result, error) {
	if err := c.check(e); err != nil {
		return Result{}, err
	}
	gop := e.Source.Clip.GOP()
	dir, err := os.MkdirTemp(e.WorkDir, fmt.Sprintf("%s-%d-", c.Side, c.Streams))
	if err != nil {
		return Result{}, err
	}
	if !e.Keep {
		defer os.RemoveAll(dir)
	}
	var s side
	switch c.Side {
	case SideLivesnap:
		s = &livesnapSide{bin: e.Livesnap, runners: e.Runners, dir: dir, interval: c.Interval, policy: c.Policy, streams: c.Streams}
	default:
		bin := e.FFmpeg
		if bin == "" {
			bin = "ffmpeg"
		}
		s = &ffmpegSide{bin: bin, dir: dir, interval: c.Interval, policy: c.Policy, streams: c.Streams}
	}
	defer s.stop()
	label := fmt.Sprintf("%s %s N=%d %ds %s", c.Side, e.Variant, c.Streams, int(c.Interval/time.Second), c.Policy)
	e.say("%s: starting", label)
	if err := s.setup(ctx); err != nil {
		return Result{}, err
	}
	smp := newSampler(s.pids, time.Second)
	if g, ok := s.(goMemSide); ok {
		smp.goMem = func() (int64, error) {
			gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return g.goMem(gctx)
		}
	}
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	// The idle level: the side's processes before any stream, once they are all up.
	if err := settle(ctx, s.pids); err != nil {
		return Result{}, err
	}
	smp.sample()
	idle := smp.memStats().peakRSS
	go smp.run(sctx)

	starts, failed, err := e.startAll(ctx, s, c.Streams)
	if err != nil {
		return Result{}, err
	}
	e.say("%s: %d streams started; warming up %v", label, c.Streams, c.Warmup)
	if err := sleep(ctx, c.Warmup); err != nil {
		return Result{}, err
	}
	// The window opens once every stream has its first snapshot (start-up is not what is
	// measured), or after two more intervals and half a minute at most.
	waiting, err := waitFirstShots(ctx, s, c.Streams, 2*c.Interval+gop+30*time.Second, func(n int) {
		e.say("%s: waiting for the first snapshot of %d streams", label, n)
	})
	if err != nil {
		return Result{}, err
	}
	smp.startWindow()
	w0 := time.Now()
	for left := c.Window; left > 0; {
		step := min(left, 30*time.Second)
		if err := sleep(ctx, step); err != nil {
			return Result{}, err
		}
		left -= step
		if left > 0 {
			e.say("%s: %v of the %v window measured", label, (c.Window - left).Round(time.Second), c.Window)
		}
	}
	smp.endWindow()
	w1 := time.Now()
	tail := c.Interval + gop
	e.say("%s: window done; %v more for its last ticks", label, tail.Round(time.Second))
	if err := sleep(ctx, tail); err != nil {
		return Result{}, err
	}
	stopSampling()

	shots, st, err := s.shots(ctx)
	if err != nil {
		return Result{}, err
	}
	streams := make([]streamShots, c.Streams)
	for i := range streams {
		streams[i] = streamShots{start: starts[i], shots: shots[i]}
	}
	ts := evaluate(streams, c.Interval, gop, w0, w1)
	ms := smp.memStats()

	r := Result{Side: c.Side, Variant: e.Variant, Streams: c.Streams, Interval: c.Interval.Seconds(), Policy: c.Policy,
		GOP: gop.Seconds(), CPUs: runtime.NumCPU(), Processes: ms.procsMax, Misses: st.misses, Notes: st.notes}
	window := smp.end.Sub(smp.start).Seconds()
	r.Window = window
	n := float64(c.Streams)
	r.CPUSeconds = smp.cpu
	r.CPUPerStreamHour = smp.cpu / n / (window / 3600)
	r.CPUPercent = 100 * smp.cpu / window / float64(r.CPUs)
	r.SourceCPUPercent = 100 * smp.selfCPU / window / float64(r.CPUs)
	if smp.machTot > 0 {
		r.MachinePercent = 100 * smp.machBusy / smp.machTot
	}
	r.Expected, r.OnTime, r.Produced, r.Silent = ts.expected, ts.onTime, ts.produced, ts.silent
	r.OnTimeRatio = ts.ratio()
	r.LatenessP50, r.LatenessP99 = quantile(ts.lateness, 0.5), quantile(ts.lateness, 0.99)
	r.FirstP50, r.FirstMax = quantile(ts.first, 0.5), quantile(ts.first, 1)
	if ts.produced > 0 {
		r.CPUPerSnapshotMS = 1000 * smp.cpu / float64(ts.produced)
	}
	if st.count > 0 {
		r.JPEGKiB = float64(st.jpegBytes) / float64(st.count) / 1024
	}
	r.PeakRSSPerStream = mib(ms.peakRSS) / n
	r.SteadyRSSPerStream = mib(ms.steadyRSS) / n
	r.SteadyPSSPerStream = mib(ms.steadyPSS) / n
	r.SteadyRSSTotal = mib(ms.steadyRSS)
	r.IdleRSS = mib(idle)
	r.MarginalRSSPerStream = (mib(ms.steadyRSS) - mib(idle)) / n
	r.RSSGrowthPerStream = (mib(ms.endRSS) - mib(ms.startRSS)) / n
	if ms.startGo >= 0 {
		g := mib(ms.endGo) - mib(ms.startGo)
		r.GoGrowth = &g
	}
	if failed != nil {
		r.Notes = append(r.Notes, failed.Error())
	}
	if waiting > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d streams had no snapshot yet when the window opened", waiting))
	}
	r.Sustained = r.OnTimeRatio >= MinOnTimeRatio && r.CPUPercent+r.SourceCPUPercent < MaxCPUPercent
	if r.MachinePercent > r.CPUPercent+r.SourceCPUPercent+10 {
		r.Notes = append(r.Notes, fmt.Sprintf("the machine was %.0f%% busy, %.0f points more than this step: other load",
			r.MachinePercent, r.MachinePercent-r.CPUPercent-r.SourceCPUPercent))
	}
	verdict := "sustained"
	if !r.Sustained {
		verdict = "NOT sustained"
	}
	e.say("%s: %s: %.1f%% on time, CPU %.0f%% (+%.0f%% source), %.1f MiB/stream", label, verdict,
		100*r.OnTimeRatio, r.CPUPercent, r.SourceCPUPercent, r.SteadyRSSPerStream)
	if e.Keep {
		r.Notes = append(r.Notes, "step files kept in "+dir)
	}
	return r, nil
}

// startAll starts every stream at a bounded rate, a few at a time, and returns when each
// was started. Streams that fail to start (a side too loaded to answer) count as silent:
// failed says how many and why; err is set only when none started.
func (e *Env) startAll(ctx context.Context, s side, n int) (starts []time.Time, failed, err error) {
	rate := e.StartRate
	if rate <= 0 {
		rate = 20
	}
	starts = make([]time.Time, n)
	var mu sync.Mutex
	var firstErr error
	var failures int
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := 0; i < n; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil, nil, ctx.Err()
		case <-tick.C:
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			at := time.Now()
			err := s.startStream(ctx, i, e.Source.URL(i))
			mu.Lock()
			defer mu.Unlock()
			starts[i] = at
			if err != nil {
				failures++
				if firstErr == nil {
					firstErr = fmt.Errorf("stream %d: %w", i, err)
				}
			}
		}()
	}
	wg.Wait()
	if failures == n {
		return nil, nil, firstErr
	}
	if failures > 0 {
		failed = fmt.Errorf("%d of %d streams failed to start; the first: %w", failures, n, firstErr)
	}
	return starts, failed, nil
}

// waitFirstShots waits until every stream has written a snapshot, at most max; it returns
// how many still have none. report is told now and then how many it waits for.
func waitFirstShots(ctx context.Context, s side, n int, max time.Duration, report func(int)) (int, error) {
	have := make([]bool, n)
	deadline := time.Now().Add(max)
	lastReport := time.Now()
	for {
		left := 0
		for i := range have {
			if !have[i] {
				have[i] = s.hasShot(i)
			}
			if !have[i] {
				left++
			}
		}
		if left == 0 || time.Now().After(deadline) {
			return left, nil
		}
		if time.Since(lastReport) > 10*time.Second {
			report(left)
			lastReport = time.Now()
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return left, err
		}
	}
}

// settle waits until the number of processes has not changed for a second (serve starts
// its runners after it answers), at most 10 s.
func settle(ctx context.Context, pids func() []int) error {
	last, same := -1, 0
	for i := 0; i < 40 && same < 4; i++ {
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
		if n := len(pids()); n == last {
			same++
		} else {
			last, same = n, 0
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// sortedReasons lists the keys of m in order.
func sortedReasons(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
