package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/netpolicy"
	"github.com/livesnap/livesnap/internal/ratelimit"
	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
	"github.com/livesnap/livesnap/internal/store/sqlite"
)

// fixture is a Service on a fresh SQLite store with two accounts.
type fixture struct {
	t      *testing.T
	svc    *Service
	db     *sqlite.DB
	a, b   Principal
	live   map[string]bool // stream URLs the fake probe reports as live
	probes int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, db: db, live: map[string]bool{}}
	f.svc = &Service{Store: db, MinInterval: 5, NetPolicy: netpolicy.Default(), StorageTypes: []string{"oss"}, StreamTypes: []string{"rtmp"},
		Probe: func(ctx context.Context, in snapshot.StreamInput) error {
			f.probes++
			if f.live[in.URL] {
				return nil
			}
			return fmt.Errorf("%w: nobody publishes %s", ErrStreamNotFound, in.URL)
		}}
	for _, p := range []*Principal{&f.a, &f.b} {
		acct, err := db.CreateAccount(context.Background(), auth.Account{ServiceEnabled: true})
		if err != nil {
			t.Fatal(err)
		}
		p.Account, p.Key = acct, auth.AccessKey{ID: fmt.Sprint("key", acct.ID), AccountID: acct.ID, Policy: auth.FullAccess}
	}
	return f
}

// call runs an action as p and returns its JSON answer as a map.
func (f *fixture) call(p Principal, action string, kv ...string) (map[string]any, error) {
	f.t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	h, ok := f.svc.Actions()[action]
	if !ok {
		f.t.Fatalf("no action %s", action)
	}
	call := &rpc.Call{Action: action, Version: Version, Params: v, Principal: p}
	if err := f.svc.Authorize(context.Background(), call); err != nil {
		return nil, err
	}
	out, err := h(context.Background(), call)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(out)
	var m map[string]any
	json.Unmarshal(b, &m)
	return m, nil
}

func (f *fixture) must(p Principal, action string, kv ...string) map[string]any {
	f.t.Helper()
	m, err := f.call(p, action, kv...)
	if err != nil {
		f.t.Fatalf("%s: %v", action, err)
	}
	return m
}

func (f *fixture) wantCode(code string, p Principal, action string, kv ...string) {
	f.t.Helper()
	_, err := f.call(p, action, kv...)
	var e *rpc.Error
	if !errors.As(err, &e) || e.Code != code {
		f.t.Fatalf("%s %v: want %s, got %v", action, kv, code, err)
	}
}

func (f *fixture) template(p Principal) string {
	return f.must(p, "CreateLiveSnapshotTemplate", "TemplateName", "t", "TimeInterval", "5",
		"OverwriteFormat", "snapshot/{JobId}.jpg", "SequenceFormat", "snapshot/{JobId}/{UnixTimestamp}.jpg")["TemplateId"].(string)
}

func (f *fixture) job(p Principal, tpl, streamURL string) string {
	return f.jobTo(p, tpl, streamURL, "testbucket")
}

// jobTo submits a job writing to bucket (an account may only use buckets it owns).
func (f *fixture) jobTo(p Principal, tpl, streamURL, bucket string) string {
	return f.must(p, "SubmitLiveSnapshotJob", "JobName", "j", "TemplateId", tpl,
		"StreamInput", `{"Type":"rtmp","Url":"`+streamURL+`"}`,
		"SnapshotOutput", `{"StorageType":"oss","Endpoint":"oss-cn-shanghai.aliyuncs.com","Bucket":"`+bucket+`"}`)["JobId"].(string)
}

