package rpc

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestCapturedWireRequests replays the request shapes captured from the official SDKs (spec 2.6).
func TestCapturedWireRequests(t *testing.T) {
	_, ts := newTestServer(t, func(s *Server) {
		s.Actions["GetLiveSnapshotJob"] = func(ctx context.Context, c *Call) (any, error) {
			if c.Params.Get("JobId") == "nope" {
				return nil, NewError(http.StatusNotFound, "JobNotFound", "No such job.")
			}
			return echo(ctx, c)
		}
	})
	const ua = "AlibabaCloud (linux; amd64) Golang/1.26.0 Core/0.01 TeaDSL/2"

	// sdkV3 builds a request as darabonba does by default: x-acs-* headers including
	// x-acs-credentials-provider, all signed, plus unsigned accept/user-agent.
	sdkV3 := func(method, action, rawQuery, body string) *http.Request {
		u := ts.URL + "/"
		if rawQuery != "" {
			u += "?" + rawQuery
		}
		var req *http.Request
		if body != "" {
			req, _ = http.NewRequest(method, u, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req, _ = http.NewRequest(method, u, nil)
		}
		req.Header.Set("X-Acs-Action", action)
		req.Header.Set("X-Acs-Version", testVersion)
		req.Header.Set("X-Acs-Credentials-Provider", "static_ak")
		SignV3(req, []byte(body), testID, testSecret, randomHex(16), time.Now())
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", ua)
		return req
	}

	t.Run("V3 POST with x-acs-credentials-provider signed", func(t *testing.T) {
		req := sdkV3("POST", "SendLiveSnapshotJobCommand", "", "Command=start&JobId=job-1")
		want := "SignedHeaders=content-type;host;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,"
		if a := req.Header.Get("Authorization"); !strings.Contains(a, want) {
			t.Fatalf("Authorization = %s, want %s", a, want)
		}
		if got := req.Header.Get("X-Acs-Content-Sha256"); got != "bf70c5cd26158eb4ca2a483d42d540b76a93364fabf527f1b32106b856ba7c53" {
			t.Errorf("x-acs-content-sha256 = %s", got)
		}
		b := wantOK(t, do(t, req))
		if p := params(t, b); p["Command"] != "start" || p["JobId"] != "job-1" {
			t.Errorf("params = %v", p)
		}
	})
	t.Run("V3 POST SubmitLiveSnapshotJob with JSON-valued fields", func(t *testing.T) {
		body := "CallbackUrl=http%3A%2F%2F127.0.0.1%3A9%2Fcb&JobName=job1&SnapshotOutput=%7B%22Bucket%22%3A%22testbucket%22%2C%22Endpoint%22%3A%22oss-cn-shanghai.aliyuncs.com%22%2C%22StorageType%22%3A%22oss%22%7D&StreamInput=%7B%22Type%22%3A%22rtmp%22%2C%22Url%22%3A%22rtmp%3A%2F%2F127.0.0.1%2Flive%2Fs1%22%7D&TemplateId=tpl-1"
		p := params(t, wantOK(t, do(t, sdkV3("POST", "SubmitLiveSnapshotJob", "", body))))
		if p["StreamInput"] != `{"Type":"rtmp","Url":"rtmp://127.0.0.1/live/s1"}` || p["CallbackUrl"] != "http://127.0.0.1:9/cb" ||
			p["SnapshotOutput"] != `{"Bucket":"testbucket","Endpoint":"oss-cn-shanghai.aliyuncs.com","StorageType":"oss"}` {
			t.Errorf("params = %v", p)
		}
	})
	t.Run("V3 GET ListLiveSnapshotTemplates repeat list", func(t *testing.T) {
		p := params(t, wantOK(t, do(t, sdkV3("GET", "ListLiveSnapshotTemplates", "PageNo=1&TemplateIds.1=a&TemplateIds.2=b", ""))))
		if p["PageNo"] != "1" || p["TemplateIds.1"] != "a" || p["TemplateIds.2"] != "b" {
			t.Errorf("params = %v", p)
		}
	})
	t.Run("V3 DeleteLiveSnapshotFiles POST, query params, empty body, no Content-Type", func(t *testing.T) {
		req := sdkV3("POST", "DeleteLiveSnapshotFiles",
			"CreateTimestampList=%5B1660638613798%2C1660638618798%5D&DeleteOriginalFile=true&JobId=job-1", "")
		req.ContentLength = 0
		if req.Header.Get("Content-Type") != "" || strings.Contains(req.Header.Get("Authorization"), "content-type") {
			t.Fatal("request must have no Content-Type")
		}
		b := wantOK(t, do(t, req))
		if p := params(t, b); p["CreateTimestampList"] != "[1660638613798,1660638618798]" || p["DeleteOriginalFile"] != "true" || p["JobId"] != "job-1" {
			t.Errorf("params = %v", p)
		}
	})
	t.Run("V3 GET JobId=nope → operation error", func(t *testing.T) {
		r := do(t, sdkV3("GET", "GetLiveSnapshotJob", "JobId=nope", ""))
		wantError(t, r, 404, "JobNotFound")
	})

	v1Common := func(action, format string) url.Values {
		return url.Values{
			"AccessKeyId": {testID}, "Action": {action}, "Format": {format},
			"SignatureMethod": {"HMAC-SHA1"}, "SignatureNonce": {randomHex(16)}, "SignatureVersion": {"1.0"},
			"Timestamp": {time.Now().UTC().Format("2006-01-02T15:04:05Z")}, "Version": {testVersion},
		}
	}
	t.Run("V1 darabonba POST with body params in the signature", func(t *testing.T) {
		body := "OverwriteFormat=snapshot%2F%7BJobId%7D.jpg&TemplateName=t+1%2A~&TimeInterval=5"
		q := v1Common("CreateLiveSnapshotTemplate", "json")
		all := cloneValues(q)
		form, _ := url.ParseQuery(body)
		for k, vs := range form {
			all[k] = vs
		}
		q.Set("Signature", SignV1("POST", all, testSecret))
		req, _ := http.NewRequest("POST", ts.URL+"/?"+q.Encode(), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// darabonba also sends these in V1 mode; they are not signed and must be ignored.
		req.Header.Set("x-acs-action", "CreateLiveSnapshotTemplate")
		req.Header.Set("x-acs-version", testVersion)
		b := wantOK(t, do(t, req))
		if p := params(t, b); p["TemplateName"] != "t 1*~" || p["OverwriteFormat"] != "snapshot/{JobId}.jpg" || p["TimeInterval"] != "5" {
			t.Errorf("params = %v", p)
		}
		if b["Scheme"] != "V1" {
			t.Errorf("scheme = %v", b["Scheme"])
		}

		// Signing only the query (not the body) must fail: body params are part of the signature.
		q = v1Common("CreateLiveSnapshotTemplate", "json")
		q.Set("Signature", SignV1("POST", q, testSecret))
		req, _ = http.NewRequest("POST", ts.URL+"/?"+q.Encode(), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		wantError(t, do(t, req), 400, "SignatureDoesNotMatch")
	})
	t.Run("V1 old SDK: empty SignatureType, RegionId, all in query, empty form body", func(t *testing.T) {
		q := v1Common("SendLiveSnapshotJobCommand", "JSON")
		q.Set("Command", "stop")
		q.Set("JobId", "job 1")
		q.Set("RegionId", "cn-shanghai")
		q.Set("SignatureType", "")
		q.Set("Signature", SignV1("POST", q, testSecret))
		raw := q.Encode()
		if !strings.Contains(raw, "JobId=job+1") || !strings.Contains(raw, "&SignatureType=&") {
			t.Fatalf("query %s does not match the captured shape", raw)
		}
		req, _ := http.NewRequest("POST", ts.URL+"/?"+raw, strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		b := wantOK(t, do(t, req))
		if p := params(t, b); p["JobId"] != "job 1" || p["Command"] != "stop" || p["RegionId"] != "cn-shanghai" {
			t.Errorf("params = %v", p)
		}
	})
}
