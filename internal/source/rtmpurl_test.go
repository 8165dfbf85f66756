package source

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestSplitRTMPURL(t *testing.T) {
	tests := []struct {
		name, in       string
		host, app, key string
		path, tcQuery  string
		wantErr        bool
	}{
		{name: "app and key get default port", in: "rtmp://example.com/live/stream",
			host: "example.com:1935", app: "live", key: "stream", path: "/live"},
		{name: "explicit port kept", in: "rtmp://10.0.0.1:19350/live/stream",
			host: "10.0.0.1:19350", app: "live", key: "stream", path: "/live"},
		{name: "rtmps defaults to 443", in: "rtmps://example.com/live/stream",
			host: "example.com:443", app: "live", key: "stream", path: "/live"},
		{name: "query goes with the key", in: "rtmp://h/live/stream?auth_key=1-0-0-abc&x=y",
			host: "h:1935", app: "live", key: "stream?auth_key=1-0-0-abc&x=y", path: "/live"},
		{name: "nested app path", in: "rtmp://h/a/b/c/key",
			host: "h:1935", app: "a/b/c", key: "key", path: "/a/b/c"},
		{name: "nested app with query", in: "rtmp://h/a/b/key?t=1",
			host: "h:1935", app: "a/b", key: "key?t=1", path: "/a/b"},
		{name: "single element is the app, empty key, query stays on app", in: "rtmp://h/mystream?t=1",
			host: "h:1935", app: "mystream?t=1", key: "", path: "/mystream", tcQuery: "t=1"},
		{name: "single element without query", in: "rtmp://h/mystream",
			host: "h:1935", app: "mystream", key: "", path: "/mystream"},
		{name: "trailing slash ignored", in: "rtmp://h/live/stream/",
			host: "h:1935", app: "live", key: "stream", path: "/live"},
		{name: "escapes are passed on as written", in: "rtmp://h/li%20ve/st%2Fream",
			host: "h:1935", app: "li%20ve", key: "st%2Fream", path: "/li ve"},
		{name: "ipv6 host", in: "rtmp://[::1]/live/s",
			host: "[::1]:1935", app: "live", key: "s", path: "/live"},
		{name: "uppercase scheme", in: "RTMP://h/live/s",
			host: "h:1935", app: "live", key: "s", path: "/live"},
		{name: "credentials kept for adobe auth", in: "rtmp://u:p@h/live/s",
			host: "h:1935", app: "live", key: "s", path: "/live"},
		{name: "no path", in: "rtmp://h", wantErr: true},
		{name: "root path", in: "rtmp://h/", wantErr: true},
		{name: "empty app element", in: "rtmp://h//key", wantErr: true},
		{name: "wrong scheme", in: "http://h/live/s", wantErr: true},
		{name: "no host", in: "rtmp:///live/s", wantErr: true},
		{name: "fragment refused", in: "rtmp://h/live/s#x", wantErr: true},
		{name: "empty port", in: "rtmp://h:/live/s", wantErr: true},
		{name: "opaque", in: "rtmp:h/live/s", wantErr: true},
		{name: "garbage", in: "::::", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitRTMPURL(tt.in)
			if tt.wantErr {
				if !errors.Is(err, errInvalidURL) {
					t.Fatalf("err = %v, want errInvalidURL", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.URL.Host != tt.host || got.App != tt.app || got.Key != tt.key || got.URL.Fragment != tt.key ||
				got.URL.Path != tt.path || got.URL.RawQuery != tt.tcQuery {
				t.Errorf("got host %q app %q key %q fragment %q path %q query %q",
					got.URL.Host, got.App, got.Key, got.URL.Fragment, got.URL.Path, got.URL.RawQuery)
			}
			// What gortmplib sends as the app: the escaped path and query.
			if a := strings.TrimPrefix(got.URL.RequestURI(), "/"); a != tt.app {
				t.Errorf("gortmplib app = %q, want %q", a, tt.app)
			}
		})
	}
}

func FuzzSplitRTMPURL(f *testing.F) {
	for _, s := range []string{"rtmp://h/live/s", "rtmp://h:1/a/b/c?x=y", "rtmps://u:p@[::1]/x", "rtmp://h/%zz/k",
		"rtmp://h//", "rtmp://h/a?b/c", "rtmp://h/a/b?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := splitRTMPURL(in)
		if err != nil {
			if !errors.Is(err, errInvalidURL) {
				t.Fatalf("error not marked invalid URL: %v", err)
			}
			return
		}
		if got.App == "" || strings.HasPrefix(got.App, "/") {
			t.Fatalf("bad app %q", got.App)
		}
		if strings.Contains(strings.SplitN(got.Key, "?", 2)[0], "/") {
			t.Fatalf("key %q contains a path separator", got.Key)
		}
		if a := strings.TrimPrefix(got.URL.RequestURI(), "/"); a != got.App {
			t.Fatalf("gortmplib app %q != %q", a, got.App)
		}
		// The URL gortmplib gets must survive printing and parsing (it rebuilds tcUrl from it).
		u2, err := url.Parse(got.URL.String())
		if err != nil {
			t.Fatalf("reparse %q: %v", got.URL.String(), err)
		}
		if u2.Host != got.URL.Host {
			t.Fatalf("host changed: %q → %q", got.URL.Host, u2.Host)
		}
	})
}

// CheckURL refuses at once what Open would refuse before connecting, for every type.
func TestCheckURLRefusesWhatOpenWould(t *testing.T) {
	for _, c := range []struct{ typ, url string }{
		{"rtmp", "rtmp://example.com/live/stream"}, {"rtmp", "rtmps://example.com:443/app"},
		{"rtsp", "rtsp://10.0.0.1:554/stream1"}, {"hls", "https://cdn.example/live/index.m3u8"},
		{"http-flv", "http://10.0.0.2:8080/live/a.flv"}, {"srt", "srt://10.0.0.3:9000?streamid=x&latency=200000"},
	} {
		if err := CheckURL(c.typ, c.url); err != nil {
			t.Errorf("%s %s: %v", c.typ, c.url, err)
		}
	}
	for _, c := range []struct{ typ, url string }{
		{"rtmp", "rtmp://example.com:1"}, {"rtmp", "rtmp://example.com/"}, {"rtmp", "rtmp://example.com//key"},
		{"rtmp", "rtmp://example.com:/live/key"}, {"rtmp", "rtmp://example.com/live/key#frag"},
		{"srt", "srt://10.0.0.3:9000?mode=listener"}, {"srt", "srt://10.0.0.3"}, {"hls", "http://h:0/x.m3u8"},
	} {
		if err := CheckURL(c.typ, c.url); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("%s %s: want ErrInvalidURL, got %v", c.typ, c.url, err)
		}
	}
	if err := CheckURL("webrtc", "whep://h/x"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown type: %v", err)
	}
}
