package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

const fuzzLimit = 1024

func FuzzParseParams(f *testing.F) {
	f.Add("PageNo=1&TemplateIds.1=a&TemplateIds.2=b", "", []byte(nil))
	f.Add("a=%zz", "application/x-www-form-urlencoded", []byte("b=1"))
	f.Add("", "application/x-www-form-urlencoded; charset=utf-8", []byte("OverwriteFormat=snapshot%2F%7BJobId%7D.jpg&TemplateName=t+1%2A~&TimeInterval=5"))
	f.Add("Action=a", "application/x-www-form-urlencoded", []byte("Action=b"))
	f.Add("x=1;y=2", "text/plain;;;", []byte("z"))
	f.Fuzz(func(t *testing.T, rawQuery, contentType string, body []byte) {
		r := &http.Request{
			Method: http.MethodPost, URL: &url.URL{Path: "/", RawQuery: rawQuery},
			Header: http.Header{"Content-Type": {contentType}}, Body: io.NopCloser(bytes.NewReader(body)),
			ContentLength: -1, // force the bounded read path rather than the Content-Length shortcut
		}
		req, e := readRequest(r, fuzzLimit)
		if len(body) > fuzzLimit {
			if e == nil || e.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("oversized body accepted: %v", e)
			}
			return
		}
		if e != nil {
			if e.Status != http.StatusBadRequest {
				t.Fatalf("unexpected error %v", e)
			}
			return
		}
		if !bytes.Equal(req.body, body) {
			t.Fatal("raw body altered")
		}
		n := 0
		for _, vs := range req.params {
			n += len(vs)
		}
		if n > len(rawQuery)+len(body)+2 {
			t.Fatalf("%d params from %d input bytes", n, len(rawQuery)+len(body))
		}
		for name, vs := range req.params {
			if len(vs) > 1 {
				t.Fatalf("duplicate %s accepted", name)
			}
		}
	})
}

// fuzzSecret is unknown to the fuzzer: nothing it produces may ever verify.
var fuzzSecret = func() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

var fuzzNow = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// fuzzServer makes the signature the only barrier: every action exists, the window spans a
// century and any key id resolves (to secret), so only a valid signature reaches the handler.
func fuzzServer(secret string, reached *atomic.Bool) *Server {
	h := func(context.Context, *Call) (any, error) { reached.Store(true); return nil, nil }
	return &Server{
		Version: testVersion,
		Actions: map[string]Handler{"GetLiveSnapshotJob": h, "SendLiveSnapshotJobCommand": h, "": h},
		Keys: func(_ context.Context, id string) (Credential, error) {
			if id == "" {
				return Credential{}, ErrKeyNotFound
			}
			return Credential{AccessKeyID: id, Secret: secret}, nil
		},
		Now:             func() time.Time { return fuzzNow },
		TimestampWindow: 100 * 365 * 24 * time.Hour,
		MaxBodyBytes:    fuzzLimit,
		Logger:          slog.New(slog.DiscardHandler),
	}
}

