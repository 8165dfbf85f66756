package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/replay"
)

// Plan is the whole benchmark (`make bench`): the decode floor, livesnap and the baseline
// side by side on the same streams, the search for each side's largest sustained stream
// count, and a long run that shows whether memory grows.
type Plan struct {
	Livesnap, FFmpeg string
	CacheDir, Sample string
	WorkDir          string
	Runners          int
	Keep             bool
	StartRate        float64
	Out              io.Writer // the report
	Progress         func(string)

	CompareStreams int // streams of the side-by-side runs
	// CompareExact is the streams of the side-by-side exact run: the full-decode baseline
	// needs a fraction of a core per 1080p stream, and a baseline that cannot keep up
	// reports the CPU it got, not the CPU it needed.
	CompareExact int
	// Compare60 is the streams of the side-by-side 60 s run. Per stream, a 60 s schedule
	// costs livesnap little more than pulling the stream, so with few streams its three
	// processes' fixed cost (about 1.3 % of a core) is a third of the total: the per-stream
	// ratio is judged where both sides run many streams (the baseline sustains 100 at
	// 1080p every 60 s on 2 cores).
	Compare60      int
	Window, Warmup time.Duration // of a 5 s-interval step; 60 s steps get 5 intervals at least
	Budget         time.Duration // of each search, per side
	MaxStreams     int           // the searches' cap
	LongStreams    int           // streams of the memory run (0: skip it)
	LongWindow     time.Duration
	Only           []string // limit to these parts: floor, compare, search, long (empty: all)
	// Searches limits the searches to these schedules, named as by schedule.name
	// ("1080p-5s-keyframe"); empty: all of searchSchedules.
	Searches []string
}

// Report is everything a Plan measured, as written to JSON.
type Report struct {
	Started  time.Time      `json:"started"`
	Machine  string         `json:"machine"`
	Command  string         `json:"command"`
	Floors   []Floor        `json:"floors,omitempty"`
	Compared []Result       `json:"compared,omitempty"`
	Searches []SearchResult `json:"searches,omitempty"`
	Ingest   []Ingest       `json:"ingest,omitempty"`
	Long     []Result       `json:"long,omitempty"`
}

// schedule is one configuration of the targets.
type schedule struct {
	variant  string
	interval time.Duration
	policy   string
}

func (s schedule) name() string {
	return fmt.Sprintf("%s-%gs-%s", s.variant, s.interval.Seconds(), s.policy)
}

// SearchNames lists the schedules the plan can search, for --search.
func SearchNames() []string {
	var names []string
	for _, s := range searchSchedules {
		names = append(names, s.name())
	}
	return names
}

func (p *Plan) searches(s schedule) bool {
	return len(p.Searches) == 0 || slices.Contains(p.Searches, s.name())
}

var (
	compareSchedules = []schedule{
		{"1080p", 5 * time.Second, "keyframe"}, {"1080p", 60 * time.Second, "keyframe"}, {"1080p", 5 * time.Second, "exact"},
		{"720p", 5 * time.Second, "keyframe"}, {"1080p-h265", 5 * time.Second, "keyframe"},
	}
	searchSchedules = compareSchedules[:3]
)

func (p *Plan) wants(part string) bool { return len(p.Only) == 0 || slices.Contains(p.Only, part) }

func (p *Plan) say(format string, args ...any) {
	if p.Progress != nil {
		p.Progress(fmt.Sprintf(format, args...))
	}
}

// window is the step window for an interval: the configured one, and at least 5 intervals.
func (p *Plan) window(interval time.Duration) time.Duration { return max(p.Window, 5*interval) }

// LoadVariant returns the clip of a variant, preparing it first when it is not cached.
func LoadVariant(ctx context.Context, cacheDir, sample, variant string, progress func(string)) (*replay.Clip, error) {
	v, ok := Variants[variant]
	if !ok {
		return nil, fmt.Errorf("unknown variant %q (have %s)", variant, strings.Join(VariantNames(), ", "))
	}
	path, err := Prepare(ctx, cacheDir, sample, v, progress)
	if err != nil {
		return nil, err
	}
	return replay.LoadClip(path)
}

// Source starts a replay server for a variant, preparing its content first.
func Source(ctx context.Context, cacheDir, sample, variant string, streams int, progress func(string)) (*replay.Server, error) {
	clip, err := LoadVariant(ctx, cacheDir, sample, variant, progress)
	if err != nil {
		return nil, err
	}
	srv := &replay.Server{Addr: "127.0.0.1:0", Clip: clip, Streams: streams}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return srv, nil
}

