package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testVersion = "2020-11-09"
	testID      = "testid"
	testSecret  = "testsecret"
	otherID     = "otherid"
	otherSecret = "othersecret"
)

var requestIDPattern = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)

// testKeys knows testid and otherid, disables "disabled" and fails on "broken".
func testKeys(_ context.Context, id string) (Credential, error) {
	switch id {
	case testID:
		return Credential{AccessKeyID: id, Secret: testSecret, Principal: "acct-1"}, nil
	case otherID:
		return Credential{AccessKeyID: id, Secret: otherSecret, Principal: "acct-2"}, nil
	case "disabled":
		return Credential{}, ErrUserDisable
	case "broken":
		return Credential{}, errors.New("database on fire: password=hunter2")
	}
	return Credential{}, fmt.Errorf("lookup %q: %w", id, ErrKeyNotFound)
}

// echo answers with what it received; Fail=<Code> makes it return that ICE error.
func echo(_ context.Context, c *Call) (any, error) {
	if code := c.Params.Get("Fail"); code != "" {
		return nil, NewError(http.StatusNotFound, code, "No such job.")
	}
	params := map[string]string{}
	for k := range c.Params {
		params[k] = c.Params.Get(k)
	}
	return map[string]any{
		"Action": c.Action, "Version": c.Version, "Scheme": c.Scheme, "AccessKeyId": c.AccessKeyID,
		"Principal": c.Principal, "Host": c.Host, "CallRequestId": c.RequestID, "Params": params,
	}, nil
}

type jobResult struct {
	JobId  string
	Status string
	Count  int
	Ok     bool
}

