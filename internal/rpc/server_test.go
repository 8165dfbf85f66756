package rpc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestV1Accepted(t *testing.T) {
	_, ts := newTestServer(t, nil)
	t.Run("GET query", func(t *testing.T) {
		b := wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", query: url.Values{"JobId": {"job 1*~/"}}})))
		if b["Scheme"] != "V1" || b["Action"] != "GetLiveSnapshotJob" || b["Principal"] != "acct-1" || b["AccessKeyId"] != testID {
			t.Errorf("call = %v", b)
		}
		if params(t, b)["JobId"] != "job 1*~/" {
			t.Errorf("JobId = %v", params(t, b)["JobId"])
		}
		if b["CallRequestId"] != b["RequestId"] {
			t.Errorf("Call.RequestID %v != RequestId %v", b["CallRequestId"], b["RequestId"])
		}
		if !strings.HasPrefix(b["Host"].(string), "127.0.0.1:") {
			t.Errorf("Host = %v", b["Host"])
		}
	})
	t.Run("POST form body", func(t *testing.T) {
		b := wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{method: "POST", action: "SendLiveSnapshotJobCommand",
			form: url.Values{"Command": {"start"}, "JobId": {"job-1"}}})))
		if p := params(t, b); p["Command"] != "start" || p["JobId"] != "job-1" {
			t.Errorf("params = %v", p)
		}
	})
	t.Run("old TimeStamp spelling", func(t *testing.T) {
		now := time.Now().UTC().Format("2006-01-02T15:04:05Z")
		req := v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", omit: "Timestamp", query: url.Values{"TimeStamp": {now}}})
		wantOK(t, do(t, req))
	})
	t.Run("typed result and empty result", func(t *testing.T) {
		b := wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetTyped", query: url.Values{"JobId": {"j"}}})))
		if b["JobId"] != "j" || b["Count"] != float64(3) || b["Ok"] != true || len(b) != 5 {
			t.Errorf("body = %v", b)
		}
		r := do(t, v1Request(t, ts.URL, v1Opts{action: "Empty"}))
		if wantOK(t, r); len(r.body) != 1 {
			t.Errorf("body = %s", r.raw)
		}
	})
	t.Run("Format is case-insensitive and ignored", func(t *testing.T) {
		for _, f := range []string{"JSON", "json", "XML", "xml"} {
			wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", query: url.Values{"Format": {f}}})))
		}
	})
}

func TestV3Accepted(t *testing.T) {
	_, ts := newTestServer(t, nil)
	t.Run("GET query", func(t *testing.T) {
		b := wantOK(t, do(t, v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob",
			query: url.Values{"JobId": {"****a046-263c-3560-978a-fb287782****"}}})))
		if b["Scheme"] != "V3" || b["Principal"] != "acct-1" || params(t, b)["JobId"] != "****a046-263c-3560-978a-fb287782****" {
			t.Errorf("call = %v", b)
		}
	})
	t.Run("POST form body", func(t *testing.T) {
		b := wantOK(t, do(t, v3Request(t, ts.URL, v3Opts{method: "POST", action: "SendLiveSnapshotJobCommand",
			body: "Command=start&JobId=job-1"})))
		if p := params(t, b); p["Command"] != "start" || p["JobId"] != "job-1" || b["Action"] != "SendLiveSnapshotJobCommand" {
			t.Errorf("call = %v", b)
		}
	})
	t.Run("query and body merged", func(t *testing.T) {
		b := wantOK(t, do(t, v3Request(t, ts.URL, v3Opts{method: "POST", action: "SendLiveSnapshotJobCommand",
			query: url.Values{"JobId": {"q"}}, body: "Command=stop"})))
		if p := params(t, b); p["JobId"] != "q" || p["Command"] != "stop" {
			t.Errorf("params = %v", p)
		}
		// The same parameter in both is ambiguous: refused (TestAnyParameterGivenTwiceIsRefused).
		wantError(t, do(t, v3Request(t, ts.URL, v3Opts{method: "POST", action: "SendLiveSnapshotJobCommand",
			query: url.Values{"JobId": {"q"}}, body: "JobId=b&Command=stop"})), 400, "InvalidParameter")
	})
	t.Run("non-form body is hashed but not parsed", func(t *testing.T) {
		b := wantOK(t, do(t, v3Request(t, ts.URL, v3Opts{method: "POST", action: "SendLiveSnapshotJobCommand",
			body: `{"Command":"x"}`, contentType: "application/json"})))
		if _, ok := params(t, b)["Command"]; ok {
			t.Errorf("JSON body parsed as params: %v", b)
		}
	})
}

