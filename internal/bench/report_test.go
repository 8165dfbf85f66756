package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrintComparisonShowsRatiosLivesnapOverBaseline(t *testing.T) {
	ls := Result{Side: SideLivesnap, Variant: "1080p", Streams: 10, Interval: 5, Policy: "keyframe", CPUPerStreamHour: 10,
		SteadyRSSPerStream: 2, OnTimeRatio: 1, Sustained: true, Expected: 60, Produced: 60, OnTime: 60}
	ff := ls
	ff.Side, ff.CPUPerStreamHour, ff.SteadyRSSPerStream, ff.OnTimeRatio, ff.Sustained = SideFFmpeg, 40, 100, 0.5, false
	var b bytes.Buffer
	PrintComparison(&b, &ls, &ff)
	out := b.String()
	for _, want := range []string{"CPU s per stream-hour", "0.25", "0.02", "ffmpeg did not keep up", "NO"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestGoHeldBytesSumsEveryProcess(t *testing.T) {
	text := `# HELP go_memstats_sys_bytes Number of bytes obtained from system.
# TYPE go_memstats_sys_bytes gauge
go_memstats_sys_bytes{process="runner-1"} 6.517788e+07
go_memstats_sys_bytes{process="serve"} 2.097152e+07
go_memstats_stack_sys_bytes{process="serve"} 1e+09
go_memstats_sys_bytes_other{process="serve"} 1e+09
go_memstats_sys_bytes{process="a runner } with spaces"} 1.048576e+06 1733300000000
go_memstats_heap_released_bytes{process="runner-1"} 6.995968e+06
go_memstats_heap_released_bytes{process="serve"} 1.048576e+06
`
	got, err := goHeldBytes(text)
	if want := int64(65177880 + 20971520 + 1048576 - 6995968 - 1048576); err != nil || got != want {
		t.Errorf("goHeldBytes = %d, %v; want %d", got, err, want)
	}
	if _, err := goHeldBytes("# no Go metrics\nprocess_resident_memory_bytes 1e+08\n"); err == nil {
		t.Error("no error without go_memstats_sys_bytes")
	}
	if _, err := goHeldBytes("go_memstats_sys_bytes{process=\"x\"} many\n"); err == nil {
		t.Error("no error for a value that is no number")
	}
}

func TestPrintTargetsJudgesWhatTheReportHolds(t *testing.T) {
	rep := &Report{
		Floors: []Floor{{Variant: "1080p", KeyframeMS: 20}},
		Compared: []Result{
			{Side: SideLivesnap, Variant: "1080p", Interval: 5, Policy: "keyframe", Streams: 20, SteadyRSSPerStream: 2.5, CPUPerSnapshotMS: 30},
			{Side: SideLivesnap, Variant: "1080p", Interval: 60, Policy: "keyframe", Streams: 20, CPUPerStreamHour: 4},
			{Side: SideFFmpeg, Variant: "1080p", Interval: 60, Policy: "keyframe", Streams: 20, CPUPerStreamHour: 48},
		},
		Searches: []SearchResult{
			{Side: SideLivesnap, Variant: "1080p", Interval: 5, Policy: "keyframe", Sustained: 256},
			{Side: SideFFmpeg, Variant: "1080p", Interval: 5, Policy: "keyframe", Sustained: 100},
		},
		Long: []Result{{Streams: 200, Window: 600, RSSGrowthPerStream: 0.5, SteadyRSSTotal: 600,
			SteadyRSSPerStream: 3.5, CPUPerSnapshotMS: 24, GoGrowth: ptr(60.0)}},
	}
	var b bytes.Buffer
	PrintTargets(&b, rep)
	out := b.String()
	for _, want := range []string{
		"MET     1080p 5 s keyframe: >= 200 streams sustained: 256",
		"MET     1080p 5 s keyframe: >= 2x the baseline's streams: 256 vs 100",
		// memory and CPU per snapshot are judged on the long run, at scale
		"MISSED  1080p 5 s keyframe: <= 3 MiB RSS per stream: 3.50 at 200 streams",
		"MET     1080p 60 s keyframe: >= 10x CPU efficiency per stream: 12.0x",
		"MET     per-snapshot CPU within 1.25x of the floor: 24.0 ms vs 20.0 ms = 1.20x at 200 streams",
		"MISSED  memory does not grow over 600 s: +100.0 MiB in all (Go runtime +60.0 MiB, the rest +40.0 MiB)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "exact") {
		t.Errorf("judged the exact target without its figures:\n%s", out)
	}

	// Without a long run, the side-by-side run is all there is.
	rep.Long = nil
	b.Reset()
	PrintTargets(&b, rep)
	out = b.String()
	for _, want := range []string{
		"MET     1080p 5 s keyframe: <= 3 MiB RSS per stream: 2.50 at 20 streams",
		"MISSED  per-snapshot CPU within 1.25x of the floor: 30.0 ms vs 20.0 ms = 1.50x at 20 streams",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestPlanSearchesOnlyTheNamedSchedules(t *testing.T) {
	names := SearchNames()
	if strings.Join(names, ",") != "1080p-5s-keyframe,1080p-60s-keyframe,1080p-5s-exact" {
		t.Fatalf("search schedules: %v", names)
	}
	p := &Plan{Searches: []string{"1080p-5s-exact"}}
	var picked []string
	for _, s := range searchSchedules {
		if p.searches(s) {
			picked = append(picked, s.name())
		}
	}
	if strings.Join(picked, ",") != "1080p-5s-exact" {
		t.Errorf("searched %v, want only 1080p-5s-exact", picked)
	}
	if p := (&Plan{}); !p.searches(searchSchedules[1]) {
		t.Error("an empty list must search every schedule")
	}
}

func ptr[T any](v T) *T { return &v }
