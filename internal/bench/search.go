package bench

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// SearchConfig bounds the search for the largest number of streams a side sustains.
type SearchConfig struct {
	Config                // Streams is the first try
	Max     int           // never try more streams than this
	Budget  time.Duration // stop starting steps that would end after this
	Precise float64       // stop when the bracket is within this fraction (0 → 0.1)
}

// SearchResult is the outcome: the largest sustained and the smallest failed step tried.
type SearchResult struct {
	Side      string   `json:"side"`
	Variant   string   `json:"variant"`
	Interval  float64  `json:"interval_s"`
	Policy    string   `json:"policy"`
	Sustained int      `json:"max_sustained_streams"` // 0: even the smallest try failed
	Failed    int      `json:"min_failed_streams"`    // 0: no try failed (Sustained may be the cap)
	Capped    bool     `json:"capped"`                // Sustained reached Max or the budget ended the ramp
	Steps     []Result `json:"steps"`
	Elapsed   float64  `json:"elapsed_s"`
}

// Search ramps up (doubling from the first try) until a step fails, then bisects between
// the largest sustained and the smallest failed count, within the budget. Every step is a
// fresh start of the side (see Env.Run).
func (e *Env) Search(ctx context.Context, sc SearchConfig) (SearchResult, error) {
	started := time.Now()
	res := SearchResult{Side: sc.Side, Variant: e.Variant, Interval: sc.Interval.Seconds(), Policy: sc.Policy}
	precise := sc.Precise
	if precise <= 0 {
		precise = 0.1
	}
	maxN := min(sc.Max, e.Source.Streams)
	n := min(max(sc.Streams, 1), maxN)
	rate := e.StartRate
	if rate <= 0 {
		rate = 20
	}
	for {
		// A step lasts its start-up, warmup, window and tail, plus time to set up and stop.
		stepTime := time.Duration(float64(n)/rate*float64(time.Second)) + sc.Warmup + sc.Window + sc.Interval +
			e.Source.Clip.GOP() + 20*time.Second
		if len(res.Steps) > 0 && time.Since(started)+stepTime > sc.Budget {
			res.Capped = res.Failed == 0
			e.say("search %s: time budget reached", sc.Side)
			break
		}
		c := sc.Config
		c.Streams = n
		r, err := e.Run(ctx, c)
		if err != nil {
			return res, err
		}
		res.Steps = append(res.Steps, r)
		if r.Sustained {
			res.Sustained = max(res.Sustained, n)
		} else if res.Failed == 0 || n < res.Failed {
			res.Failed = n
		}
		next := 0
		switch {
		case res.Failed == 0 && res.Sustained >= maxN:
			res.Capped = true
		case res.Failed == 0:
			next = min(2*res.Sustained, maxN)
		case res.Failed-res.Sustained <= max(1, int(precise*float64(res.Sustained))):
		default:
			next = (res.Sustained + res.Failed) / 2
		}
		e.say("search %s %s %gs %s: sustained %d, failed %s; next %s", sc.Side, e.Variant, sc.Interval.Seconds(), sc.Policy,
			res.Sustained, orDash(res.Failed), orDash(next))
		if next == 0 || next == n {
			break
		}
		n = next
	}
	res.Elapsed = time.Since(started).Seconds()
	return res, nil
}

func orDash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// PrintSearches prints the largest sustained stream counts of livesnap and the baseline
// per configuration, with their ratio.
func PrintSearches(w io.Writer, results []SearchResult) {
	type key struct {
		variant, policy string
		interval        float64
	}
	var order []key
	by := map[key]map[string]SearchResult{}
	for _, r := range results {
		k := key{r.Variant, r.Policy, r.Interval}
		if by[k] == nil {
			by[k] = map[string]SearchResult{}
			order = append(order, k)
		}
		by[k][r.Side] = r
	}
	fmt.Fprintln(w, "\nlargest sustained streams (>= 99% of ticks within interval+GOP, CPU < 90%)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "content\tinterval\tpolicy\tlivesnap\tffmpeg\tlivesnap/ffmpeg\t")
	for _, k := range order {
		ls, lok := by[k][SideLivesnap]
		ff, fok := by[k][SideFFmpeg]
		cell := func(r SearchResult, ok bool) string {
			switch {
			case !ok:
				return "-"
			case r.Capped:
				return fmt.Sprintf(">= %d", r.Sustained)
			case r.Failed > 0 && r.Failed != r.Sustained+1:
				return fmt.Sprintf("%d (fails %d)", r.Sustained, r.Failed)
			}
			return fmt.Sprint(r.Sustained)
		}
		ratio := ""
		if lok && fok && ff.Sustained > 0 {
			ratio = fmt.Sprintf("%.2g", float64(ls.Sustained)/float64(ff.Sustained))
		}
		fmt.Fprintf(tw, "%s\t%gs\t%s\t%s\t%s\t%s\t\n", k.variant, k.interval, k.policy, cell(ls, lok), cell(ff, fok), ratio)
	}
	tw.Flush()
}