func TestRejected(t *testing.T) {
	_, ts := newTestServer(t, nil)
	get := v1Opts{action: "GetLiveSnapshotJob", query: url.Values{"JobId": {"job-1"}}}
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		{"V1 tampered parameter", func() *http.Request {
			r := v1Request(t, ts.URL, get)
			q := r.URL.Query()
			q.Set("JobId", "job-2")
			r.URL.RawQuery = q.Encode()
			return r
		}, 400, "SignatureDoesNotMatch"},
		{"V1 added parameter", func() *http.Request {
			r := v1Request(t, ts.URL, get)
			r.URL.RawQuery += "&Extra=1"
			return r
		}, 400, "SignatureDoesNotMatch"},
		{"V1 tampered body", func() *http.Request {
			o := v1Opts{method: "POST", action: "SendLiveSnapshotJobCommand", form: url.Values{"Command": {"start"}}}
			r := v1Request(t, ts.URL, o)
			r.Body, r.ContentLength = readCloser("Command=stop"), 12
			return r
		}, 400, "SignatureDoesNotMatch"},
		{"V1 method changed", func() *http.Request {
			r := v1Request(t, ts.URL, get)
			r.Method = "POST"
			return r
		}, 400, "SignatureDoesNotMatch"},
		{"V1 wrong secret", func() *http.Request {
			o := get
			o.secret = "nope"
			return v1Request(t, ts.URL, o)
		}, 400, "SignatureDoesNotMatch"},
		{"V1 garbage signature", func() *http.Request {
			r := v1Request(t, ts.URL, get)
			q := r.URL.Query()
			q.Set("Signature", "%%%not base64")
			r.URL.RawQuery = q.Encode()
			return r
		}, 400, "SignatureDoesNotMatch"},
		{"V1 expired (past)", func() *http.Request {
			o := get
			o.ts = time.Now().Add(-16 * time.Minute)
			return v1Request(t, ts.URL, o)
		}, 400, "InvalidTimeStamp.Expired"},
		{"V1 expired (future)", func() *http.Request {
			o := get
			o.ts = time.Now().Add(16 * time.Minute)
			return v1Request(t, ts.URL, o)
		}, 400, "InvalidTimeStamp.Expired"},
		{"V1 malformed timestamp", func() *http.Request {
			return v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", omit: "Timestamp",
				query: url.Values{"TimeStamp": {"yesterday"}}})
		}, 400, "InvalidTimeStamp.Format"},
		{"V1 unknown key", func() *http.Request {
			o := get
			o.id = "stranger"
			return v1Request(t, ts.URL, o)
		}, 404, "InvalidAccessKeyId.NotFound"},
		{"V1 disabled key passes KeyLookup *Error through", func() *http.Request {
			o := get
			o.id = "disabled"
			return v1Request(t, ts.URL, o)
		}, 403, "UserDisable"},
		{"V1 KeyLookup failure", func() *http.Request {
			o := get
			o.id = "broken"
			return v1Request(t, ts.URL, o)
		}, 500, "InternalError"},
		{"V1 unknown action", func() *http.Request {
			return v1Request(t, ts.URL, v1Opts{action: "CreateLiveSnapshotJob"})
		}, 404, "InvalidAction.NotFound"},
		{"V1 wrong Version", func() *http.Request {
			o := get
			o.query = url.Values{"Version": {"2014-05-26"}}
			return v1Request(t, ts.URL, o)
		}, 400, "InvalidVersion"},
		{"V1 wrong SignatureMethod", func() *http.Request {
			o := get
			o.query = url.Values{"SignatureMethod": {"HMAC-SHA256"}}
			return v1Request(t, ts.URL, o)
		}, 400, "InvalidParameter"},
		{"V1 bearer SignatureType", func() *http.Request {
			o := get
			o.query = url.Values{"SignatureType": {"BEARERTOKEN"}}
			return v1Request(t, ts.URL, o)
		}, 400, "InvalidParameter"},
		{"V1 duplicate Action", func() *http.Request {
			r := v1Request(t, ts.URL, get)
			r.URL.RawQuery += "&Action=DeleteLiveSnapshotFiles"
			return r
		}, 400, "InvalidParameter"},
		{"V1 oversized nonce", func() *http.Request {
			o := get
			o.nonce = strings.Repeat("n", maxNonceLen+1)
			return v1Request(t, ts.URL, o)
		}, 400, "InvalidParameter"},
		{"malformed query", func() *http.Request {
			r := v1Request(t, ts.URL, get)
			r.URL.RawQuery += "&bad=%zz"
			return r
		}, 400, "InvalidParameter"},
		{"body too large", func() *http.Request {
			o := v1Opts{method: "POST", action: "SendLiveSnapshotJobCommand",
				form: url.Values{"Command": {strings.Repeat("x", 64<<10)}}}
			return v1Request(t, ts.URL, o)
		}, 413, "RequestEntityTooLarge"},
		{"body too large without Content-Length", func() *http.Request {
			o := v1Opts{method: "POST", action: "SendLiveSnapshotJobCommand",
				form: url.Values{"Command": {strings.Repeat("x", 64<<10)}}}
			r := v1Request(t, ts.URL, o)
			r.ContentLength = -1 // chunked
			return r
		}, 413, "RequestEntityTooLarge"},
		{"wrong path", func() *http.Request {
			r := v1Request(t, ts.URL, get)
			r.URL.Path = "/other"
			return r
		}, 404, "InvalidAction.NotFound"},
		{"wrong method", func() *http.Request {
			r := v1Request(t, ts.URL, get)
			r.Method = "PUT"
			return r
		}, 404, "InvalidAction.NotFound"},
		{"no signature at all", func() *http.Request {
			r, _ := http.NewRequest("GET", ts.URL+"/?Action=GetLiveSnapshotJob&Version=2020-11-09", nil)
			return r
		}, 400, "MissingParameter"},
		{"unsupported Authorization scheme", func() *http.Request {
			r, _ := http.NewRequest("GET", ts.URL+"/", nil)
			r.Header.Set("Authorization", "ACS3-HMAC-SM3 Credential=testid,SignedHeaders=host,Signature=00")
			return r
		}, 400, "IncompleteSignature"},

		{"V3 tampered query", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob", query: url.Values{"JobId": {"a"}}})
			r.URL.RawQuery = "JobId=b"
			return r
		}, 400, "SignatureDoesNotMatch"},
		{"V3 tampered body", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{method: "POST", action: "SendLiveSnapshotJobCommand", body: "Command=start&JobId=job-1"})
			r.Body, r.ContentLength = readCloser("Command=start&JobId=job-2"), 25
			return r
		}, 400, "SignatureDoesNotMatch"},
		{"V3 tampered body with recomputed content hash", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{method: "POST", action: "SendLiveSnapshotJobCommand", body: "Command=start&JobId=job-1"})
			r.Body, r.ContentLength = readCloser("Command=start&JobId=job-2"), 25
			r.Header.Set("x-acs-content-sha256", sha256Hex("Command=start&JobId=job-2"))
			return r
		}, 400, "SignatureDoesNotMatch"},
		{"V3 retargeted action", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			r.Header.Set("x-acs-action", "DeleteLiveSnapshotFiles")
			return r
		}, 400, "SignatureDoesNotMatch"},
		{"V3 wrong host", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			r.Host = "ice.cn-shanghai.aliyuncs.com"
			return r
		}, 400, "SignatureDoesNotMatch"},
		{"V3 wrong secret", func() *http.Request {
			return v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob", secret: "nope"})
		}, 400, "SignatureDoesNotMatch"},
		{"V3 expired (past)", func() *http.Request {
			return v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob", ts: time.Now().Add(-16 * time.Minute)})
		}, 400, "InvalidTimeStamp.Expired"},
		{"V3 expired (future)", func() *http.Request {
			return v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob", ts: time.Now().Add(16 * time.Minute)})
		}, 400, "InvalidTimeStamp.Expired"},
		{"V3 unknown key", func() *http.Request {
			return v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob", id: "stranger"})
		}, 404, "InvalidAccessKeyId.NotFound"},
		{"V3 unknown action", func() *http.Request {
			return v3Request(t, ts.URL, v3Opts{action: "DeleteLiveSnapshotJob"})
		}, 404, "InvalidAction.NotFound"},
		{"V3 wrong version", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			r.Header.Set("x-acs-version", "2014-05-26")
			return r
		}, 400, "InvalidVersion"},
		{"V3 missing date", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			r.Header.Del("x-acs-date")
			return r
		}, 400, "MissingParameter"},
		{"V3 missing nonce", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			r.Header.Del("x-acs-signature-nonce")
			return r
		}, 400, "MissingParameter"},
		{"V3 missing action", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			r.Header.Del("x-acs-action")
			return r
		}, 400, "MissingParameter"},
		{"V3 malformed date", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			r.Header.Set("x-acs-date", "Mon, 01 Jan 2024 00:00:00 GMT")
			return r
		}, 400, "InvalidTimeStamp.Format"},
		{"V3 unsigned x-acs header", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			r.Header.Set("x-acs-security-token", "injected")
			return r
		}, 400, "IncompleteSignature"},
		{"V3 required header not signed", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(a, "x-acs-signature-nonce;", "", 1))
			return r
		}, 400, "IncompleteSignature"},
		{"V3 content-type not signed", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{method: "POST", action: "SendLiveSnapshotJobCommand", body: "Command=start"})
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(a, "content-type;", "", 1))
			return r
		}, 400, "IncompleteSignature"},
		{"V3 malformed Authorization", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			r.Header.Set("Authorization", "ACS3-HMAC-SHA256 Credential=testid")
			return r
		}, 400, "IncompleteSignature"},
		{"V3 short signature", func() *http.Request {
			r := v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob"})
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-2])
			return r
		}, 400, "IncompleteSignature"},
		{"V3 body too large", func() *http.Request {
			return v3Request(t, ts.URL, v3Opts{method: "POST", action: "SendLiveSnapshotJobCommand",
				body: "Command=" + strings.Repeat("x", 64<<10)})
		}, 413, "RequestEntityTooLarge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, do(t, tc.req()), tc.status, tc.code)
		})
	}
}