func serveFuzz(s *Server, method, rawQuery string, header http.Header, body []byte) *httptest.ResponseRecorder {
	if method != http.MethodGet {
		method = http.MethodPost
	}
	r := (&http.Request{
		Method: method, URL: &url.URL{Path: "/", RawQuery: rawQuery}, Host: "ice.cn-shanghai.aliyuncs.com",
		Header: header, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}).WithContext(context.Background())
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func v1FuzzQuery(secret, method string, extra url.Values) string {
	q := url.Values{
		"Action": {"GetLiveSnapshotJob"}, "Version": {testVersion}, "AccessKeyId": {testID},
		"SignatureMethod": {"HMAC-SHA1"}, "SignatureVersion": {"1.0"}, "SignatureNonce": {randomHex(16)},
		"Timestamp": {fuzzNow.Format(acsDateLayout)},
	}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("Signature", SignV1(method, q, secret))
	return q.Encode()
}

func FuzzVerifyV1(f *testing.F) {
	// Seeds are well-formed requests signed with a different secret.
	f.Add("GET", v1FuzzQuery(testSecret, "GET", nil), "", []byte(nil))
	f.Add("POST", v1FuzzQuery(testSecret, "POST", url.Values{"JobId": {"j"}}), "application/x-www-form-urlencoded", []byte("Command=start"))
	f.Add("GET", v1FuzzQuery(testSecret, "GET", url.Values{"SignatureType": {""}, "RegionId": {"cn-shanghai"}}), "", []byte(nil))
	f.Add("GET", "Action=GetLiveSnapshotJob&Signature=&TimeStamp=x", "", []byte(nil))
	f.Fuzz(func(t *testing.T, method, rawQuery, contentType string, body []byte) {
		var reached atomic.Bool
		s := fuzzServer(fuzzSecret, &reached)
		w := serveFuzz(s, method, rawQuery, http.Header{"Content-Type": {contentType}}, body)
		if reached.Load() || w.Code == http.StatusOK {
			t.Fatalf("request verified without the secret: %s %s", method, rawQuery)
		}
	})
}

func FuzzVerifyV3(f *testing.F) {
	seed := func(method, rawQuery, body string) {
		req, _ := http.NewRequest(method, "http://ice.cn-shanghai.aliyuncs.com/?"+rawQuery, bytes.NewReader([]byte(body)))
		req.Header.Set("x-acs-action", "GetLiveSnapshotJob")
		req.Header.Set("x-acs-version", testVersion)
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		SignV3(req, []byte(body), testID, testSecret, randomHex(16), fuzzNow)
		f.Add(method, rawQuery, req.Header.Get("Authorization"), req.Header.Get("x-acs-date"),
			req.Header.Get("x-acs-signature-nonce"), req.Header.Get("x-acs-content-sha256"), req.Header.Get("Content-Type"), []byte(body))
	}
	seed("GET", "JobId=a", "")
	seed("POST", "", "Command=start&JobId=job-1")
	f.Add("GET", "", "ACS3-HMAC-SHA256 Credential=,SignedHeaders=;;,Signature=zz", "", "", "", "", []byte(nil))
	f.Add("POST", "", "ACS3-HMAC-SHA256 a=b=c,,", "2024-01-01T00:00:00Z", "n", "", "text/plain", []byte("x"))
	f.Fuzz(func(t *testing.T, method, rawQuery, authorization, date, nonce, contentHash, contentType string, body []byte) {
		var reached atomic.Bool
		s := fuzzServer(fuzzSecret, &reached)
		h := http.Header{
			"Authorization":         {authorization},
			"X-Acs-Action":          {"GetLiveSnapshotJob"},
			"X-Acs-Version":         {testVersion},
			"X-Acs-Date":            {date},
			"X-Acs-Signature-Nonce": {nonce},
			"X-Acs-Content-Sha256":  {contentHash},
			"Content-Type":          {contentType},
		}
		w := serveFuzz(s, method, rawQuery, h, body)
		if reached.Load() || w.Code == http.StatusOK {
			t.Fatalf("request verified without the secret: %q", authorization)
		}
	})
}

// TestFuzzHarnessAccepts proves the fuzz servers are not trivially closed: the same shapes
// signed with the real secret do reach the handler.
func TestFuzzHarnessAccepts(t *testing.T) {
	var reached atomic.Bool
	s := fuzzServer(fuzzSecret, &reached)
	w := serveFuzz(s, "GET", v1FuzzQuery(fuzzSecret, "GET", nil), http.Header{}, nil)
	if w.Code != http.StatusOK || !reached.Load() {
		t.Fatalf("V1: %d %s", w.Code, w.Body)
	}
	reached.Store(false)
	req, _ := http.NewRequest("POST", "http://ice.cn-shanghai.aliyuncs.com/", bytes.NewReader([]byte("Command=start")))
	req.Header.Set("x-acs-action", "SendLiveSnapshotJobCommand")
	req.Header.Set("x-acs-version", testVersion)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	SignV3(req, []byte("Command=start"), testID, fuzzSecret, "", fuzzNow)
	w = serveFuzz(s, "POST", "", req.Header, []byte("Command=start"))
	if w.Code != http.StatusOK || !reached.Load() {
		t.Fatalf("V3: %d %s", w.Code, w.Body)
	}
}
