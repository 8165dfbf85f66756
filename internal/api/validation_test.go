package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/livesnap/livesnap/internal/rpc"
)

// wantInvalid calls action and checks for 400 InvalidParameter whose message holds want.
func (f *fixture) wantInvalid(want string, p Principal, action string, kv ...string) {
	f.t.Helper()
	_, err := f.call(p, action, kv...)
	var e *rpc.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Code != "InvalidParameter" || !strings.Contains(e.Message, want) {
		f.t.Fatalf("%s %q: want 400 InvalidParameter with %q, got %v", action, kv, want, err)
	}
}

// Names, ids, keywords and commands are text: a control character in any of them is refused
// before the store is asked (PostgreSQL cannot store NUL; the e2e suite runs this there).
func TestControlCharactersInTextParametersAreRefused(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	job := f.job(f.a, tpl, "rtmp://h/live/s")
	window := []string{"StartTime", "2024-01-01T00:00:00Z", "EndTime", "2024-01-01T01:00:00Z"}
	for _, c := range []string{"\x00", "\x01", "\t", "\n", "\x1b", "\x7f", "\u0085", "\u009b"} {
		bad := "x" + c + "y"
		calls := [][]string{
			{"CreateLiveSnapshotTemplate", "TemplateName", bad, "TimeInterval", "5", "SequenceFormat", "{Sequence}.jpg"},
			{"UpdateLiveSnapshotTemplate", "TemplateId", tpl, "TemplateName", bad},
			{"UpdateLiveSnapshotTemplate", "TemplateId", bad, "TemplateName", "n"},
			{"GetLiveSnapshotTemplate", "TemplateId", bad},
			{"DeleteLiveSnapshotTemplate", "TemplateId", bad},
			{"ListLiveSnapshotTemplates", "SearchKeyWord", bad},
			{"ListLiveSnapshotTemplates", "TemplateIds.1", bad},
			{"ListLiveSnapshotTemplates", "TemplateIds", bad},
			{"SubmitLiveSnapshotJob", "JobName", bad, "TemplateId", tpl, "StreamInput", `{"Type":"rtmp","Url":"rtmp://h/live/s"}`,
				"SnapshotOutput", `{"StorageType":"oss","Endpoint":"e.example","Bucket":"testbucket"}`},
			{"SubmitLiveSnapshotJob", "JobName", "j", "TemplateId", bad, "StreamInput", `{"Type":"rtmp","Url":"rtmp://h/live/s"}`,
				"SnapshotOutput", `{"StorageType":"oss","Endpoint":"e.example","Bucket":"testbucket"}`},
			{"GetLiveSnapshotJob", "JobId", bad},
			{"ListLiveSnapshotJobs", "SearchKeyWord", bad},
			{"SendLiveSnapshotJobCommand", "JobId", bad, "Command", "stop"},
			{"SendLiveSnapshotJobCommand", "JobId", job, "Command", "stop" + c},
			append([]string{"ListLiveSnapshotFiles", "JobId", bad}, window...),
			{"DeleteLiveSnapshotFiles", "JobId", bad, "CreateTimestampList", "[1]"},
		}
		for _, kv := range calls {
			f.wantCode("InvalidParameter", f.a, kv[0], kv[1:]...)
		}
	}
	// Other text is fine, also where ICE shows none.
	name := "Caméra 1 — 北口 ✓"
	id := f.must(f.a, "CreateLiveSnapshotTemplate", "TemplateName", name, "TimeInterval", "5", "SequenceFormat", "{Sequence}.jpg")["TemplateId"].(string)
	if got := f.must(f.a, "GetLiveSnapshotTemplate", "TemplateId", id); got["TemplateName"] != name {
		t.Fatalf("name read back as %v", got["TemplateName"])
	}
}