func TestTemplateRoundTrip(t *testing.T) {
	f := newFixture(t)
	id := f.template(f.a)
	got := f.must(f.a, "GetLiveSnapshotTemplate", "TemplateId", id)
	want := map[string]any{"TemplateId": id, "TemplateName": "t", "Type": "custom", "TimeInterval": 5.0,
		"OverwriteFormat": "snapshot/{JobId}.jpg", "SequenceFormat": "snapshot/{JobId}/{UnixTimestamp}.jpg"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := snapshot.ParseTime(got["CreateTime"].(string)); !ok {
		t.Errorf("CreateTime %v not in ICE layout", got["CreateTime"])
	}
	if got["CapturePolicy"] != "keyframe" || got["Width"] != 0.0 || got["Quality"] != 0.0 {
		t.Errorf("default image settings: %v", got)
	}
	f.wantCode("TemplateNotFound", f.b, "GetLiveSnapshotTemplate", "TemplateId", id)
	f.wantCode("TemplateNotFound", f.a, "GetLiveSnapshotTemplate", "TemplateId", "nope")

	ext := f.must(f.a, "CreateLiveSnapshotTemplate", "TemplateName", "x", "TimeInterval", "5", "SequenceFormat", "{Sequence}.jpg",
		"CapturePolicy", "exact", "Width", "320", "Quality", "70")["TemplateId"].(string)
	got = f.must(f.a, "GetLiveSnapshotTemplate", "TemplateId", ext)
	if got["CapturePolicy"] != "exact" || got["Width"] != 320.0 || got["Height"] != 0.0 || got["Quality"] != 70.0 {
		t.Errorf("image settings: %v", got)
	}
	f.must(f.a, "UpdateLiveSnapshotTemplate", "TemplateId", ext, "Height", "180")
	if got = f.must(f.a, "GetLiveSnapshotTemplate", "TemplateId", ext); got["Width"] != 320.0 || got["Height"] != 180.0 || got["CapturePolicy"] != "exact" {
		t.Errorf("updated image settings: %v", got)
	}
	for _, kv := range [][]string{{"CapturePolicy", "best"}, {"Width", "-1"}, {"Height", "99999"}, {"Quality", "101"}} {
		f.wantCode("InvalidParameter", f.a, "CreateLiveSnapshotTemplate", append([]string{"TemplateName", "x", "TimeInterval", "5", "SequenceFormat", "{Sequence}.jpg"}, kv...)...)
	}
	f.wantCode("MissingParameter", f.a, "GetLiveSnapshotTemplate")
}

func TestCreateTemplateValidation(t *testing.T) {
	f := newFixture(t)
	ok := []string{"TemplateName", "t", "TimeInterval", "5", "SequenceFormat", "{Sequence}.jpg"}
	with := func(kv ...string) []string {
		out := append([]string(nil), ok...)
		for i := 0; i < len(kv); i += 2 {
			replaced := false
			for j := 0; j < len(out); j += 2 {
				if out[j] == kv[i] {
					out[j+1], replaced = kv[i+1], true
				}
			}
			if !replaced {
				out = append(out, kv[i], kv[i+1])
			}
		}
		return out
	}
	f.must(f.a, "CreateLiveSnapshotTemplate", ok...)
	f.wantCode("MissingParameter", f.a, "CreateLiveSnapshotTemplate", "TimeInterval", "5", "SequenceFormat", "{Sequence}.jpg")
	f.wantCode("MissingParameter", f.a, "CreateLiveSnapshotTemplate", "TemplateName", "t", "SequenceFormat", "{Sequence}.jpg")
	for name, kv := range map[string][]string{
		"interval below the minimum": {"TimeInterval", "4"},
		"interval above 3600":        {"TimeInterval", "3601"},
		"interval not a number":      {"TimeInterval", "5s"},
		"no format":                  {"SequenceFormat", ""},
		"sequence without counter":   {"SequenceFormat", "{JobId}.jpg"},
		"overwrite with timestamp":   {"OverwriteFormat", "{UnixTimestamp}.jpg"},
		"name too long":              {"TemplateName", string(make([]byte, 129))},
		"traversal":                  {"SequenceFormat", "../{Sequence}.jpg"},
	} {
		t.Run(name, func(t *testing.T) {
			f.wantCode("InvalidParameter", f.a, "CreateLiveSnapshotTemplate", with(kv...)...)
		})
	}
	// The operator's minimum interval setting is what the API enforces.
	f.svc.MinInterval = 1
	f.must(f.a, "CreateLiveSnapshotTemplate", with("TimeInterval", "1")...)
}

func TestSubmitAndCommands(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	f.live["rtmp://127.0.0.1/live/on"] = true

	live := f.job(f.a, tpl, "rtmp://127.0.0.1/live/on")
	dead := f.job(f.a, tpl, "rtmp://127.0.0.1/live/off")
	j := f.must(f.a, "GetLiveSnapshotJob", "JobId", live)
	if j["Status"] != "started" || j["TemplateName"] != "t" || j["TimeInterval"] != 5.0 ||
		j["StreamInput"].(map[string]any)["Url"] != "rtmp://127.0.0.1/live/on" ||
		j["SnapshotOutput"].(map[string]any)["Bucket"] != "testbucket" {
		t.Fatalf("job: %v", j)
	}
	if st := f.must(f.a, "GetLiveSnapshotJob", "JobId", dead)["Status"]; st != "init" {
		t.Fatalf("a job on a dead stream must stay init, got %v", st)
	}
	cmd := func(id, c string) (map[string]any, error) {
		return f.call(f.a, "SendLiveSnapshotJobCommand", "JobId", id, "Command", c)
	}
	f.wantCode("JobAlreadyStarted", f.a, "SendLiveSnapshotJobCommand", "JobId", live, "Command", "start")
	f.wantCode("StreamNotFound", f.a, "SendLiveSnapshotJobCommand", "JobId", dead, "Command", "start")
	f.wantCode("StreamNotFound", f.a, "SendLiveSnapshotJobCommand", "JobId", dead, "Command", "restart")
	f.wantCode("InvalidParameter", f.a, "SendLiveSnapshotJobCommand", "JobId", live, "Command", "pause")
	f.wantCode("MissingParameter", f.a, "SendLiveSnapshotJobCommand", "JobId", live)
	f.wantCode("JobNotFound", f.a, "SendLiveSnapshotJobCommand", "JobId", "nope", "Command", "stop")
	f.wantCode("JobNotFound", f.b, "SendLiveSnapshotJobCommand", "JobId", live, "Command", "stop")
	f.wantCode("JobNotFound", f.b, "GetLiveSnapshotJob", "JobId", live)
	for _, c := range []string{"stop", "stop"} {
		if _, err := cmd(live, c); err != nil {
			t.Fatal(err)
		}
	}
	if st := f.must(f.a, "GetLiveSnapshotJob", "JobId", live)["Status"]; st != "paused" {
		t.Fatalf("after stop: %v", st)
	}
	if _, err := cmd(dead, "stop"); err != nil {
		t.Fatalf("stop on init is a no-op: %v", err)
	}
	if st := f.must(f.a, "GetLiveSnapshotJob", "JobId", dead)["Status"]; st != "init" {
		t.Fatalf("stop must leave init alone: %v", st)
	}
	for _, c := range []string{"start", "restart"} {
		if _, err := cmd(live, c); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	f.db.GetJob(context.Background(), f.a.Account.ID, live)
	if j, _ := f.db.GetJob(context.Background(), f.a.Account.ID, live); j.Generation != 3 {
		t.Fatalf("submit, start and restart must each start a new generation: %d", j.Generation)
	}
}

func TestJobLimit(t *testing.T) {
	f := newFixture(t)
	f.a.Account.JobLimit = 2
	tpl := f.template(f.a)
	f.live["rtmp://h/live/s"] = true
	ids := []string{f.job(f.a, tpl, "rtmp://h/live/s"), f.job(f.a, tpl, "rtmp://h/live/s"), f.job(f.a, tpl, "rtmp://h/live/s")}
	if st := f.must(f.a, "GetLiveSnapshotJob", "JobId", ids[2])["Status"]; st != "init" {
		t.Fatalf("the third job over a limit of 2 must stay init, got %v", st)
	}
	f.wantCode("JobLimitExceeded", f.a, "SendLiveSnapshotJobCommand", "JobId", ids[2], "Command", "start")
	f.must(f.a, "SendLiveSnapshotJobCommand", "JobId", ids[0], "Command", "restart") // a restart at the limit is fine
	f.must(f.a, "SendLiveSnapshotJobCommand", "JobId", ids[0], "Command", "stop")
	f.must(f.a, "SendLiveSnapshotJobCommand", "JobId", ids[2], "Command", "start")
}

func TestSubmitValidation(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	in := `{"Type":"rtmp","Url":"rtmp://h/live/s"}`
	out := `{"StorageType":"oss","Endpoint":"oss-cn-shanghai.aliyuncs.com","Bucket":"testbucket"}`
	cases := []struct {
		name, code string
		kv         []string
	}{
		{"no name", "MissingParameter", []string{"TemplateId", tpl, "StreamInput", in, "SnapshotOutput", out}},
		{"no input", "MissingParameter", []string{"JobName", "j", "TemplateId", tpl, "SnapshotOutput", out}},
		{"input not JSON", "InvalidParameter", []string{"JobName", "j", "TemplateId", tpl, "StreamInput", "rtmp://h/s", "SnapshotOutput", out}},
		{"input type", "InvalidParameter", []string{"JobName", "j", "TemplateId", tpl, "StreamInput", `{"Type":"webrtc","Url":"rtmp://h/s"}`, "SnapshotOutput", out}},
		{"input scheme", "InvalidParameter", []string{"JobName", "j", "TemplateId", tpl, "StreamInput", `{"Type":"rtmp","Url":"file:///etc/passwd"}`, "SnapshotOutput", out}},
		{"input unknown field", "InvalidParameter", []string{"JobName", "j", "TemplateId", tpl, "StreamInput", `{"Type":"rtmp","Url":"rtmp://h/s","Uri":"x"}`, "SnapshotOutput", out}},
		{"storage type", "InvalidParameter", []string{"JobName", "j", "TemplateId", tpl, "StreamInput", in, "SnapshotOutput", `{"StorageType":"ftp","Endpoint":"e","Bucket":"testbucket"}`}},
		{"bucket traversal", "InvalidParameter", []string{"JobName", "j", "TemplateId", tpl, "StreamInput", in, "SnapshotOutput", `{"StorageType":"oss","Endpoint":"e","Bucket":"../x"}`}},
		{"no bucket", "MissingParameter", []string{"JobName", "j", "TemplateId", tpl, "StreamInput", in, "SnapshotOutput", `{"StorageType":"oss","Endpoint":"e"}`}},
		{"callback scheme", "InvalidParameter", []string{"JobName", "j", "TemplateId", tpl, "StreamInput", in, "SnapshotOutput", out, "CallbackUrl", "ftp://h/cb"}},
		{"metadata service stream", "InvalidParameter", []string{"JobName", "j", "TemplateId", tpl, "StreamInput", `{"Type":"rtmp","Url":"rtmp://169.254.169.254/a/b"}`, "SnapshotOutput", out}},
		{"metadata service callback", "InvalidParameter", []string{"JobName", "j", "TemplateId", tpl, "StreamInput", in, "SnapshotOutput", out, "CallbackUrl", "http://100.100.100.200/latest/meta-data"}},
		{"unknown template", "TemplateNotFound", []string{"JobName", "j", "TemplateId", "nope", "StreamInput", in, "SnapshotOutput", out}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { f.wantCode(c.code, f.a, "SubmitLiveSnapshotJob", c.kv...) })
	}
	// Another account's template is as unknown as a missing one.
	f.wantCode("TemplateNotFound", f.b, "SubmitLiveSnapshotJob", "JobName", "j", "TemplateId", tpl, "StreamInput", in, "SnapshotOutput", out)
	// The flat form of the object parameters works too.
	f.must(f.a, "SubmitLiveSnapshotJob", "JobName", "j", "TemplateId", tpl, "StreamInput.Type", "rtmp", "StreamInput.Url", "rtmp://h/live/s",
		"SnapshotOutput.StorageType", "oss", "SnapshotOutput.Endpoint", "oss-cn-shanghai.aliyuncs.com", "SnapshotOutput.Bucket", "testbucket")
}

// StreamInput.Transport (extension): tcp or udp for rtsp only; stored with the job, given to
// the probe, and absent from answers when not set (official clients see ICE's fields).
func TestSubmitTransport(t *testing.T) {
	f := newFixture(t)
	f.svc.StreamTypes = []string{"rtmp", "rtsp", "hls", "http-flv", "srt"}
	var probed snapshot.StreamInput
	probe := f.svc.Probe
	f.svc.Probe = func(ctx context.Context, in snapshot.StreamInput) error {
		probed = in
		return probe(ctx, in)
	}
	tpl := f.template(f.a)
	out := `{"StorageType":"oss","Endpoint":"oss-cn-shanghai.aliyuncs.com","Bucket":"testbucket"}`
	submit := func(in string) string {
		return f.must(f.a, "SubmitLiveSnapshotJob", "JobName", "j", "TemplateId", tpl, "StreamInput", in, "SnapshotOutput", out)["JobId"].(string)
	}
	input := func(id string) map[string]any {
		return f.must(f.a, "GetLiveSnapshotJob", "JobId", id)["StreamInput"].(map[string]any)
	}

	id := submit(`{"Type":"rtsp","Url":"rtsp://h/live","Transport":"udp"}`)
	if got := input(id); got["Transport"] != "udp" || got["Type"] != "rtsp" {
		t.Errorf("StreamInput read back as %v", got)
	}
	if probed.Transport != "udp" {
		t.Errorf("probe got %+v", probed)
	}
	id = f.must(f.a, "SubmitLiveSnapshotJob", "JobName", "j", "TemplateId", tpl, "StreamInput.Type", "rtsp",
		"StreamInput.Url", "rtsp://h/live", "StreamInput.Transport", "tcp", "SnapshotOutput", out)["JobId"].(string)
	if got := input(id); got["Transport"] != "tcp" {
		t.Errorf("flat form: StreamInput read back as %v", got)
	}
	id = submit(`{"Type":"hls","Url":"https://h/live.m3u8"}`)
	if got := input(id); len(got) != 2 {
		t.Errorf("without Transport the answer has exactly Type and Url, got %v", got)
	}

	for _, in := range []string{
		`{"Type":"rtsp","Url":"rtsp://h/live","Transport":"multicast"}`,
		`{"Type":"rtsp","Url":"rtsp://h/live","Transport":"UDP"}`,
		`{"Type":"rtmp","Url":"rtmp://h/live/s","Transport":"tcp"}`,
		`{"Type":"srt","Url":"srt://h:9000","Transport":"udp"}`,
	} {
		f.wantCode("InvalidParameter", f.a, "SubmitLiveSnapshotJob", "JobName", "j", "TemplateId", tpl, "StreamInput", in, "SnapshotOutput", out)
	}
}

func TestAuthorize(t *testing.T) {
	f := newFixture(t)
	p := f.a
	p.Key.Policy = []string{"ice:Get*"}
	f.wantCode("Forbidden", p, "CreateLiveSnapshotTemplate", "TemplateName", "t", "TimeInterval", "5", "SequenceFormat", "{Sequence}.jpg")
	f.wantCode("TemplateNotFound", p, "GetLiveSnapshotTemplate", "TemplateId", "x")
	p.Key.Disabled = true
	f.wantCode("UserDisable", p, "GetLiveSnapshotTemplate", "TemplateId", "x")
	p = f.a
	p.Account.Disabled = true
	f.wantCode("UserDisable", p, "GetLiveSnapshotTemplate", "TemplateId", "x")
	p = f.a
	p.Account.ServiceEnabled = false
	f.wantCode("OperationDenied", p, "GetLiveSnapshotTemplate", "TemplateId", "x")

	f.svc.RateLimit = &ratelimit.Shared{Rate: 0.001, Burst: 2, Buckets: f.db}
	f.wantCode("TemplateNotFound", f.a, "GetLiveSnapshotTemplate", "TemplateId", "x")
	f.wantCode("TemplateNotFound", f.a, "GetLiveSnapshotTemplate", "TemplateId", "x")
	f.wantCode("Throttling.User", f.a, "GetLiveSnapshotTemplate", "TemplateId", "x")
	f.wantCode("TemplateNotFound", f.b, "GetLiveSnapshotTemplate", "TemplateId", "x") // per key
}

// Paging through hundreds of records, many sharing a millisecond, in both orders and with
// small pages, returns every record exactly once.
func TestListFilesPagingIsExact(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	f.live["rtmp://h/live/s"] = true
	job := f.job(f.a, tpl, "rtmp://h/live/s")
	j, _ := f.db.GetJob(context.Background(), f.a.Account.ID, job)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	want := map[string]bool{}
	for i := 0; i < 300; i++ {
		// 300 captures within two seconds; every third shares its millisecond with the previous.
		at := base.Add(time.Duration(i-i/3) * 6 * time.Millisecond)
		seq := snapshot.File{AccountID: f.a.Account.ID, JobID: job, Endpoint: "e", Bucket: "testbucket", Object: fmt.Sprintf("s/%03d.jpg", i), CreateTime: at}
		if err := f.db.RecordCapture(context.Background(), store.Capture{JobID: job, Generation: j.Generation, Files: []snapshot.File{seq}}); err != nil {
			t.Fatal(err)
		}
		want[seq.Object] = true
	}
	last := snapshot.File{AccountID: f.a.Account.ID, JobID: job, Endpoint: "e", Bucket: "testbucket", Object: "o.jpg", CreateTime: base.Add(time.Second), IsOverlay: true}
	f.db.RecordCapture(context.Background(), store.Capture{JobID: job, Generation: j.Generation, Files: []snapshot.File{last}})
	want["o.jpg"] = true

	for _, order := range []string{"asc", "desc"} {
		for _, limit := range []int{1, 2, 7, 100} {
			t.Run(fmt.Sprint(order, limit), func(t *testing.T) {
				start, end := "2024-01-01T00:00:00Z", "2024-01-01T00:00:05Z"
				seen := map[string]bool{}
				var prev int64 = -1
				for page := 0; ; page++ {
					if page > 400 {
						t.Fatal("paging does not end")
					}
					m := f.must(f.a, "ListLiveSnapshotFiles", "JobId", job, "StartTime", start, "EndTime", end, "Limit", fmt.Sprint(limit), "SortBy", order)
					for _, it := range m["FileList"].([]any) {
						item := it.(map[string]any)
						obj := item["OssObject"].(string)
						ts := int64(item["CreateTimestamp"].(float64))
						if seen[obj] {
							t.Fatalf("%s returned twice", obj)
						}
						if prev >= 0 && (order == "asc" && ts < prev || order == "desc" && ts > prev) {
							t.Fatalf("out of order: %d after %d", ts, prev)
						}
						seen[obj], prev = true, ts
					}
					next, _ := m["NextStartTime"].(string)
					if next == "" {
						break
					}
					if order == "asc" {
						start = next
					} else {
						end = next
					}
				}
				if len(seen) != len(want) {
					t.Fatalf("saw %d of %d records", len(seen), len(want))
				}
			})
		}
	}
}

func TestListFilesErrors(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	job := f.job(f.a, tpl, "rtmp://h/live/s")
	ok := func(kv ...string) []string {
		return append([]string{"JobId", job, "StartTime", "2024-01-01T00:00:00Z", "EndTime", "2024-01-01T01:00:00Z"}, kv...)
	}
	f.must(f.a, "ListLiveSnapshotFiles", ok()...)
	f.wantCode("MissingParameter", f.a, "ListLiveSnapshotFiles", "JobId", job, "EndTime", "2024-01-01T01:00:00Z")
	f.wantCode("MalformedStartTime", f.a, "ListLiveSnapshotFiles", "JobId", job, "StartTime", "yesterday", "EndTime", "2024-01-01T01:00:00Z")
	f.wantCode("MalformedEndTime", f.a, "ListLiveSnapshotFiles", "JobId", job, "StartTime", "2024-01-01T01:00:00Z", "EndTime", "2024-01-01 02:00:00")
	f.wantCode("EndTimeMismatch", f.a, "ListLiveSnapshotFiles", "JobId", job, "StartTime", "2024-01-02T00:00:00Z", "EndTime", "2024-01-01T00:00:00Z")
	f.wantCode("EndTimeMismatch", f.a, "ListLiveSnapshotFiles", "JobId", job, "StartTime", "2024-01-01T00:00:00Z", "EndTime", "2024-01-02T00:00:01Z")
	f.wantCode("InvalidParameter", f.a, "ListLiveSnapshotFiles", ok("Limit", "0")...)
	f.wantCode("InvalidParameter", f.a, "ListLiveSnapshotFiles", ok("Limit", "101")...)
	f.wantCode("InvalidParameter", f.a, "ListLiveSnapshotFiles", ok("SortBy", "up")...)
	f.wantCode("JobNotFound", f.b, "ListLiveSnapshotFiles", ok()...)
	if m := f.must(f.a, "ListLiveSnapshotFiles", ok()...); len(m["FileList"].([]any)) != 0 || m["NextStartTime"] != nil {
		t.Fatalf("empty listing: %v", m)
	}
}