func (p *Plan) env(ctx context.Context, variant string) (*Env, func(), error) {
	srv, err := Source(ctx, p.CacheDir, p.Sample, variant, max(p.MaxStreams, p.CompareStreams, p.CompareExact, p.Compare60, p.LongStreams), p.Progress)
	if err != nil {
		return nil, nil, err
	}
	e := &Env{Livesnap: p.Livesnap, FFmpeg: p.FFmpeg, Runners: p.Runners, Source: srv, Variant: variant,
		WorkDir: p.WorkDir, Keep: p.Keep, Progress: p.Progress, StartRate: p.StartRate}
	return e, func() { srv.Close() }, nil
}

// Run runs the plan and prints the report as it goes.
func (p *Plan) Run(ctx context.Context) (*Report, error) {
	rep := &Report{Started: time.Now().UTC(), Machine: Machine(), Command: strings.Join(os.Args, " ")}
	fmt.Fprintf(p.Out, "machine: %s\n", rep.Machine)
	if p.wants("floor") {
		for _, v := range []string{"1080p", "720p", "1080p-h265"} {
			clip, err := LoadVariant(ctx, p.CacheDir, p.Sample, v, p.Progress)
			if err != nil {
				return rep, err
			}
			p.say("floor %s: decoding its keyframes in process", v)
			f, err := MeasureFloor(ctx, v, clip, 3*time.Second)
			if err != nil {
				return rep, fmt.Errorf("floor %s: %w", v, err)
			}
			rep.Floors = append(rep.Floors, f)
			PrintFloor(p.Out, f, nil)
		}
	}
	if p.wants("compare") {
		for _, s := range compareSchedules {
			e, done, err := p.env(ctx, s.variant)
			if err != nil {
				return rep, err
			}
			n := p.CompareStreams
			if s.policy == "exact" && p.CompareExact > 0 {
				n = p.CompareExact
			}
			if s.interval == time.Minute && p.Compare60 > 0 {
				n = p.Compare60
			}
			c := Config{Streams: n, Interval: s.interval, Policy: s.policy, Warmup: p.Warmup, Window: p.window(s.interval)}
			pair, err := e.Pair(ctx, c, Variants[s.variant].Baseline)
			done()
			if err != nil {
				return rep, err
			}
			rep.Compared = append(rep.Compared, pair...)
			ls, ff := pick(pair, SideLivesnap), pick(pair, SideFFmpeg)
			PrintComparison(p.Out, ls, ff)
		}
	}
	if p.wants("search") {
		for _, s := range searchSchedules {
			if !p.searches(s) {
				continue
			}
			e, done, err := p.env(ctx, s.variant)
			if err != nil {
				return rep, err
			}
			for _, side := range []string{SideLivesnap, SideFFmpeg} {
				first := 16
				if side == SideLivesnap {
					first = 64
				}
				sc := SearchConfig{Config: Config{Side: side, Streams: first, Interval: s.interval, Policy: s.policy,
					Warmup: p.Warmup, Window: p.window(s.interval)}, Max: p.MaxStreams, Budget: p.Budget}
				r, err := e.Search(ctx, sc)
				if err != nil {
					done()
					return rep, err
				}
				rep.Searches = append(rep.Searches, r)
			}
			done()
			PrintSearches(p.Out, rep.Searches)
		}
	}
	if p.wants("long") && p.LongStreams > 0 {
		e, done, err := p.env(ctx, "1080p")
		if err != nil {
			return rep, err
		}
		c := Config{Side: SideLivesnap, Streams: p.LongStreams, Interval: 5 * time.Second, Policy: "keyframe",
			Warmup: p.Warmup, Window: p.LongWindow}
		r, err := e.Run(ctx, c)
		done()
		if err != nil {
			return rep, err
		}
		rep.Long = append(rep.Long, r)
		fmt.Fprintf(p.Out, "\nlong run: livesnap, %d streams 1080p every 5 s for %.0f s: RSS %.2f MiB/stream steady, growth %+.3f MiB/stream over the window%s, %.1f%% on time\n",
			r.Streams, r.Window, r.SteadyRSSPerStream, r.RSSGrowthPerStream, growthSplit(r), 100*r.OnTimeRatio)
	}
	PrintTargets(p.Out, rep)
	return rep, nil
}

