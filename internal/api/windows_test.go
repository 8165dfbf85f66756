package api

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// recordAt stores one sequence record of job per instant.
func (f *fixture) recordAt(job string, at ...time.Time) {
	f.t.Helper()
	j, err := f.db.GetJob(context.Background(), f.a.Account.ID, job)
	if err != nil {
		f.t.Fatal(err)
	}
	for i, t := range at {
		file := snapshot.File{AccountID: f.a.Account.ID, JobID: job, Endpoint: "e", Bucket: "testbucket",
			Object: fmt.Sprintf("s/%d.jpg", i), CreateTime: t}
		if err := f.db.RecordCapture(context.Background(), store.Capture{JobID: job, Generation: j.Generation, Files: []snapshot.File{file}}); err != nil {
			f.t.Fatal(err)
		}
	}
}

func stamps(m map[string]any) []int64 {
	var out []int64
	for _, it := range m["FileList"].([]any) {
		out = append(out, int64(it.(map[string]any)["CreateTimestamp"].(float64)))
	}
	return out
}

// A second-precision EndTime covers its whole second, so [T, T] holds the records whose
// CreateTime reads T; an EndTime with milliseconds is exact. The same for the jobs' window.
func TestWindowEndCoversItsWholeSecond(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	f.live["rtmp://h/live/s"] = true
	job := f.job(f.a, tpl, "rtmp://h/live/s")
	T := time.Date(2026, 12, 4, 5, 15, 9, 0, time.UTC)
	f.recordAt(job, T.Add(-time.Millisecond), T, T.Add(188*time.Millisecond), T.Add(999*time.Millisecond), T.Add(time.Second))
	ms := func(d time.Duration) int64 { return T.Add(d).UnixMilli() }
	list := func(start, end string) []int64 {
		return stamps(f.must(f.a, "ListLiveSnapshotFiles", "JobId", job, "StartTime", start, "EndTime", end, "Limit", "100"))
	}
	for _, c := range []struct {
		start, end string
		want       []int64
	}{
		{"2026-12-04T05:15:09Z", "2026-12-04T05:15:09Z", []int64{ms(0), ms(188 * time.Millisecond), ms(999 * time.Millisecond)}},
		{"2026-12-04T05:15:09Z", "2026-12-04T05:15:09.188Z", []int64{ms(0), ms(188 * time.Millisecond)}},
		{"2026-12-04T05:15:09Z", "2026-12-04T05:15:09.000Z", []int64{ms(0)}},
		{"2026-12-04T05:15:09.188Z", "2026-12-04T05:15:10Z", []int64{ms(188 * time.Millisecond), ms(999 * time.Millisecond), ms(time.Second)}},
		// A day queried as 00:00:00..23:59:59 keeps its last second; a full 24 h window is
		// still allowed, checked as written.
		{"2026-12-03T05:15:09Z", "2026-12-04T05:15:08Z", []int64{ms(-time.Millisecond)}},
		{"2026-12-03T05:15:10Z", "2026-12-04T05:15:10Z", []int64{ms(-time.Millisecond), ms(0), ms(188 * time.Millisecond), ms(999 * time.Millisecond), ms(time.Second)}},
	} {
		if got := list(c.start, c.end); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("[%s, %s]: %v, want %v", c.start, c.end, got, c.want)
		}
	}
	f.wantCode("EndTimeMismatch", f.a, "ListLiveSnapshotFiles", "JobId", job, "StartTime", "2026-12-03T05:15:09Z", "EndTime", "2026-12-04T05:15:10Z")

	// Jobs created at T, T.5 and T+1: [T, T] lists the first two.
	clock := T
	f.svc.Now = func() time.Time { return clock }
	var jobs []string
	for _, d := range []time.Duration{0, 500 * time.Millisecond, time.Second} {
		clock = T.Add(d)
		jobs = append(jobs, f.jobTo(f.b, f.template(f.b), "rtmp://h/live/x", "bbucket"))
	}
	m := f.must(f.b, "ListLiveSnapshotJobs", "StartTime", "2026-12-04T05:15:09Z", "EndTime", "2026-12-04T05:15:09Z", "SortBy", "asc")
	if m["TotalCount"] != 2.0 || m["JobList"].([]any)[1].(map[string]any)["JobId"] != jobs[1] {
		t.Fatalf("jobs of one second: %v", m)
	}
	if m := f.must(f.b, "ListLiveSnapshotJobs", "StartTime", "2026-12-04T05:15:09Z", "EndTime", "2026-12-04T05:15:09.499Z"); m["TotalCount"] != 1.0 {
		t.Fatalf("an exact end: %v", m)
	}
	f.must(f.b, "ListLiveSnapshotJobs", "StartTime", "2026-11-04T05:15:09Z", "EndTime", "2026-12-04T05:15:09Z") // 30 days as written
	f.wantCode("EndTimeMismatch", f.b, "ListLiveSnapshotJobs", "StartTime", "2026-11-04T05:15:09Z", "EndTime", "2026-12-04T05:15:10Z")
}

// Paging backwards across records on and just after a whole second: the cursor that points
// at the whole-second record carries its milliseconds, so the next page (EndTime = cursor)
// does not take the rest of that second again.
func TestDescPagingCursorOnAWholeSecondStaysExact(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	f.live["rtmp://h/live/s"] = true
	job := f.job(f.a, tpl, "rtmp://h/live/s")
	T := time.Date(2026, 12, 4, 5, 15, 9, 0, time.UTC)
	f.recordAt(job, T.Add(-time.Second), T, T.Add(400*time.Millisecond), T.Add(700*time.Millisecond))
	end := "2026-12-04T05:15:09Z" // covers .400 and .700
	var got []int64
	var cursors []string
	for page := 0; page < 10; page++ {
		m := f.must(f.a, "ListLiveSnapshotFiles", "JobId", job, "StartTime", "2026-12-04T05:00:00Z", "EndTime", end, "Limit", "1", "SortBy", "desc")
		got = append(got, stamps(m)...)
		next, _ := m["NextStartTime"].(string)
		if next == "" {
			break
		}
		cursors = append(cursors, next)
		end = next
	}
	want := []int64{T.Add(700 * time.Millisecond).UnixMilli(), T.Add(400 * time.Millisecond).UnixMilli(), T.UnixMilli(), T.Add(-time.Second).UnixMilli()}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("desc pages: %v, want %v (cursors %v)", got, want, cursors)
	}
	if cursors[1] != "2026-12-04T05:15:09.000Z" {
		t.Fatalf("the cursor at a whole second is %q", cursors[1])
	}
	// Ascending cursors keep ICE's layout on whole seconds: a StartTime is exact either way.
	m := f.must(f.a, "ListLiveSnapshotFiles", "JobId", job, "StartTime", "2026-12-04T05:15:08Z", "EndTime", "2026-12-04T05:15:10Z", "Limit", "1")
	if m["NextStartTime"] != "2026-12-04T05:15:09Z" {
		t.Fatalf("asc cursor: %v", m["NextStartTime"])
	}
}