func TestMissingV1Parameters(t *testing.T) {
	_, ts := newTestServer(t, nil)
	for _, name := range []string{"Action", "Version", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp", "Signature"} {
		t.Run(name, func(t *testing.T) {
			r := v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", omit: name})
			if name == "Signature" {
				q := r.URL.Query()
				q.Del("Signature")
				r.URL.RawQuery = q.Encode()
			}
			resp := do(t, r)
			wantError(t, resp, 400, "MissingParameter")
			if want := `The input parameter "` + name + `" that is mandatory`; !strings.Contains(resp.body["Message"].(string), want) {
				t.Errorf("Message = %v", resp.body["Message"])
			}
		})
	}
}

func TestErrorsFromHandlers(t *testing.T) {
	var logged strings.Builder
	var mu sync.Mutex
	_, ts := newTestServer(t, func(s *Server) {
		s.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
		s.Authorize = func(_ context.Context, c *Call) error {
			if c.AccessKeyID == otherID && c.Action == "SendLiveSnapshotJobCommand" {
				return ErrForbidden
			}
			if c.Params.Get("Throttle") != "" {
				return ErrThrottlingUser
			}
			return nil
		}
	})
	t.Run("ICE error from handler", func(t *testing.T) {
		r := do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", query: url.Values{"Fail": {"JobNotFound"}}}))
		wantError(t, r, 404, "JobNotFound")
		if r.body["Message"] != "No such job." {
			t.Errorf("Message = %v", r.body["Message"])
		}
	})
	t.Run("Authorize Forbidden", func(t *testing.T) {
		wantError(t, do(t, v3Request(t, ts.URL, v3Opts{method: "POST", action: "SendLiveSnapshotJobCommand",
			id: otherID, secret: otherSecret, body: "Command=start"})), 403, "Forbidden")
	})
	t.Run("Authorize Throttling", func(t *testing.T) {
		wantError(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", query: url.Values{"Throttle": {"1"}}})), 400, "Throttling.User")
	})
	for _, action := range []string{"Boom", "Panic", "NotObject"} {
		t.Run(action+" is a bare 500", func(t *testing.T) {
			r := do(t, v1Request(t, ts.URL, v1Opts{action: action}))
			wantError(t, r, 500, "InternalError")
			if strings.Contains(r.raw, "secret") || strings.Contains(r.raw, "kaboom") {
				t.Errorf("internal detail leaked: %s", r.raw)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "secret internal detail") || !strings.Contains(logged.String(), "kaboom") {
		t.Errorf("internal errors not logged: %s", logged.String())
	}
	if strings.Contains(logged.String(), testSecret) || strings.Contains(logged.String(), "Signature=") {
		t.Errorf("secret or signature logged: %s", logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestNonceReplay(t *testing.T) {
	_, ts := newTestServer(t, nil)
	t.Run("V1 replay of the identical request", func(t *testing.T) {
		o := v1Opts{action: "GetLiveSnapshotJob", nonce: newNonce()}
		wantOK(t, do(t, v1Request(t, ts.URL, o)))
		wantError(t, do(t, v1Request(t, ts.URL, o)), 400, "SignatureNonceUsed")
	})
	t.Run("V3 replay", func(t *testing.T) {
		o := v3Opts{action: "GetLiveSnapshotJob", nonce: newNonce()}
		wantOK(t, do(t, v3Request(t, ts.URL, o)))
		wantError(t, do(t, v3Request(t, ts.URL, o)), 400, "SignatureNonceUsed")
	})
	t.Run("nonce shared across V1 and V3 for one key", func(t *testing.T) {
		n := newNonce()
		wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", nonce: n})))
		wantError(t, do(t, v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob", nonce: n})), 400, "SignatureNonceUsed")
	})
	t.Run("nonces are per access key", func(t *testing.T) {
		n := newNonce()
		wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", nonce: n})))
		wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", nonce: n, id: otherID, secret: otherSecret})))
	})
	t.Run("failed signatures do not burn the nonce", func(t *testing.T) {
		n := newNonce()
		wantError(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", nonce: n, secret: "guess"})), 400, "SignatureDoesNotMatch")
		wantError(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", nonce: n, ts: time.Now().Add(-time.Hour)})), 400, "InvalidTimeStamp.Expired")
		wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", nonce: n})))
	})
}

func TestTimestampWindow(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	_, ts := newTestServer(t, func(s *Server) { s.Now = clock; s.TimestampWindow = 5 * time.Minute })
	for _, d := range []time.Duration{-5 * time.Minute, 0, 5 * time.Minute} {
		wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", ts: now.Add(d)})))
		wantOK(t, do(t, v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob", ts: now.Add(d)})))
	}
	for _, d := range []time.Duration{-5*time.Minute - time.Second, 5*time.Minute + time.Second} {
		wantError(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", ts: now.Add(d)})), 400, "InvalidTimeStamp.Expired")
		wantError(t, do(t, v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob", ts: now.Add(d)})), 400, "InvalidTimeStamp.Expired")
	}
	// The default in-memory nonce store follows the server clock, so a replay under a fake clock is still caught.
	o := v1Opts{action: "GetLiveSnapshotJob", ts: now, nonce: "fixed"}
	wantOK(t, do(t, v1Request(t, ts.URL, o)))
	wantError(t, do(t, v1Request(t, ts.URL, o)), 400, "SignatureNonceUsed")
}

func TestNonceStoreFullIs503(t *testing.T) {
	_, ts := newTestServer(t, func(s *Server) { s.Nonces = NewMemoryNonces(1) })
	wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob"})))
	wantError(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob"})), 503, "ServiceUnavailable")
}

func TestSmallMaxBody(t *testing.T) {
	_, ts := newTestServer(t, func(s *Server) { s.MaxBodyBytes = 16 })
	o := v1Opts{method: "POST", action: "SendLiveSnapshotJobCommand", form: url.Values{"Command": {"start"}}}
	wantOK(t, do(t, v1Request(t, ts.URL, o)))
	o.form = url.Values{"Command": {"start-and-more"}}
	r := do(t, v1Request(t, ts.URL, o))
	wantError(t, r, 413, "RequestEntityTooLarge")
	if !strings.Contains(r.body["Message"].(string), "16 bytes") {
		t.Errorf("Message = %v", r.body["Message"])
	}
}

func TestErrorIs(t *testing.T) {
	err := error(NewError(403, "Forbidden", "custom message"))
	if !errors.Is(err, ErrForbidden) || errors.Is(err, ErrUserDisable) {
		t.Error("errors.Is by Status and Code")
	}
	var e *Error
	if !errors.As(wrap(ErrThrottlingUser), &e) || e.Code != "Throttling.User" || e.Status != 400 {
		t.Errorf("errors.As = %v", e)
	}
	if m := MissingParameter("JobId").Message; m != `The input parameter "JobId" that is mandatory for processing this request is not supplied.` {
		t.Errorf("MissingParameter message = %q", m)
	}
	if e := InvalidParameter("The parameter %q is invalid: %s.", "PageSize", "must be 1-100"); e.Status != 400 || e.Code != "InvalidParameter" ||
		e.Message != `The parameter "PageSize" is invalid: must be 1-100.` {
		t.Errorf("InvalidParameter = %+v", e)
	}
	if ErrInternal.Status != 500 || ErrInternal.Message != "The request processing has failed due to some unknown error." {
		t.Errorf("ErrInternal = %+v", ErrInternal)
	}
}

func wrap(err error) error { return errors.Join(errors.New("context"), err) }
