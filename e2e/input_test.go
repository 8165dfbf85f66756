package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/store/postgres/pgtest"
)

// signedV1Nonce is signedV1 with a given nonce.
func signedV1Nonce(keyID, secret, action string, params url.Values, nonce string) string {
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	q.Set("AccessKeyId", keyID)
	q.Set("Action", action)
	q.Set("Format", "JSON")
	q.Set("SignatureMethod", "HMAC-SHA1")
	q.Set("SignatureNonce", nonce)
	q.Set("SignatureVersion", "1.0")
	q.Set("Timestamp", time.Now().UTC().Format("2006-01-02T15:04:05Z"))
	q.Set("Version", "2020-11-09")
	q.Set("Signature", rpc.SignV1("GET", q, secret))
	return q.Encode()
}

func freshNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Text no store can hold (NUL) or no name should (other control characters), in any name, id,
// keyword or protocol parameter, is a client error on SQLite and on PostgreSQL alike, also
// before authentication: never a 500, never an error line in the log. Such an access key id
// is simply unknown.
func TestControlCharactersAreClientErrorsOnEveryStore(t *testing.T) {
	for _, st := range []string{"sqlite", "postgres"} {
		t.Run(st, func(t *testing.T) {
			var args []string
			if st == "postgres" {
				args = []string{"--store", pgtest.Database(t)}
			}
			svc := startService(t, append(args, "--runners", "0")...)
			ice := svc.client(t, modeV3)
			tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "t", "TimeInterval": "5",
				"SequenceFormat": "{Sequence}.jpg"})["TemplateId"].(string)
			job := ice.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "j", "TemplateId": tpl,
				"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": "rtmp://127.0.0.1:1/live/x"}),
				"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "testbucket"})})["JobId"].(string)
			day := url.Values{"StartTime": {"2024-01-01T00:00:00Z"}, "EndTime": {"2024-01-01T01:00:00Z"}}
			for _, c := range []string{"\x00", "\x07", "\u0085"} {
				bad := "x" + c + "y"
				for action, params := range map[string]url.Values{
					"CreateLiveSnapshotTemplate": {"TemplateName": {bad}, "TimeInterval": {"5"}, "SequenceFormat": {"{Sequence}.jpg"}},
					"UpdateLiveSnapshotTemplate": {"TemplateId": {tpl}, "TemplateName": {bad}},
					"GetLiveSnapshotTemplate":    {"TemplateId": {bad}},
					"DeleteLiveSnapshotTemplate": {"TemplateId": {bad}},
					"ListLiveSnapshotTemplates":  {"SearchKeyWord": {bad}, "TemplateIds.1": {tpl}},
					"SubmitLiveSnapshotJob": {"JobName": {bad}, "TemplateId": {tpl},
						"StreamInput":    {`{"Type":"rtmp","Url":"rtmp://127.0.0.1:1/live/x"}`},
						"SnapshotOutput": {`{"StorageType":"oss","Endpoint":"oss-cn-shanghai.aliyuncs.com","Bucket":"testbucket"}`}},
					"GetLiveSnapshotJob":         {"JobId": {bad}},
					"ListLiveSnapshotJobs":       {"SearchKeyWord": {bad}},
					"SendLiveSnapshotJobCommand": {"JobId": {bad}, "Command": {"stop"}},
					"ListLiveSnapshotFiles":      {"JobId": {bad}, "StartTime": day["StartTime"], "EndTime": day["EndTime"]},
					"DeleteLiveSnapshotFiles":    {"JobId": {bad}, "CreateTimestampList": {"[1]"}},
				} {
					if status, code := get(t, svc.Endpoint, signedV1(svc.KeyID, svc.Secret, action, params)); status != 400 || code != "InvalidParameter" {
						t.Errorf("%s with %q: %d %s, want 400 InvalidParameter", action, bad, status, code)
					}
				}
				if status, code := get(t, svc.Endpoint, signedV1(svc.KeyID, svc.Secret, "ListLiveSnapshotTemplates", url.Values{"TemplateIds.1": {bad}})); status != 400 || code != "InvalidParameter" {
					t.Errorf("TemplateIds.1 %q: %d %s", bad, status, code)
				}
				// Unauthenticated: a key id nobody can have, and a nonce.
				if status, code := get(t, svc.Endpoint, signedV1(bad, "whatever", "ListLiveSnapshotJobs", nil)); status != 404 || code != "InvalidAccessKeyId.NotFound" {
					t.Errorf("AccessKeyId %q: %d %s, want 404 InvalidAccessKeyId.NotFound", bad, status, code)
				}
				if status, code := get(t, svc.Endpoint, signedV1Nonce(svc.KeyID, svc.Secret, "ListLiveSnapshotJobs", nil, freshNonce()+bad)); status != 400 || code != "InvalidParameter" {
					t.Errorf("SignatureNonce with %q: %d %s, want 400 InvalidParameter", bad, status, code)
				}
			}
			// Invalid UTF-8 is refused the same way.
			if status, code := get(t, svc.Endpoint, signedV1("LTAI\xff", "x", "ListLiveSnapshotJobs", nil)); status != 404 || code != "InvalidAccessKeyId.NotFound" {
				t.Errorf("AccessKeyId with invalid UTF-8: %d %s", status, code)
			}
			if status, code := get(t, svc.Endpoint, signedV1(svc.KeyID, svc.Secret, "GetLiveSnapshotJob", url.Values{"JobId": {job + "\xff"}})); status != 400 || code != "InvalidParameter" {
				t.Errorf("JobId with invalid UTF-8: %d %s", status, code)
			}
			// The real ids still work, and nothing above reached the store as an error.
			if status, code := get(t, svc.Endpoint, signedV1(svc.KeyID, svc.Secret, "GetLiveSnapshotJob", url.Values{"JobId": {job}})); status != 200 {
				t.Fatalf("GetLiveSnapshotJob: %d %s", status, code)
			}
			svc.Stop()
			for _, line := range strings.Split(svc.Logs.String(), "\n") {
				if strings.Contains(line, "level=ERROR") || strings.Contains(line, "internal error") {
					t.Errorf("logged: %s", line)
				}
			}
		})
	}
}

