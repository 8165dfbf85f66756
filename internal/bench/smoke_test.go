package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/testenv"
)

// need skips the test when a tool is missing, unless LIVESNAP_REQUIRE_SERVICES=1 (CI),
// where a missing tool is a failure.
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("LIVESNAP_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s: %v", what, err)
	}
	t.Skipf("%s: %v", what, err)
}

// TestSmokeBothSidesEndToEnd is the short version of `make bench`: 3 replayed streams,
// livesnap (the real binary, jobs through the API) and then one ffmpeg per stream, each
// measured over a short window. It checks that the harness works end to end, not the
// figures.
func TestSmokeBothSidesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs livesnap and ffmpeg for about 45 s")
	}
	_, err := exec.LookPath("ffmpeg")
	need(t, "ffmpeg", err)
	sample := testenv.Sample(t)

	bin := filepath.Join(t.TempDir(), "livesnap")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/livesnap")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build livesnap: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logf := func(line string) { t.Log(line) }
	srv, err := Source(ctx, t.TempDir(), sample, "source", 3, logf)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := &Env{Livesnap: bin, Runners: -1, Source: srv, Variant: "source", WorkDir: t.TempDir(), Progress: logf}
	c := Config{Streams: 3, Interval: 2 * time.Second, Policy: "keyframe", Warmup: 5 * time.Second, Window: 8 * time.Second}
	pair, err := e.Pair(ctx, c, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(pair) != 2 || pair[0].Side != SideLivesnap || pair[1].Side != SideFFmpeg {
		t.Fatalf("results: %+v", pair)
	}
	for _, r := range pair {
		switch {
		case r.Expected == 0 || r.Produced == 0 || r.OnTime == 0:
			t.Errorf("%s: %d ticks expected, %d snapshots, %d on time", r.Side, r.Expected, r.Produced, r.OnTime)
		case r.Silent > 0:
			t.Errorf("%s: %d of 3 streams without any snapshot", r.Side, r.Silent)
		case r.CPUSeconds <= 0 || r.CPUPerStreamHour <= 0:
			t.Errorf("%s: no CPU time measured", r.Side)
		case r.SteadyRSSPerStream <= 0 || r.PeakRSSPerStream < r.SteadyRSSPerStream:
			t.Errorf("%s: RSS steady %v, peak %v MiB per stream", r.Side, r.SteadyRSSPerStream, r.PeakRSSPerStream)
		case r.JPEGKiB <= 0:
			t.Errorf("%s: no JPEG size", r.Side)
		}
	}
	// livesnap's Go runtimes report their memory (read from its /metrics); ffmpeg has none.
	if pair[0].GoGrowth == nil || pair[1].GoGrowth != nil {
		t.Errorf("Go runtime growth: livesnap %v, ffmpeg %v; want livesnap's only", pair[0].GoGrowth, pair[1].GoGrowth)
	}
	// livesnap is serve and its runner children; the baseline is one ffmpeg per stream.
	if pair[0].Processes < 2 {
		t.Errorf("livesnap measured as %d processes, want serve and its runners", pair[0].Processes)
	}
	if pair[1].Processes != 3 {
		t.Errorf("baseline measured as %d processes, want 3", pair[1].Processes)
	}
	var out bytes.Buffer
	PrintComparison(&out, &pair[0], &pair[1])
	for _, want := range []string{"livesnap/ffmpeg", "CPU s per stream-hour", "steady RSS MiB per stream", "tick lateness"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
	rep := &Report{Compared: pair}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	var back Report
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &back); err != nil || len(back.Compared) != 2 || back.Compared[1].Streams != 3 {
		t.Fatalf("JSON: %v %+v", err, back)
	}
}

func TestFloorDecodesTheClipsKeyframes(t *testing.T) {
	_, err := exec.LookPath("ffmpeg")
	need(t, "ffmpeg", err)
	sample := testenv.Sample(t)
	clip, err := LoadVariant(context.Background(), t.TempDir(), sample, "source", nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := MeasureFloor(context.Background(), "source", clip, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// Decoding forward to pictures within the GOP costs more than decoding the keyframe.
	if f.KeyframeMS <= 0 || f.ExactMS <= f.KeyframeMS || f.Keyframes != 7 || f.Repetitions < 1 {
		t.Fatalf("%+v", f)
	}
}
