package source

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// errInvalidURL marks stream URLs that cannot be turned into an RTMP app and stream key.
var errInvalidURL = errors.New("invalid stream URL")

// rtmpTarget is a user's stream URL split the way RTMP servers expect it.
type rtmpTarget struct {
	// URL is what gortmplib's Client takes: the path is the RTMP app, the fragment the stream key.
	URL *url.URL
	App string // RTMP app as sent in "connect" (escaped form, may carry a query)
	Key string // stream name as sent in "play" (escaped form, may carry a query)
}

// splitRTMPURL turns rtmp[s]://[user:pass@]host[:port]/app[/more/app]/key[?query] into an app and a
// stream key.
//
// The last path element becomes the stream key, together with the URL's query (servers such as
// nginx-rtmp and SRS read tokens from the play name's query); everything before it is the app.
// A URL with a single path element (rtmp://host/name) is taken as app "name" with an empty
// stream key, keeping the query on the app: this is how gortmplib-based servers (MediaMTX)
// address single-element paths and what ffmpeg does with such URLs.
// Path elements are passed on as written (percent escapes are not decoded), like ffmpeg does.
// The default port (1935 for rtmp, 443 for rtmps) is made explicit.
func splitRTMPURL(raw string) (*rtmpTarget, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidURL, err)
	}

	var defPort string
	switch strings.ToLower(u.Scheme) {
	case "rtmp":
		defPort = "1935"
	case "rtmps":
		defPort = "443"
	default:
		return nil, fmt.Errorf("%w: scheme %q is not rtmp or rtmps", errInvalidURL, u.Scheme)
	}
	if u.Opaque != "" {
		return nil, fmt.Errorf("%w: missing // after scheme", errInvalidURL)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, fmt.Errorf("%w: fragment (#) is not allowed", errInvalidURL)
	}

	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("%w: missing host", errInvalidURL)
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return nil, fmt.Errorf("%w: empty port", errInvalidURL)
		}
		port = defPort
	}

	escPath := strings.TrimRight(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if escPath == "" {
		return nil, fmt.Errorf("%w: missing app and stream key in path", errInvalidURL)
	}

	var escApp, key, appQuery string
	if i := strings.LastIndexByte(escPath, '/'); i >= 0 {
		escApp, key = escPath[:i], escPath[i+1:]
		if u.RawQuery != "" || u.ForceQuery {
			key += "?" + u.RawQuery
		}
	} else {
		escApp = escPath
		appQuery = u.RawQuery
	}
	if escApp == "" || strings.HasPrefix(escApp, "/") || strings.Contains(escApp, "//") {
		return nil, fmt.Errorf("%w: empty app path element", errInvalidURL)
	}
	appPath, err := url.PathUnescape(escApp)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidURL, err)
	}

	out := &url.URL{
		Scheme:   strings.ToLower(u.Scheme),
		User:     u.User,
		Host:     net.JoinHostPort(host, port),
		Path:     "/" + appPath,
		RawPath:  "/" + escApp,
		RawQuery: appQuery,
		Fragment: key,
	}
	app := escApp
	if appQuery != "" {
		app += "?" + appQuery
	}
	return &rtmpTarget{URL: out, App: app, Key: key}, nil
}
