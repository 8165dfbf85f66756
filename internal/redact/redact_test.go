package redact

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"rtmp://user:pw@host:1935/live/streamkey?token=abc": "rtmp://host:1935/live/***?…",
		"rtmp://host/live/key":                              "rtmp://host/live/***",
		"rtmp://host/live":                                  "rtmp://host/live",
		"http://h/cb?token=secret#x":                        "http://h/cb?…",
		"https://u:p@cdn.example/hls/index.m3u8":            "https://cdn.example/hls/index.m3u8",
		"srt://h:9000?passphrase=topsecret":                 "srt://h:9000?…",
		"::not a url":                                       "(unparsable URL)",
	} {
		got := URL(in)
		if got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
		for _, secret := range []string{"pw", "token", "abc", "secret", "streamkey", "topsecret"} {
			if strings.Contains(got, secret) && !strings.Contains(want, secret) {
				t.Errorf("URL(%q) = %q still holds %q", in, got, secret)
			}
		}
	}
}

func TestErrorHidesTheRequestURL(t *testing.T) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://127.0.0.1:1/cb?token=s3cret", nil)
	_, err := http.DefaultClient.Do(req)
	if err == nil {
		t.Fatal("a request to port 1 succeeded")
	}
	if msg := Error(err); strings.Contains(msg, "s3cret") || !strings.Contains(msg, "127.0.0.1:1/cb") {
		t.Fatalf("Error() = %q", msg)
	}
}