// newTestServer starts a Server with the common test actions on an httptest server.
func newTestServer(t testing.TB, configure func(*Server)) (*Server, *httptest.Server) {
	t.Helper()
	s := &Server{
		Version: testVersion,
		Keys:    testKeys,
		Logger:  slog.New(slog.DiscardHandler),
		Actions: map[string]Handler{
			"GetLiveSnapshotJob":         echo,
			"SendLiveSnapshotJobCommand": echo,
			"CreateLiveSnapshotTemplate": echo,
			"ListLiveSnapshotTemplates":  echo,
			"SubmitLiveSnapshotJob":      echo,
			"DeleteLiveSnapshotFiles":    echo,
			"GetTyped": func(_ context.Context, c *Call) (any, error) {
				return jobResult{JobId: c.Params.Get("JobId"), Status: "started", Count: 3, Ok: true}, nil
			},
			"Empty": func(context.Context, *Call) (any, error) { return nil, nil },
			"Boom": func(context.Context, *Call) (any, error) {
				return nil, errors.New("secret internal detail")
			},
			"Panic":     func(context.Context, *Call) (any, error) { panic("kaboom") },
			"NotObject": func(context.Context, *Call) (any, error) { return []int{1}, nil },
		},
	}
	if configure != nil {
		configure(s)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

var nonceSeq atomic.Int64

func newNonce() string { return fmt.Sprintf("nonce-%d-%d", time.Now().UnixNano(), nonceSeq.Add(1)) }

// v1Opts describes a V1 request; zero values mean sensible defaults.
type v1Opts struct {
	method, action, id, secret, nonce string
	ts                                time.Time
	query, form                       url.Values
	omit                              string // common parameter to leave out
}

// v1Request builds a V1-signed request: common params in the query, form params in the body,
// all of them signed, like darabonba in "v2" mode.
func v1Request(t testing.TB, base string, o v1Opts) *http.Request {
	t.Helper()
	if o.method == "" {
		o.method = http.MethodGet
	}
	if o.id == "" {
		o.id = testID
	}
	if o.secret == "" {
		o.secret = testSecret
	}
	if o.nonce == "" {
		o.nonce = newNonce()
	}
	if o.ts.IsZero() {
		o.ts = time.Now()
	}
	q := url.Values{
		"Action": {o.action}, "Version": {testVersion}, "Format": {"json"}, "AccessKeyId": {o.id},
		"SignatureMethod": {"HMAC-SHA1"}, "SignatureVersion": {"1.0"}, "SignatureNonce": {o.nonce},
		"Timestamp": {o.ts.UTC().Format("2006-01-02T15:04:05Z")},
	}
	for k, vs := range o.query {
		q[k] = vs
	}
	if o.omit != "" {
		q.Del(o.omit)
	}
	all := cloneValues(q)
	for k, vs := range o.form {
		all[k] = append(all[k], vs...)
	}
	q.Set("Signature", SignV1(o.method, all, o.secret))
	var body io.Reader
	if o.form != nil {
		body = strings.NewReader(o.form.Encode())
	}
	req, err := http.NewRequest(o.method, base+"/?"+q.Encode(), body)
	if err != nil {
		t.Fatal(err)
	}
	if o.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req
}

// v3Opts describes a V3 request.
type v3Opts struct {
	method, action, id, secret, nonce string
	ts                                time.Time
	query                             url.Values
	body                              string
	contentType                       string
	extra                             http.Header // headers set before signing
}

func v3Request(t testing.TB, base string, o v3Opts) *http.Request {
	t.Helper()
	if o.method == "" {
		o.method = http.MethodGet
	}
	if o.id == "" {
		o.id = testID
	}
	if o.secret == "" {
		o.secret = testSecret
	}
	if o.nonce == "" {
		o.nonce = newNonce()
	}
	if o.ts.IsZero() {
		o.ts = time.Now()
	}
	u := base + "/"
	if len(o.query) > 0 {
		u += "?" + o.query.Encode()
	}
	var body io.Reader
	if o.body != "" {
		body = strings.NewReader(o.body)
	}
	req, err := http.NewRequest(o.method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-acs-action", o.action)
	req.Header.Set("x-acs-version", testVersion)
	if o.body != "" && o.contentType == "" {
		o.contentType = "application/x-www-form-urlencoded"
	}
	if o.contentType != "" {
		req.Header.Set("Content-Type", o.contentType)
	}
	for k, vs := range o.extra {
		req.Header[k] = vs
	}
	SignV3(req, []byte(o.body), o.id, o.secret, o.nonce, o.ts)
	return req
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
	host   string // the Host the request was sent with
}

func do(t testing.TB, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw), host: host}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("response is not a JSON object: %v: %q", err, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json;charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	id, _ := r.body["RequestId"].(string)
	if !requestIDPattern.MatchString(id) {
		t.Errorf("RequestId %q is not an uppercase UUID", id)
	}
	if h := resp.Header.Get("x-acs-request-id"); h != id {
		t.Errorf("x-acs-request-id = %q, body RequestId = %q", h, id)
	}
	if !bytes.HasPrefix(raw, []byte(`{"RequestId":`)) {
		t.Errorf("RequestId is not the first field: %s", raw)
	}
	return r
}

// wantOK asserts a 200 and returns the body.
func wantOK(t testing.TB, r response) map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, body %s", r.status, r.raw)
	}
	return r.body
}

// wantError asserts an ICE error envelope with the given status and Code.
func wantError(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.body["Code"] != code {
		t.Fatalf("got %d %v, want %d %s; body %s", r.status, r.body["Code"], status, code, r.raw)
	}
	id := r.body["RequestId"].(string)
	if msg, _ := r.body["Message"].(string); msg == "" {
		t.Errorf("empty Message: %s", r.raw)
	}
	if host, _ := r.body["HostId"].(string); host != r.host {
		t.Errorf("HostId = %q", host)
	}
	wantRec := "https://api.alibabacloud.com/troubleshoot?q=" + url.QueryEscape(code) + "&product=ICE&requestId=" + id
	if r.body["Recommend"] != wantRec {
		t.Errorf("Recommend = %v, want %s", r.body["Recommend"], wantRec)
	}
	if len(r.body) != 5 {
		t.Errorf("unexpected envelope fields: %s", r.raw)
	}
}

func params(t testing.TB, body map[string]any) map[string]any {
	t.Helper()
	p, ok := body["Params"].(map[string]any)
	if !ok {
		t.Fatalf("no Params in %v", body)
	}
	return p
}

func readCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }
