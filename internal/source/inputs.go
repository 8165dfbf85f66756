package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/redact"
	"github.com/livesnap/livesnap/internal/source/avformat"
)

// Bounds of the libavformat inputs.
const (
	// maxAVURLLength bounds a stream URL (the API allows 255; redirects and playlists may be
	// longer).
	maxAVURLLength = 2048
	// maxStreams bounds the streams of one input.
	maxStreams = 32
	// hlsMaxOpens bounds the playlists, segments, init sections and keys fetched while an
	// HLS input opens (one variant: a handful; a master playlist nested in a variant: one
	// of each per variant).
	hlsMaxOpens = 48
)

// Probing: enough for MPEG-TS (SRT, HLS segments) to find its programs and parameter sets,
// short enough that a live stream opens in about a second.
const (
	probeSize       = "500000"
	analyzeDuration = "1000000" // µs
)

// noProtocols is a protocol_whitelist that matches no protocol: for the HTTP inputs every
// URL is opened in Go, so libavformat may open nothing itself (no file:, data:, concat:,
// crypto:, http: of its own).
const noProtocols = "none"

// avInput is what one StreamInput.Type needs from libavformat.
type avInput struct {
	format  string   // the forced demuxer
	schemes []string // URL schemes of the type
	// formats the demuxer may hand the input to (HLS segments: MPEG-TS, fMP4, raw audio).
	formatWhitelist string
}

var avInputs = map[string]avInput{
	"rtsp":     {format: "rtsp", schemes: []string{"rtsp", "rtsps"}, formatWhitelist: "rtsp"},
	"hls":      {format: "hls", schemes: []string{"http", "https"}, formatWhitelist: "hls,mpegts,mov,mp4,m4a,3gp,3g2,mj2,aac,mp3,ac3,eac3,webvtt"},
	"http-flv": {format: "flv", schemes: []string{"http", "https"}, formatWhitelist: "flv"},
	"srt":      {format: "mpegts", schemes: []string{"srt"}, formatWhitelist: "mpegts"},
}

// srtParams are the SRT URL query parameters passed on (as libsrt options); anything else
// (listener or rendezvous mode, local ports, timeouts) is refused.
var srtParams = map[string]bool{"streamid": true, "passphrase": true, "pbkeylen": true, "latency": true,
	"rcvlatency": true, "peerlatency": true, "tlpktdrop": true, "nakreport": true,
	"enforced_encryption": true, "payload_size": true, "pkt_size": true, "mode": true, "transtype": true}

// avTarget is a validated stream URL and how to open it.
type avTarget struct {
	typ   string
	in    avInput
	url   *url.URL
	where string // scheme://host/path for messages (no credentials, no query)
}

// parseAVURL validates a stream URL for a libavformat type.
func parseAVURL(typ, raw string) (*avTarget, error) {
	in, ok := avInputs[typ]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupported, typ)
	}
	if len(raw) > maxAVURLLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", errInvalidURL, maxAVURLLength)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("%w: spaces or control characters", errInvalidURL)
	}
	if strings.Contains(raw, "#") {
		return nil, fmt.Errorf("%w: fragment (#) is not allowed (percent-encode it as %%23)", errInvalidURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidURL, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if !slices.Contains(in.schemes, u.Scheme) {
		return nil, fmt.Errorf("%w: scheme %q is not %s for type %s", errInvalidURL, u.Scheme, strings.Join(in.schemes, " or "), typ)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: missing host", errInvalidURL)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%w: bad port %q", errInvalidURL, p)
		}
	} else if strings.HasSuffix(u.Host, ":") || typ == "srt" {
		return nil, fmt.Errorf("%w: missing port", errInvalidURL)
	}
	if typ == "srt" {
		if u.User != nil || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("%w: an SRT URL is srt://host:port?streamid=...", errInvalidURL)
		}
		if _, err := srtOptions(u.Query()); err != nil {
			return nil, err
		}
	}
	return &avTarget{typ: typ, in: in, url: u, where: redact.URL(raw)}, nil
}

// srtOptions turns the URL's query into libsrt options, refusing what a caller must not set.
func srtOptions(q url.Values) (map[string]string, error) {
	out := map[string]string{}
	for k, vs := range q {
		if !srtParams[k] || len(vs) != 1 {
			return nil, fmt.Errorf("%w: SRT parameter %q is not allowed (or given twice)", errInvalidURL, k)
		}
		v := vs[0]
		switch {
		case k == "mode" && v != "caller":
			return nil, fmt.Errorf("%w: SRT mode must be caller", errInvalidURL)
		case k == "transtype" && v != "live":
			return nil, fmt.Errorf("%w: SRT transtype must be live", errInvalidURL)
		case k == "streamid" && len(v) > 512, k == "passphrase" && (len(v) < 10 || len(v) > 79):
			return nil, fmt.Errorf("%w: SRT %s has a bad length", errInvalidURL, k)
		case k != "streamid" && k != "passphrase" && k != "mode" && k != "transtype":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return nil, fmt.Errorf("%w: SRT %s must be a number", errInvalidURL, k)
			}
		}
		out[k] = v
	}
	out["mode"] = "caller"
	return out, nil
}

