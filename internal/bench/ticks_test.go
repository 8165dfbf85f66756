package bench

import (
	"math"
	"os"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func shotsAt(secs ...float64) []time.Time {
	var out []time.Time
	for _, s := range secs {
		out = append(out, at(s))
	}
	return out
}

func TestEvaluateMatchesSnapshotsToTicks(t *testing.T) {
	const interval, gop = 5 * time.Second, 2 * time.Second
	cases := []struct {
		name                       string
		shots                      []time.Time
		expected, onTime, produced int
		p50                        float64
	}{
		// Window [10 s, 30 s): ticks at 12, 17, 22, 27 for a first snapshot at 2 s.
		{"one per interval, on the dot", shotsAt(2, 7, 12, 17, 22, 27, 32), 4, 4, 4, 0},
		{"a constant delay after the first is lateness", shotsAt(2, 8, 13, 18, 23, 28, 33), 4, 4, 4, 1},
		{"a picture earlier in its interval is early, not extra", shotsAt(2, 7, 10.5, 17, 22, 27), 4, 4, 4, 0},
		{"late within interval+GOP still counts", shotsAt(2, 7, 18.9, 23.9, 28.9, 33.9), 4, 4, 3, 6.9},
		{"later than interval+GOP is a miss", shotsAt(2, 7, 19.5, 22, 27), 4, 3, 3, 0},
		{"a gap misses the ticks it spans", shotsAt(2, 7, 12, 27), 4, 2, 2, 0},
		{"a burst serves one tick each, no more", shotsAt(2, 7, 12, 25, 25.1, 25.2), 4, 3, 4, 0},
		{"no snapshot at all misses every tick", nil, 4, 0, 0, 0},
		{"ticks of the window before the first snapshot are missed", shotsAt(17, 22, 27, 32), 4, 3, 3, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := evaluate([]streamShots{{start: at(2), shots: c.shots}}, interval, gop, at(10), at(30))
			if ts.expected != c.expected || ts.onTime != c.onTime || ts.produced != c.produced {
				t.Fatalf("expected/onTime/produced = %d/%d/%d, want %d/%d/%d", ts.expected, ts.onTime, ts.produced,
					c.expected, c.onTime, c.produced)
			}
			if got := quantile(ts.lateness, 0.5); math.Abs(got-c.p50) > 1e-6 && c.onTime > 0 {
				t.Fatalf("lateness p50 %v, want %v (all %v)", got, c.p50, ts.lateness)
			}
		})
	}
}

func TestEvaluateReportsTheTimeToTheFirstSnapshot(t *testing.T) {
	ts := evaluate([]streamShots{
		{start: at(0), shots: shotsAt(3, 8)},
		{start: at(1), shots: shotsAt(7, 12)},
		{start: at(0)},
	}, 5*time.Second, 2*time.Second, at(0), at(20))
	if len(ts.first) != 2 || ts.first[0] != 3 || ts.first[1] != 6 || ts.silent != 1 {
		t.Fatalf("first %v, silent %d", ts.first, ts.silent)
	}
}

func TestQuantileIsNearestRank(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	for q, want := range map[float64]float64{0: 1, 0.5: 3, 0.99: 5, 1: 5} {
		if got := quantile(v, q); got != want {
			t.Errorf("q%v = %v, want %v", q, got, want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("empty")
	}
}

func TestParseStatReadsCPUAndMemory(t *testing.T) {
	line := "1234 (my (odd) name) S 77 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 3 0 100 123456789 2048 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 77 || math.Abs(st.cpu-300/clockTicks) > 1e-9 || st.rss != 2048*pageSize || st.zomb {
		t.Fatalf("%+v", st)
	}
	if _, err := parseStat([]byte("1 (x) S 1 2")); err == nil {
		t.Fatal("short line parsed")
	}
	// This very process: it has used some CPU and has a resident set.
	self, err := readStat(os.Getpid())
	if err != nil || self.rss <= 0 || self.ppid != os.Getppid() {
		t.Fatalf("self: %+v, %v", self, err)
	}
}

func TestParsePSS(t *testing.T) {
	b := []byte("00400000-7fff [rollup]\nRss:               10240 kB\nPss:                4096 kB\nPss_Anon: 1 kB\n")
	if v, err := parsePSS(b); err != nil || v != 4096<<10 {
		t.Fatalf("%v, %v", v, err)
	}
	if _, err := parsePSS([]byte("Rss: 1 kB\n")); err == nil {
		t.Fatal("no Pss line parsed")
	}
	if v, err := readPSS(os.Getpid()); err != nil || v <= 0 {
		t.Skipf("smaps_rollup not readable here: %v", err)
	}
}

func TestDescendantsFindsChildren(t *testing.T) {
	pids := descendants(os.Getppid())
	found := false
	for _, p := range pids {
		found = found || p == os.Getpid()
	}
	if !found || pids[0] != os.Getppid() {
		t.Fatalf("this process %d not below its parent %d: %v", os.Getpid(), os.Getppid(), pids)
	}
}

func TestMissesByReasonSumsProcesses(t *testing.T) {
	text := `# HELP livesnap_snapshot_misses_total Ticks that produced no snapshot, by reason.
# TYPE livesnap_snapshot_misses_total counter
livesnap_snapshot_misses_total{process="runner-1",reason="no_keyframe_before_next_tick"} 3
livesnap_snapshot_misses_total{process="runner-2",reason="no_keyframe_before_next_tick"} 2
livesnap_snapshot_misses_total{process="runner-2",reason="previous_capture_still_running"} 1
livesnap_snapshots_total{process="runner-1"} 40
`
	m, err := missesByReason(text)
	if err != nil || len(m) != 2 || m["no_keyframe_before_next_tick"] != 5 || m["previous_capture_still_running"] != 1 {
		t.Fatalf("%v, %v", m, err)
	}
}

func TestFFmpegArgsAreTheRecipe(t *testing.T) {
	got := ffmpegArgs("keyframe", 5*time.Second, "rtmp://h/live/s0", "/o")
	want := "-hide_banner -nostdin -loglevel error -skip_frame nokey -i rtmp://h/live/s0 -an -vf fps=1/5 -f image2 -strftime 1 /o/%s.jpg"
	if s := join(got); s != want {
		t.Fatalf("keyframe:\n got %s\nwant %s", s, want)
	}
	if s := join(ffmpegArgs("exact", 60*time.Second, "u", "/o")); s != "-hide_banner -nostdin -loglevel error -i u -an -vf fps=1/60 -f image2 -strftime 1 /o/%s.jpg" {
		t.Fatalf("exact: %s", s)
	}
}

func join(a []string) string {
	s := ""
	for i, v := range a {
		if i > 0 {
			s += " "
		}
		s += v
	}
	return s
}
