package rpc

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// Any parameter given twice is refused, wherever the copies are: a proxy or firewall that
// reads the first copy must never see another value than the one livesnap would use.
func TestAnyParameterGivenTwiceIsRefused(t *testing.T) {
	_, ts := newTestServer(t, nil)
	cases := map[string]v1Opts{
		"action parameter in the query and the body": {method: "POST", action: "SendLiveSnapshotJobCommand",
			query: url.Values{"JobId": {"nope"}}, form: url.Values{"JobId": {"job-1"}, "Command": {"stop"}}},
		"action parameter twice in the query": {action: "ListLiveSnapshotTemplates", query: url.Values{"PageSize": {"5", "500"}}},
		"action parameter twice in the body": {method: "POST", action: "CreateLiveSnapshotTemplate",
			form: url.Values{"TemplateName": {"a", "b"}}},
		"empty copy beside a real one": {action: "GetLiveSnapshotJob", query: url.Values{"JobId": {"", "job-1"}}},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			r := do(t, v1Request(t, ts.URL, o))
			wantError(t, r, 400, "InvalidParameter")
			if msg := r.body["Message"].(string); !strings.Contains(msg, "specified more than once") {
				t.Errorf("Message = %q", msg)
			}
		})
	}
	// Repeat lists name each item apart, so they are not repeats.
	b := wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{action: "ListLiveSnapshotTemplates",
		query: url.Values{"TemplateIds.1": {"a"}, "TemplateIds.2": {"b"}}})))
	if p := params(t, b); p["TemplateIds.1"] != "a" || p["TemplateIds.2"] != "b" {
		t.Errorf("repeat list = %v", p)
	}
}

// Text that no store can hold (NUL, invalid UTF-8) is refused in every parameter, and control
// characters in every protocol parameter; such an access key id is simply unknown (404), as
// any other, without a lookup.
func TestUnstorableTextIsRefusedBeforeTheStore(t *testing.T) {
	var lookups atomic.Int32
	_, ts := newTestServer(t, func(s *Server) {
		s.Keys = func(ctx context.Context, id string) (Credential, error) {
			lookups.Add(1)
			return testKeys(ctx, id)
		}
	})
	for _, id := range []string{"test\x00id", "testid\x01", "test\x7fid", "test\u0085id", "test\xffid"} {
		t.Run("V1 AccessKeyId "+url.QueryEscape(id), func(t *testing.T) {
			wantError(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", id: id})), 404, "InvalidAccessKeyId.NotFound")
		})
	}
	t.Run("V3 Credential with a control character", func(t *testing.T) {
		wantError(t, do(t, v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob", id: "test\tid"})), 404, "InvalidAccessKeyId.NotFound")
	})
	if n := lookups.Load(); n != 0 {
		t.Fatalf("%d key lookups for ids no key can have", n)
	}
	// Version and action still come first, as for any unknown key.
	wantError(t, do(t, v1Request(t, ts.URL, v1Opts{action: "NoSuchAction", id: "x\x00"})), 404, "InvalidAction.NotFound")

	for _, nonce := range []string{"n\x00nce", "n\nnce", "n\u009fnce", "n\xfence"} {
		t.Run("V1 nonce "+url.QueryEscape(nonce), func(t *testing.T) {
			wantError(t, do(t, v1Request(t, ts.URL, v1Opts{action: "GetLiveSnapshotJob", nonce: nonce})), 400, "InvalidParameter")
		})
	}
	t.Run("V3 nonce with a control character", func(t *testing.T) {
		wantError(t, do(t, v3Request(t, ts.URL, v3Opts{action: "GetLiveSnapshotJob", nonce: "n\tnce"})), 400, "InvalidParameter")
	})
	for name, o := range map[string]v1Opts{
		"NUL in an action parameter":         {action: "GetLiveSnapshotJob", query: url.Values{"JobId": {"job\x00"}}},
		"invalid UTF-8 in an action value":   {action: "GetLiveSnapshotJob", query: url.Values{"JobId": {"job\xc3"}}},
		"NUL in a parameter name":            {action: "GetLiveSnapshotJob", query: url.Values{"Job\x00Id": {"job-1"}}},
		"control character in RegionId":      {action: "GetLiveSnapshotJob", query: url.Values{"RegionId": {"cn-\rshanghai"}}},
		"NUL in a body parameter of a POST":  {method: "POST", action: "SendLiveSnapshotJobCommand", form: url.Values{"Command": {"st\x00p"}}},
		"control character in SecurityToken": {action: "GetLiveSnapshotJob", query: url.Values{"SecurityToken": {"t\x1bk"}}},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, do(t, v1Request(t, ts.URL, o)), 400, "InvalidParameter")
		})
	}
	// Action parameters may still hold other control characters (a JSON object parameter
	// written over several lines); the actions decide what their parameters may hold.
	b := wantOK(t, do(t, v1Request(t, ts.URL, v1Opts{method: http.MethodPost, action: "SubmitLiveSnapshotJob",
		form: url.Values{"StreamInput": {"{\n\t\"Type\": \"rtmp\"\n}"}}})))
	if params(t, b)["StreamInput"] != "{\n\t\"Type\": \"rtmp\"\n}" {
		t.Errorf("params = %v", params(t, b))
	}
}