// resolveChecked resolves host and checks every address against the policy (libavformat
// may connect to any of them). A literal IP address is checked as it is.
func resolveChecked(ctx context.Context, host string, check func(netip.Addr) error) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
		for _, a := range found {
			addrs = append(addrs, a.Unmap())
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolve %s: no addresses", host)
		}
	}
	if check != nil {
		for _, a := range addrs {
			if err := check(a); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", errPolicy, host, err)
			}
		}
	}
	return addrs, nil
}

// errPolicy marks connections the operator's network policy refused.
var errPolicy = errors.New("refused by the network policy")

// withHost returns u with its host replaced by addr (keeping the port): libavformat then
// connects to exactly the address that was checked.
func withHost(u *url.URL, addr netip.Addr) *url.URL {
	c := *u
	if p := u.Port(); p != "" {
		c.Host = net.JoinHostPort(addr.String(), p)
	} else if addr.Is6() {
		c.Host = "[" + addr.String() + "]"
	} else {
		c.Host = addr.String()
	}
	return &c
}

// avConfig builds the demuxer configuration for t. For RTSP and SRT, whose connections
// libavformat makes itself, the host is resolved and checked here.
func avConfig(ctx context.Context, t *avTarget, opt Options, deadline time.Time) (avformat.Config, *httpIO, error) {
	cfg := avformat.Config{
		Format:        t.in.format,
		Deadline:      deadline,
		MaxStreams:    maxStreams,
		MaxPacketSize: MaxUnitSize,
		Options: map[string]string{
			"probesize":        probeSize,
			"analyzeduration":  analyzeDuration,
			"fpsprobesize":     "0",
			"max_streams":      strconv.Itoa(maxStreams),
			"format_whitelist": t.in.formatWhitelist,
		},
	}
	resolveCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	switch t.typ {
	case "hls", "http-flv":
		hio := newHTTPIO(opt, t.typ == "hls")
		cfg.URL = t.url.String()
		cfg.IO = hio.open
		cfg.Options["protocol_whitelist"] = noProtocols
		if t.typ == "hls" {
			cfg.MaxOpens = hlsMaxOpens
			// Persistent connections would make libavformat reuse its own HTTP context,
			// which a Go-opened input does not have.
			cfg.Options["http_persistent"] = "0"
			cfg.Options["http_multiple"] = "0"
			cfg.Options["live_start_index"] = "-1" // start at the newest segment
		}
		return cfg, hio, nil

	case "rtsp":
		transport := opt.RTSPTransport
		switch transport {
		case "":
			transport = "tcp"
		case "tcp", "udp":
		default:
			return cfg, nil, fmt.Errorf("%w: RTSP transport %q (tcp or udp)", errInvalidURL, transport)
		}
		addrs, err := resolveChecked(resolveCtx, t.url.Hostname(), opt.CheckAddr)
		if err != nil {
			return cfg, nil, err
		}
		u := t.url
		if u.Scheme == "rtsp" {
			u = withHost(u, addrs[0]) // rtsps keeps the name for TLS (see docs/decisions.md)
		}
		cfg.URL = u.String()
		whitelist := "tcp"
		if u.Scheme == "rtsps" {
			whitelist += ",tls"
		}
		if transport == "udp" {
			whitelist += ",rtp,udp"
			cfg.Options["rtsp_flags"] = "filter_src" // only packets from the server's address
		}
		cfg.Options["protocol_whitelist"] = whitelist
		cfg.Options["rtsp_transport"] = transport
		cfg.Options["user_agent"] = "livesnap"
		// A backstop in libavformat's own terms; the deadlines above come first.
		cfg.Options["timeout"] = strconv.FormatInt((max(opt.ConnectTimeout, opt.ReadTimeout) + 10*time.Second).Microseconds(), 10)
		// A redirect (3xx) makes libavformat connect elsewhere: check that host too.
		cfg.CheckURL = func(raw string) error {
			nu, err := url.Parse(raw)
			if err != nil || (nu.Scheme != "rtsp" && nu.Scheme != "rtsps") || nu.Hostname() == "" {
				return fmt.Errorf("RTSP redirect to %s", redactURL(raw))
			}
			rctx, cancel := context.WithTimeout(ctx, opt.ConnectTimeout)
			defer cancel()
			_, err = resolveChecked(rctx, nu.Hostname(), opt.CheckAddr)
			return err
		}
		return cfg, nil, nil

	case "srt":
		addrs, err := resolveChecked(resolveCtx, t.url.Hostname(), opt.CheckAddr)
		if err != nil {
			return cfg, nil, err
		}
		params, err := srtOptions(t.url.Query())
		if err != nil {
			return cfg, nil, err
		}
		u := withHost(t.url, addrs[0])
		u.RawQuery, u.Path = "", "" // parameters go as options, decoded (a streamid may hold #, &, =)
		cfg.URL = u.String()
		for k, v := range params {
			cfg.Options[k] = v
		}
		cfg.Options["protocol_whitelist"] = "srt"
		cfg.Options["connect_timeout"] = strconv.FormatInt(max(opt.ConnectTimeout.Milliseconds(), 1), 10)
		return cfg, nil, nil
	}
	return cfg, nil, fmt.Errorf("%w: %q", ErrUnsupported, t.typ)
}
