// Package redact keeps secrets that users put in URLs (user:password@, ?token=..., an RTMP
// stream key) out of logs and stored error texts.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// URL returns raw without its user information, query and fragment; for RTMP URLs the last
// path element (the stream key, often a secret) becomes "***". A URL that does not parse is
// reduced to its scheme.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		scheme, _, _ := strings.Cut(raw, ":")
		if scheme == "" || len(scheme) > 16 || strings.ContainsAny(scheme, "/@?#") {
			return "(unparsable URL)"
		}
		return scheme + "://(unparsable URL)"
	}
	path := u.EscapedPath()
	if (u.Scheme == "rtmp" || u.Scheme == "rtmps") && strings.Count(strings.Trim(path, "/"), "/") >= 1 {
		path = path[:strings.LastIndex(strings.TrimRight(path, "/"), "/")+1] + "***"
	}
	out := u.Scheme + "://" + u.Host + path
	if u.RawQuery != "" || u.Fragment != "" {
		out += "?…"
	}
	return out
}

// Error returns err's text with the URL of any *url.Error in it redacted (Go's HTTP client
// puts the whole request URL into its errors).
func Error(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		msg = strings.ReplaceAll(msg, ue.URL, URL(ue.URL))
	}
	return msg
}
