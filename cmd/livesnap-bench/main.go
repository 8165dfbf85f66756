// Command livesnap-bench measures livesnap against one ffmpeg process per stream on the same
// live streams, served by an in-process replay RTMP server. See docs/benchmarks.md.
//
//	livesnap-bench all      the whole benchmark (make bench)
//	livesnap-bench run      one side-by-side run: N streams, livesnap then ffmpeg
//	livesnap-bench search   the largest N each side sustains for one schedule
//	livesnap-bench floor    the in-process decode+encode cost per snapshot
//	livesnap-bench prepare  transcode the test content into the cache
//	livesnap-bench replay   serve the replay streams until interrupted
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/livesnap/livesnap/internal/bench"
	"github.com/livesnap/livesnap/internal/replay"
	"github.com/livesnap/livesnap/internal/source"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "all":
		err = all(ctx, args)
	case "run":
		err = run(ctx, args)
	case "search":
		err = search(ctx, args)
	case "floor":
		err = floor(ctx, args)
	case "prepare":
		err = prepare(ctx, args)
	case "replay":
		err = serveReplay(ctx, args)
	case "ingest":
		err = ingest(ctx, args)
	case "pull": // the child of ingest
		err = pull(ctx, args)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "livesnap-bench: unknown command %q\n\n", cmd)
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "livesnap-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: livesnap-bench <command> [flags]   (each command: -h lists its flags)

  all       the whole benchmark: floor, side-by-side runs, searches, a long memory run
  run       one side-by-side run: --streams N --interval 5 --policy keyframe --variant 1080p
  search    the largest sustained N of each side for one schedule (--budget per side)
  floor     decode+encode CPU per snapshot, in process
  ingest    CPU of only pulling N streams with livesnap's RTMP source (no capture)
  prepare   transcode the test content into the cache (--variant all)
  replay    serve --streams N replay streams on --listen until interrupted