// Pair runs livesnap then (when the baseline can play the content) ffmpeg on the same
// streams with the same schedule.
func (e *Env) Pair(ctx context.Context, c Config, baseline bool) ([]Result, error) {
	sides := []string{SideLivesnap}
	if baseline {
		sides = append(sides, SideFFmpeg)
	}
	var out []Result
	for _, side := range sides {
		c.Side = side
		r, err := e.Run(ctx, c)
		if err != nil {
			return out, fmt.Errorf("%s: %w", side, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func pick(rs []Result, side string) *Result {
	for i := range rs {
		if rs[i].Side == side {
			return &rs[i]
		}
	}
	return nil
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Machine describes this machine: CPU model, cores, memory, kernel.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		var kb int64
		fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "MemTotal:")), "%d", &kb)
		mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, %d CPUs%s%s, %s", model, runtime.NumCPU(), mem, kernel, runtime.Version())
}

// PrintTargets checks the targets against what the report holds, and says which
// could not be judged from it.
func PrintTargets(w io.Writer, rep *Report) {
	fmt.Fprintln(w, "\ntargets")
	find := func(variant string, interval float64, policy, side string) *Result {
		for i := range rep.Compared {
			r := &rep.Compared[i]
			if r.Variant == variant && r.Interval == interval && r.Policy == policy && r.Side == side {
				return r
			}
		}
		return nil
	}
	search := func(interval float64, policy, side string) *SearchResult {
		for i := range rep.Searches {
			s := &rep.Searches[i]
			if s.Variant == "1080p" && s.Interval == interval && s.Policy == policy && s.Side == side {
				return s
			}
		}
		return nil
	}
	mark := func(ok bool) string {
		if ok {
			return "MET"
		}
		return "MISSED"
	}
	line := func(ok bool, format string, args ...any) {
		fmt.Fprintf(w, "  %-6s  %s\n", mark(ok), fmt.Sprintf(format, args...))
	}
	if ls, ff := search(5, "keyframe", SideLivesnap), search(5, "keyframe", SideFFmpeg); ls != nil && ff != nil {
		line(ls.Sustained >= 200, "1080p 5 s keyframe: >= 200 streams sustained: %d", ls.Sustained)
		line(ff.Sustained > 0 && ls.Sustained >= 2*ff.Sustained, "1080p 5 s keyframe: >= 2x the baseline's streams: %d vs %d", ls.Sustained, ff.Sustained)
	} else {
		fmt.Fprintln(w, "  (no search: stream-count targets not judged)")
	}
	// Memory and CPU per snapshot are judged at scale: on the long run (the 200 streams of
	// the first target) when there is one, else on the side-by-side run, where the processes'
	// fixed cost weighs on few streams.
	atScale := find("1080p", 5, "keyframe", SideLivesnap)
	if len(rep.Long) > 0 {
		atScale = &rep.Long[len(rep.Long)-1]
	}
	if ls := atScale; ls != nil {
		line(ls.SteadyRSSPerStream <= 3, "1080p 5 s keyframe: <= 3 MiB RSS per stream: %.2f at %d streams", ls.SteadyRSSPerStream, ls.Streams)
	}
	if ls, ff := find("1080p", 60, "keyframe", SideLivesnap), find("1080p", 60, "keyframe", SideFFmpeg); ls != nil && ff != nil && ls.CPUPerStreamHour > 0 {
		x := ff.CPUPerStreamHour / ls.CPUPerStreamHour
		line(x >= 10, "1080p 60 s keyframe: >= 10x CPU efficiency per stream: %.1fx at %d streams", x, ls.Streams)
	}
	if ls, ff := find("1080p", 5, "exact", SideLivesnap), find("1080p", 5, "exact", SideFFmpeg); ls != nil && ff != nil && ls.CPUPerStreamHour > 0 {
		x := ff.CPUPerStreamHour / ls.CPUPerStreamHour
		line(x >= 4, "1080p 5 s exact: >= 4x cheaper per stream than full decode: %.1fx at %d streams", x, ls.Streams)
	}
	for _, f := range rep.Floors {
		if f.Variant != "1080p" {
			continue
		}
		if ls := atScale; ls != nil && ls.CPUPerSnapshotMS > 0 {
			x := ls.CPUPerSnapshotMS / f.KeyframeMS
			line(x <= 1.25, "per-snapshot CPU within 1.25x of the floor: %.1f ms vs %.1f ms = %.2fx at %d streams", ls.CPUPerSnapshotMS, f.KeyframeMS, x, ls.Streams)
		}
	}
	for _, r := range rep.Long {
		growth := r.RSSGrowthPerStream * float64(r.Streams)
		// Growth within 2 % of the steady level (or 8 MiB) is noise, not a leak.
		line(growth <= max(8, 0.02*r.SteadyRSSTotal), "memory does not grow over %.0f s: %+.1f MiB in all%s (%d streams)", r.Window, growth, growthSplit(r), r.Streams)
	}
}

// growthSplit tells how much of a run's RSS growth the Go runtimes hold, when they were read.
func growthSplit(r Result) string {
	if r.GoGrowth == nil {
		return ""
	}
	all := r.RSSGrowthPerStream * float64(r.Streams)
	return fmt.Sprintf(" (Go runtime %+.1f MiB, the rest %+.1f MiB)", *r.GoGrowth, all-*r.GoGrowth)
}
