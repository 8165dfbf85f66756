package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// row is one line of a comparison table: how to print a result's figure, and whether a
// livesnap/ffmpeg ratio means something for it.
type row struct {
	name  string
	value func(Result) float64
	text  func(Result) string // instead of value, when set
	ratio bool
}

var compareRows = []row{
	{name: "CPU s per stream-hour", value: func(r Result) float64 { return r.CPUPerStreamHour }, ratio: true},
	{name: "CPU % of all cores", value: func(r Result) float64 { return r.CPUPercent }, ratio: true},
	{name: "  + replay source and harness %", value: func(r Result) float64 { return r.SourceCPUPercent }},
	{name: "  machine busy %", value: func(r Result) float64 { return r.MachinePercent }},
	{name: "CPU ms per snapshot", value: func(r Result) float64 { return r.CPUPerSnapshotMS }, ratio: true},
	{name: "peak RSS MiB per stream", value: func(r Result) float64 { return r.PeakRSSPerStream }, ratio: true},
	{name: "steady RSS MiB per stream", value: func(r Result) float64 { return r.SteadyRSSPerStream }, ratio: true},
	{name: "steady PSS MiB per stream", value: func(r Result) float64 { return r.SteadyPSSPerStream }, ratio: true},
	{name: "marginal RSS MiB per stream", value: func(r Result) float64 { return r.MarginalRSSPerStream }},
	{name: "RSS growth MiB per stream", value: func(r Result) float64 { return r.RSSGrowthPerStream }},
	{name: "processes", value: func(r Result) float64 { return float64(r.Processes) }},
	{name: "snapshots produced / expected", text: func(r Result) string { return fmt.Sprintf("%d / %d", r.Produced, r.Expected) }},
	{name: "ticks on time (<= interval+GOP)", text: func(r Result) string { return fmt.Sprintf("%.1f%%", 100*r.OnTimeRatio) }},
	{name: "tick lateness p50 / p99 s", text: func(r Result) string { return fmt.Sprintf("%.2f / %.2f", r.LatenessP50, r.LatenessP99) }},
	{name: "first snapshot p50 / max s", text: func(r Result) string { return fmt.Sprintf("%.1f / %.1f", r.FirstP50, r.FirstMax) }},
	{name: "JPEG KiB", value: func(r Result) float64 { return r.JPEGKiB }},
	{name: "sustained", text: func(r Result) string {
		if r.Sustained {
			return "yes"
		}
		return "NO"
	}},
}

// PrintComparison prints a table of livesnap's and the baseline's figures for the same
// streams, with the ratios livesnap/baseline. Either may be nil.
func PrintComparison(w io.Writer, ls, ff *Result) {
	ref := ls
	if ref == nil {
		ref = ff
	}
	if ref == nil {
		return
	}
	fmt.Fprintf(w, "\n%s, %d streams, every %gs, %s policy (GOP %.2fs), window %.0fs, %d CPUs\n",
		ref.Variant, ref.Streams, ref.Interval, ref.Policy, ref.GOP, ref.Window, ref.CPUs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tlivesnap\tffmpeg\tlivesnap/ffmpeg\t")
	cell := func(r *Result, rw row) string {
		if r == nil {
			return "-"
		}
		if rw.text != nil {
			return rw.text(*r)
		}
		return num(rw.value(*r))
	}
	for _, rw := range compareRows {
		ratio := ""
		if rw.ratio && ls != nil && ff != nil && rw.value(*ff) != 0 {
			ratio = fmt.Sprintf("%.3g", rw.value(*ls)/rw.value(*ff))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", rw.name, cell(ls, rw), cell(ff, rw), ratio)
	}
	tw.Flush()
	for _, r := range []*Result{ls, ff} {
		if r == nil {
			continue
		}
		if !r.Sustained && r.OnTimeRatio < MinOnTimeRatio {
			fmt.Fprintf(w, "  %s did not keep up: its CPU figures are what it got, not what it needed; compare at fewer streams\n", r.Side)
		}
		if len(r.Misses) > 0 {
			var parts []string
			for _, k := range sortedReasons(r.Misses) {
				parts = append(parts, fmt.Sprintf("%s %.0f", k, r.Misses[k]))
			}
			fmt.Fprintf(w, "  %s misses (whole run): %s\n", r.Side, strings.Join(parts, ", "))
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  %s: %s\n", r.Side, n)
		}
	}
}

// num prints a figure with about three significant digits.
func num(v float64) string {
	switch a := max(v, -v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}