// A format given empty to UpdateLiveSnapshotTemplate clears it; the result must still have
// at least one format, else 400 and nothing changes. An omitted format stays.
func TestUpdateTemplateClearsAFormatGivenEmpty(t *testing.T) {
	f := newFixture(t)
	id := f.template(f.a) // both formats
	f.must(f.a, "UpdateLiveSnapshotTemplate", "TemplateId", id, "OverwriteFormat", "")
	got := f.must(f.a, "GetLiveSnapshotTemplate", "TemplateId", id)
	if got["OverwriteFormat"] != "" || got["SequenceFormat"] != "snapshot/{JobId}/{UnixTimestamp}.jpg" {
		t.Fatalf("after clearing OverwriteFormat: %v", got)
	}
	f.wantInvalid("OverwriteFormat or SequenceFormat must be set", f.a, "UpdateLiveSnapshotTemplate", "TemplateId", id, "SequenceFormat", "")
	if got := f.must(f.a, "GetLiveSnapshotTemplate", "TemplateId", id); got["SequenceFormat"] != "snapshot/{JobId}/{UnixTimestamp}.jpg" {
		t.Fatalf("a refused update changed the template: %v", got)
	}
	// Swap in one call: set one, clear the other.
	f.must(f.a, "UpdateLiveSnapshotTemplate", "TemplateId", id, "OverwriteFormat", "o/{JobId}.jpg", "SequenceFormat", "")
	got = f.must(f.a, "GetLiveSnapshotTemplate", "TemplateId", id)
	if got["OverwriteFormat"] != "o/{JobId}.jpg" || got["SequenceFormat"] != "" {
		t.Fatalf("after the swap: %v", got)
	}
	f.must(f.a, "UpdateLiveSnapshotTemplate", "TemplateId", id, "TemplateName", "renamed")
	if got := f.must(f.a, "GetLiveSnapshotTemplate", "TemplateId", id); got["OverwriteFormat"] != "o/{JobId}.jpg" {
		t.Fatalf("an omitted format changed: %v", got)
	}
}

// A name or interval given to UpdateLiveSnapshotTemplate must be a real one: blank is refused
// as in Create, not ignored.
func TestUpdateTemplateRefusesBlankNameAndEmptyInterval(t *testing.T) {
	f := newFixture(t)
	id := f.template(f.a)
	for _, blank := range []string{"", "   ", "\u3000"} {
		f.wantCode("MissingParameter", f.a, "UpdateLiveSnapshotTemplate", "TemplateId", id, "TemplateName", blank)
	}
	f.wantInvalid("TimeInterval must be an integer from 5 to 3600", f.a, "UpdateLiveSnapshotTemplate", "TemplateId", id, "TimeInterval", "")
	if got := f.must(f.a, "GetLiveSnapshotTemplate", "TemplateId", id); got["TemplateName"] != "t" || got["TimeInterval"] != 5.0 {
		t.Fatalf("refused updates changed the template: %v", got)
	}
}

// Every refused TimeInterval gets the same message with the real bounds, and only plain
// decimals count as integers.
func TestTimeIntervalIsAPlainIntegerWithinTheRealBounds(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	for _, v := range []string{"4", "0", "-5", "3601", "5.0", " 5", "5 ", "+5", "05", "0x5", "5e0", "١٢"} {
		create := []string{"TemplateName", "x", "TimeInterval", v, "SequenceFormat", "{Sequence}.jpg"}
		f.wantInvalid("TimeInterval must be an integer from 5 to 3600", f.a, "CreateLiveSnapshotTemplate", create...)
		f.wantInvalid("TimeInterval must be an integer from 5 to 3600", f.a, "UpdateLiveSnapshotTemplate", "TemplateId", tpl, "TimeInterval", v)
	}
	for _, v := range []string{"5", "3600", "60"} {
		f.must(f.a, "CreateLiveSnapshotTemplate", "TemplateName", "x", "TimeInterval", v, "SequenceFormat", "{Sequence}.jpg")
	}
	// An operator's lower minimum is the one named.
	f.svc.MinInterval = 1
	f.wantInvalid("TimeInterval must be an integer from 1 to 3600", f.a, "CreateLiveSnapshotTemplate",
		"TemplateName", "x", "TimeInterval", "3601", "SequenceFormat", "{Sequence}.jpg")
	// The same integer rule for every integer parameter.
	for _, kv := range [][]string{{"PageSize", "+5"}, {"PageSize", "05"}, {"PageNo", " 1"}, {"PageNo", "-0"}} {
		f.wantCode("InvalidParameter", f.a, "ListLiveSnapshotTemplates", kv...)
	}
}