// What the official clients never send, but a hand-made request or a proxy might: a parameter
// twice, or a stream URL its source could never open, is refused at once.
func TestAmbiguousOrUnusableInputIsRefusedAtOnce(t *testing.T) {
	svc := startService(t, "--runners", "0")
	ice := svc.client(t, modeV3)
	tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "t", "TimeInterval": "5",
		"SequenceFormat": "{Sequence}.jpg"})["TemplateId"].(string)
	// The same parameter in the query and the body of a POST: which one is meant?
	q := signedV1(svc.KeyID, svc.Secret, "GetLiveSnapshotTemplate", url.Values{"TemplateId": {"nope"}})
	resp, err := http.Post("http://"+svc.Endpoint+"/?"+q, "application/x-www-form-urlencoded", strings.NewReader("TemplateId="+tpl))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("TemplateId in the query and the body: %d, want 400", resp.StatusCode)
	}
	if status, code := get(t, svc.Endpoint, signedV1(svc.KeyID, svc.Secret, "ListLiveSnapshotTemplates",
		url.Values{"PageSize": {"5", "500"}})); status != 400 || code != "InvalidParameter" {
		t.Fatalf("PageSize twice: %d %s", status, code)
	}
	out := jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "testbucket"})
	for _, mode := range allModes {
		c := svc.client(t, mode)
		for _, u := range []string{"rtmp://127.0.0.1:1", "rtmp://127.0.0.1:1/", "rtmp://127.0.0.1:0/live/x", "srt://127.0.0.1:9000?mode=listener"} {
			typ := "rtmp"
			if strings.HasPrefix(u, "srt") {
				typ = "srt"
			}
			c.wantError("SubmitLiveSnapshotJob", map[string]string{"JobName": "j", "TemplateId": tpl, "SnapshotOutput": out,
				"StreamInput": jsonText(map[string]string{"Type": typ, "Url": u})}, 400, "InvalidParameter")
		}
	}
	if m := ice.must("ListLiveSnapshotJobs", nil); m["TotalCount"] != 0.0 {
		t.Fatalf("refused submits made jobs: %v", m["TotalCount"])
	}
}