`)
}

// common holds the flags every command shares.
type common struct {
	livesnap, ffmpeg, cache, sample, work, json string
	cpuProfile                                  string
	runners                                     int
	keep                                        bool
	startRate                                   float64
	variant                                     string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.livesnap, "livesnap", "bin/livesnap", "the livesnap binary to measure")
	fs.StringVar(&c.ffmpeg, "ffmpeg", "ffmpeg", "the ffmpeg binary of the baseline")
	fs.StringVar(&c.cache, "cache", defaultCache(), "where transcoded test content is kept (env LIVESNAP_BENCH_CACHE)")
	fs.StringVar(&c.sample, "sample", defaultSample(), "the sample clip the content is made from (env LIVESNAP_SAMPLE)")
	fs.StringVar(&c.work, "workdir", "", "where steps write (default: a temporary directory)")
	fs.StringVar(&c.json, "json", "", "also write the results as JSON to this file")
	fs.IntVar(&c.runners, "runners", -1, "livesnap serve --runners (default: serve's own, one per CPU)")
	fs.BoolVar(&c.keep, "keep", false, "keep each step's directory (logs, snapshots)")
	fs.Float64Var(&c.startRate, "start-rate", 20, "streams started per second")
	fs.StringVar(&c.variant, "variant", "1080p", "test content: "+strings.Join(bench.VariantNames(), ", "))
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (the replay source, the harness) to this file")
}

// profile starts the CPU profile when asked for; the returned function stops it.
func (c *common) profile() (func(), error) {
	if c.cpuProfile == "" {
		return func() {}, nil
	}
	f, err := os.Create(c.cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func defaultCache() string {
	if v := os.Getenv("LIVESNAP_BENCH_CACHE"); v != "" {
		return v
	}
	return "bench-cache"
}

func defaultSample() string {
	if v := os.Getenv("LIVESNAP_SAMPLE"); v != "" {
		return v
	}
	return filepath.Join("..", "shared", "media", "big_buck_bunny_360p.mp4")
}

func progress(line string) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), line)
}

// workDir returns the steps' directory and a function that removes it when it is temporary.
func (c *common) workDir() (string, func(), error) {
	if c.work != "" {
		return c.work, func() {}, os.MkdirAll(c.work, 0o755)
	}
	d, err := os.MkdirTemp("", "livesnap-bench-")
	if err != nil {
		return "", nil, err
	}
	if c.keep {
		return d, func() { progress("step files kept in " + d) }, nil
	}
	return d, func() { os.RemoveAll(d) }, nil
}

func (c *common) check(needLivesnap bool) error {
	if _, ok := bench.Variants[c.variant]; !ok {
		return fmt.Errorf("unknown --variant %q (have %s)", c.variant, strings.Join(bench.VariantNames(), ", "))
	}
	if c.runners < -1 || c.runners > 256 {
		return fmt.Errorf("--runners must be from 0 to 256")
	}
	if c.startRate <= 0 || c.startRate > 1000 {
		return fmt.Errorf("--start-rate must be above 0 and at most 1000")
	}
	if needLivesnap {
		abs, err := filepath.Abs(c.livesnap)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			return fmt.Errorf("livesnap binary: %v (build it: make build)", err)
		}
		c.livesnap = abs
	}
	return nil
}

// env starts the replay server and returns the environment of steps.
func (c *common) env(ctx context.Context, streams int) (*bench.Env, func(), error) {
	work, cleanWork, err := c.workDir()
	if err != nil {
		return nil, nil, err
	}
	srv, err := bench.Source(ctx, c.cache, c.sample, c.variant, streams, progress)
	if err != nil {
		cleanWork()
		return nil, nil, err
	}
	progress(fmt.Sprintf("replay source: %d streams of %s (%.1f Mbit/s, GOP %.2fs, loop %.1fs) on rtmp://%s/live/s0..",
		streams, c.variant, srv.Clip.Bitrate()/1e6, srv.Clip.GOP().Seconds(), srv.Clip.Duration.Seconds(), srv.ListenAddr()))
	e := &bench.Env{Livesnap: c.livesnap, FFmpeg: c.ffmpeg, Runners: c.runners, Source: srv, Variant: c.variant,
		WorkDir: work, Keep: c.keep, Progress: progress, StartRate: c.startRate}
	stopProfile, err := c.profile()
	if err != nil {
		srv.Close()
		cleanWork()
		return nil, nil, err
	}
	return e, func() { stopProfile(); srv.Close(); cleanWork() }, nil
}

// schedule holds the flags of one schedule.
type schedule struct {
	interval, warmup, window time.Duration
	policy                   string
}

func (s *schedule) register(fs *flag.FlagSet) {
	fs.DurationVar(&s.interval, "interval", 5*time.Second, "snapshot interval (whole seconds)")
	fs.StringVar(&s.policy, "policy", "keyframe", "keyframe (baseline: -skip_frame nokey) or exact (baseline decodes every frame)")
	fs.DurationVar(&s.warmup, "warmup", 15*time.Second, "after the last stream started, before measuring")
	fs.DurationVar(&s.window, "window", 60*time.Second, "measurement window (at least the interval)")
}

func sides(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		switch s = strings.TrimSpace(s); s {
		case bench.SideLivesnap, bench.SideFFmpeg:
			out = append(out, s)
		default:
			return nil, fmt.Errorf("--sides: unknown side %q (livesnap, ffmpeg)", s)
		}
	}
	return out, nil
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var c common
	var s schedule
	c.register(fs)
	s.register(fs)
	streams := fs.Int("streams", 10, "streams, each played by both sides in turn")
	sideList := fs.String("sides", "livesnap,ffmpeg", "which sides to run, in order")
	if err := fs.Parse(args); err != nil {
		return err
	}
	list, err := sides(*sideList)
	if err != nil {
		return err
	}
	if err := c.check(slices.Contains(list, bench.SideLivesnap)); err != nil {
		return err
	}
	if *streams < 1 || *streams > bench.MaxStreams {
		return fmt.Errorf("--streams must be from 1 to %d", bench.MaxStreams)
	}
	e, done, err := c.env(ctx, *streams)
	if err != nil {
		return err
	}
	defer done()
	rep := &bench.Report{Started: time.Now().UTC(), Machine: bench.Machine(), Command: strings.Join(os.Args, " ")}
	for _, side := range list {
		r, err := e.Run(ctx, bench.Config{Side: side, Streams: *streams, Interval: s.interval, Policy: s.policy,
			Warmup: s.warmup, Window: s.window})
		if err != nil {
			return fmt.Errorf("%s: %w", side, err)
		}
		rep.Compared = append(rep.Compared, r)
	}
	fmt.Printf("machine: %s\n", rep.Machine)
	var ls, ff *bench.Result
	for i := range rep.Compared {
		if rep.Compared[i].Side == bench.SideLivesnap {
			ls = &rep.Compared[i]
		} else {
			ff = &rep.Compared[i]
		}
	}
	bench.PrintComparison(os.Stdout, ls, ff)
	return writeJSON(c.json, rep)
}

func search(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	var c common
	var s schedule
	c.register(fs)
	s.register(fs)
	start := fs.Int("start", 16, "first number of streams tried")
	maxN := fs.Int("max", 1024, "never more streams than this")
	budget := fs.Duration("budget", 20*time.Minute, "time for each side's search")
	sideList := fs.String("sides", "livesnap,ffmpeg", "which sides to search")
	if err := fs.Parse(args); err != nil {
		return err
	}
	list, err := sides(*sideList)
	if err != nil {
		return err
	}
	if err := c.check(slices.Contains(list, bench.SideLivesnap)); err != nil {
		return err
	}
	if *maxN < 1 || *maxN > bench.MaxStreams || *start < 1 {
		return fmt.Errorf("--start and --max must be from 1 to %d", bench.MaxStreams)
	}
	e, done, err := c.env(ctx, *maxN)
	if err != nil {
		return err
	}
	defer done()
	rep := &bench.Report{Started: time.Now().UTC(), Machine: bench.Machine(), Command: strings.Join(os.Args, " ")}
	for _, side := range list {
		r, err := e.Search(ctx, bench.SearchConfig{Config: bench.Config{Side: side, Streams: *start, Interval: s.interval,
			Policy: s.policy, Warmup: s.warmup, Window: s.window}, Max: *maxN, Budget: *budget})
		if err != nil {
			return fmt.Errorf("%s: %w", side, err)
		}
		rep.Searches = append(rep.Searches, r)
	}
	fmt.Printf("machine: %s\n", rep.Machine)
	bench.PrintSearches(os.Stdout, rep.Searches)
	return writeJSON(c.json, rep)
}

func floor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	var c common
	c.register(fs)
	cpu := fs.Duration("cpu", 3*time.Second, "CPU time spent on each figure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(false); err != nil {
		return err
	}
	clip, err := bench.LoadVariant(ctx, c.cache, c.sample, c.variant, progress)
	if err != nil {
		return err
	}
	f, err := bench.MeasureFloor(ctx, c.variant, clip, *cpu)
	if err != nil {
		return err
	}
	fmt.Printf("machine: %s\n", bench.Machine())
	bench.PrintFloor(os.Stdout, f, nil)
	return writeJSON(c.json, &bench.Report{Started: time.Now().UTC(), Machine: bench.Machine(),
		Command: strings.Join(os.Args, " "), Floors: []bench.Floor{f}})
}

func ingest(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	var c common
	c.register(fs)
	streams := fs.Int("streams", 10, "streams pulled")
	warmup := fs.Duration("warmup", 5*time.Second, "before measuring")
	window := fs.Duration("window", 30*time.Second, "measurement window")
	baseline := fs.Bool("baseline", true, "also measure reads as data arrives (no coalescing), side by side")
	others := fs.String("coalesce", "", "more read coalescing periods to measure side by side (comma-separated durations, e.g. 200ms,300ms)")
	keyframesOnly := fs.Bool("keyframes-only", true, "ask the source for whole keyframes only, as the runner does under the keyframe policy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(false); err != nil {
		return err
	}
	if *streams < 1 || *streams > bench.MaxStreams {
		return fmt.Errorf("--streams must be from 1 to %d", bench.MaxStreams)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	e, done, err := c.env(ctx, *streams)
	if err != nil {
		return err
	}
	defer done()
	periods := []time.Duration{source.LiveReadPeriod} // what the runner uses
	for _, f := range strings.FieldsFunc(*others, func(r rune) bool { return r == ',' }) {
		p, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || p <= 0 || p > 5*time.Second {
			return fmt.Errorf("--coalesce: %q is not a duration from 1ns to 5s", f)
		}
		periods = append(periods, p)
	}
	if *baseline {
		periods = append(periods, 0)
	}
	var all []bench.Ingest
	for _, p := range periods {
		in, err := e.MeasureIngest(ctx, self, *streams, *warmup, *window, p, *keyframesOnly)
		if err != nil {
			return err
		}
		all = append(all, in)
	}
	fmt.Printf("machine: %s\n", bench.Machine())
	for _, in := range all {
		bench.PrintIngest(os.Stdout, in)
	}
	return writeJSON(c.json, &bench.Report{Started: time.Now().UTC(), Machine: bench.Machine(),
		Command: strings.Join(os.Args, " "), Ingest: all})
}

// pull is the child process of ingest: it pulls the given URLs until SIGTERM and prints its
// count of units read on SIGUSR1.
func pull(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pull", flag.ContinueOnError)
	coalesce := fs.Duration("coalesce", source.LiveReadPeriod, "the source's CoalesceReads")
	keyframesOnly := fs.Bool("keyframes-only", false, "SetKeyframesOnly on every stream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	urls := fs.Args()
	if len(urls) == 0 || len(urls) > bench.MaxStreams {
		return fmt.Errorf("pull: want 1 to %d rtmp:// URLs", bench.MaxStreams)
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, "rtmp://") {
			return fmt.Errorf("pull: %q is not an rtmp:// URL", u)
		}
	}
	var units atomic.Int64
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			fmt.Println(units.Load())
		}
	}()
	err := bench.Pull(ctx, urls, *coalesce, *keyframesOnly, &units)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func prepare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("prepare", flag.ContinueOnError)
	var c common
	c.register(fs)
	fs.Lookup("variant").DefValue, c.variant = "all", "all"
	if err := fs.Parse(args); err != nil {
		return err
	}
	names := []string{c.variant}
	if c.variant == "all" {
		names = bench.VariantNames()
	}
	for _, n := range names {
		clip, err := bench.LoadVariant(ctx, c.cache, c.sample, n, progress)
		if err != nil {
			return err
		}
		fmt.Printf("%-11s %s: %d frames, %.1f s loop, GOP %.2f s, %.2f Mbit/s\n", n, bench.Variants[n].Desc,
			len(clip.Samples), clip.Duration.Seconds(), clip.GOP().Seconds(), clip.Bitrate()/1e6)
	}
	return nil
}

func serveReplay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	var c common
	c.register(fs)
	streams := fs.Int("streams", 100, "number of streams")
	listen := fs.String("listen", "127.0.0.1:1936", "RTMP listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(false); err != nil {
		return err
	}
	clip, err := bench.LoadVariant(ctx, c.cache, c.sample, c.variant, progress)
	if err != nil {
		return err
	}
	if *streams < 1 || *streams > replay.MaxStreams {
		return fmt.Errorf("--streams must be from 1 to %d", replay.MaxStreams)
	}
	srv := &replay.Server{Addr: *listen, Clip: clip, Streams: *streams}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	progress(fmt.Sprintf("serving %d streams of %s: %s .. %s (Ctrl-C stops)", *streams, c.variant, srv.URL(0), srv.URL(*streams-1)))
	<-ctx.Done()
	return nil
}

func all(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	var c common
	c.register(fs)
	compare := fs.Int("compare-streams", 20, "streams of the side-by-side runs")
	compareExact := fs.Int("compare-exact-streams", 6, "streams of the side-by-side exact run (the baseline decodes every frame)")
	compare60 := fs.Int("compare-60s-streams", 100, "streams of the side-by-side 60 s run (where per-stream costs, not fixed ones, decide)")
	window := fs.Duration("window", 60*time.Second, "measurement window of a step (60 s schedules: 5 intervals at least)")
	warmup := fs.Duration("warmup", 15*time.Second, "warmup of a step")
	budget := fs.Duration("budget", 20*time.Minute, "time for each side's search of each schedule")
	maxN := fs.Int("max", 1024, "the searches never try more streams than this")
	long := fs.Int("long-streams", 200, "streams of the long memory run (0 skips it)")
	longWindow := fs.Duration("long-window", 10*time.Minute, "window of the long memory run")
	only := fs.String("only", "", "run only these parts, comma-separated: floor, compare, search, long")
	searchList := fs.String("search", strings.Join(bench.SearchNames(), ","), "the schedules searched, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var searches []string
	for _, n := range strings.Split(*searchList, ",") {
		if !slices.Contains(bench.SearchNames(), n) {
			return fmt.Errorf("--search: unknown schedule %q (have %s)", n, strings.Join(bench.SearchNames(), ", "))
		}
		searches = append(searches, n)
	}
	if err := c.check(true); err != nil {
		return err
	}
	if *compare < 1 || *compareExact < 1 || *compare60 < 1 || *compare60 > bench.MaxStreams || *maxN < 1 || *maxN > bench.MaxStreams || *long < 0 || *long > bench.MaxStreams {
		return fmt.Errorf("--compare-streams, --compare-exact-streams, --compare-60s-streams, --max and --long-streams must be from 1 to %d", bench.MaxStreams)
	}
	work, cleanWork, err := c.workDir()
	if err != nil {
		return err
	}
	defer cleanWork()
	var parts []string
	if *only != "" {
		parts = strings.Split(*only, ",")
	}
	p := &bench.Plan{Livesnap: c.livesnap, FFmpeg: c.ffmpeg, CacheDir: c.cache, Sample: c.sample, WorkDir: work,
		Runners: c.runners, Keep: c.keep, StartRate: c.startRate, Out: os.Stdout, Progress: progress,
		CompareStreams: *compare, CompareExact: *compareExact, Compare60: *compare60, Window: *window, Warmup: *warmup, Budget: *budget, MaxStreams: *maxN,
		LongStreams: *long, LongWindow: *longWindow, Only: parts, Searches: searches}
	progress(fmt.Sprintf("benchmark on %d CPUs; progress on stderr, the report on stdout", runtime.NumCPU()))
	rep, err := p.Run(ctx)
	if jerr := writeJSON(c.json, rep); jerr != nil && err == nil {
		err = jerr
	}
	return err
}

func writeJSON(path string, rep *bench.Report) error {
	if path == "" || rep == nil {
		return nil
	}
	return rep.WriteJSON(path)
}