// A TemplateIds list with a gap, an empty item or a misnamed item is refused: it must never
// turn into "no filter" and list every template.
func TestTemplateIdsListMustBeComplete(t *testing.T) {
	f := newFixture(t)
	a, b := f.template(f.a), f.template(f.a)
	f.template(f.a)
	for _, kv := range [][]string{
		{"TemplateIds.2", a},
		{"TemplateIds.1", ""},
		{"TemplateIds.1", "  "},
		{"TemplateIds.1", a, "TemplateIds.3", b},
		{"TemplateIds.1", a, "TemplateIds.2", ""},
		{"TemplateIds.0", a},
		{"TemplateIds.01", a},
		{"TemplateIds.+1", a},
		{"TemplateIds.x", a},
		{"TemplateIds.201", a},
		{"TemplateIds", a + ",," + b},
		{"TemplateIds", "[]"},
		{"TemplateIds", a, "TemplateIds.1", b},
	} {
		f.wantCode("InvalidParameter", f.a, "ListLiveSnapshotTemplates", kv...)
	}
	for _, kv := range [][]string{
		{"TemplateIds.1", a, "TemplateIds.2", b},
		{"TemplateIds", a + "," + b},
		{"TemplateIds", `["` + a + `","` + b + `"]`},
	} {
		if m := f.must(f.a, "ListLiveSnapshotTemplates", kv...); m["TotalCount"] != 2.0 {
			t.Fatalf("%v: %v", kv, m["TotalCount"])
		}
	}
	// The flat form of CreateTimestampList follows the same rules.
	job := f.job(f.a, a, "rtmp://h/live/s")
	f.wantCode("InvalidParameter", f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList.2", "1")
	f.wantCode("InvalidParameter", f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", "[1]", "CreateTimestampList.1", "2")
}

// StreamInput and SnapshotOutput take exactly the spec's field names, each once, each a
// string, in one form.
func TestObjectParametersTakeExactFieldNamesOnce(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	out := `{"StorageType":"oss","Endpoint":"e.example","Bucket":"testbucket"}`
	in := `{"Type":"rtmp","Url":"rtmp://h/live/s"}`
	submit := func(kv ...string) []string {
		return append([]string{"JobName", "j", "TemplateId", tpl}, kv...)
	}
	for _, kv := range [][]string{
		{"StreamInput", `{"type":"rtmp","url":"rtmp://h/live/s"}`, "SnapshotOutput", out},
		{"StreamInput", `{"Type":"rtmp","Url":"rtmp://h/live/s","URL":"rtmp://evil/a/b"}`, "SnapshotOutput", out},
		{"StreamInput", `{"Type":"rtmp","Url":"rtmp://h/live/s","Url":"rtmp://h/live/t"}`, "SnapshotOutput", out},
		{"StreamInput", `{"Type":"rtmp","Url":"rtmp://h/live/s","Typo":"x"}`, "SnapshotOutput", out},
		{"StreamInput", `{"Type":"rtmp","Url":["rtmp://h/live/s"]}`, "SnapshotOutput", out},
		{"StreamInput", `{"Type":"rtmp","Url":null}`, "SnapshotOutput", out},
		{"StreamInput", `["rtmp"]`, "SnapshotOutput", out},
		{"StreamInput", in + `{}`, "SnapshotOutput", out},
		{"StreamInput", in, "SnapshotOutput", `{"StorageType":"oss","Endpoint":"e.example","bucket":"testbucket"}`},
		{"StreamInput", in, "SnapshotOutput", `{"StorageType":"oss","Endpoint":"e.example","Bucket":"testbucket","Bucket":"otherbucket"}`},
		{"StreamInput", in, "StreamInput.Url", "rtmp://h/live/t", "SnapshotOutput", out},
		{"StreamInput.Type", "rtmp", "StreamInput.url", "rtmp://h/live/s", "SnapshotOutput", out},
	} {
		f.wantCode("InvalidParameter", f.a, "SubmitLiveSnapshotJob", submit(kv...)...)
	}
	f.must(f.a, "SubmitLiveSnapshotJob", submit("StreamInput", in, "SnapshotOutput", out)...)
	f.must(f.a, "SubmitLiveSnapshotJob", submit("StreamInput.Type", "rtmp", "StreamInput.Url", "rtmp://h/live/s",
		"SnapshotOutput.StorageType", "oss", "SnapshotOutput.Endpoint", "e.example", "SnapshotOutput.Bucket", "testbucket")...)
	f.must(f.a, "SubmitLiveSnapshotJob", submit("StreamInput", " { \"Url\" : \"rtmp://h/live/s\",\n\t\"Type\": \"rtmp\" } ", "SnapshotOutput", out)...)
}

// SnapshotOutput.Endpoint is a host[:port] by DNS rules, and CallbackUrl and StreamInput.Url
// have real ports; the review's examples are refused.
func TestSubmitRefusesMalformedEndpointsAndPorts(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	submit := func(endpoint, stream, callback string) error {
		kv := []string{"JobName", "j", "TemplateId", tpl, "StreamInput", `{"Type":"rtmp","Url":"` + stream + `"}`,
			"SnapshotOutput", `{"StorageType":"oss","Endpoint":"` + endpoint + `","Bucket":"testbucket"}`}
		if callback != "" {
			kv = append(kv, "CallbackUrl", callback)
		}
		_, err := f.call(f.a, "SubmitLiveSnapshotJob", kv...)
		return err
	}
	const stream, endpoint = "rtmp://h/live/s", "oss-cn-shanghai.aliyuncs.com"
	for _, e := range []string{"http://evil", "a:/../x", "e:<b>", "-", ".", "a..b", "h:0", "h:65536", "h:", "a_b.example", "[::1"} {
		if err := submit(e, stream, ""); !isInvalid(err, "SnapshotOutput.Endpoint") {
			t.Errorf("Endpoint %q: %v", e, err)
		}
	}
	for _, cb := range []string{"http://h:0/cb", "http://h:99999/cb", "http://h:/cb", "http://h/a b", "https://h/cb?x=a b"} {
		if err := submit(endpoint, stream, cb); !isInvalid(err, "CallbackUrl") {
			t.Errorf("CallbackUrl %q: %v", cb, err)
		}
	}
	for _, s := range []string{"rtmp://h:0/live/s", "rtmp://h:70000/live/s", "rtmp://h:/live/s"} {
		if err := submit(endpoint, s, ""); !isInvalid(err, "StreamInput.Url") {
			t.Errorf("StreamInput.Url %q: %v", s, err)
		}
	}
	for _, ok := range [][3]string{
		{endpoint, stream, "http://h:8080/cb?token=x%20y"},
		{"minio.example:9000", "rtmp://h:1935/live/s", "https://[2001:db8::1]:443/cb"},
		{"[2001:db8::5]:9000", stream, ""},
	} {
		if err := submit(ok[0], ok[1], ok[2]); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
}

func isInvalid(err error, field string) bool {
	var e *rpc.Error
	return errors.As(err, &e) && e.Status == 400 && e.Code == "InvalidParameter" && strings.Contains(e.Message, field)
}
