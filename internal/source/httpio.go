package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/livesnap/livesnap/internal/source/avformat"
)

// Bounds of the HTTP inputs (HLS, HTTP-FLV).
const (
	maxRedirects = 5
	// maxPlaylistSize bounds one HLS playlist (a live playlist is a few kB).
	maxPlaylistSize = 1 << 20
	// maxSegmentSize bounds one HLS segment, key or init section.
	maxSegmentSize = 256 << 20
	// maxTargetDuration bounds the EXT-X-TARGETDURATION that lengthens the stall timeout.
	maxTargetDuration = 60 * time.Second
)

// httpIO makes every HTTP request of an HLS or HTTP-FLV input, in Go: dials go through
// Options.DialContext (the network policy, on the address actually dialled, redirects
// included), TLS is Go's, and nothing but http and https is ever opened.
type httpIO struct {
	client    *http.Client
	transport *http.Transport
	hls       bool
	// targetDuration is the longest EXT-X-TARGETDURATION seen in a playlist (nanoseconds).
	targetDuration atomic.Int64
}

func newHTTPIO(opt Options, hls bool) *httpIO {
	tr := &http.Transport{
		Proxy:               nil, // never an environment proxy: the policy must see the real target
		DialContext:         opt.dialContext(),
		TLSClientConfig:     opt.TLSConfig,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	h := &httpIO{transport: tr, hls: hls}
	h.client = &http.Client{Transport: tr, CheckRedirect: checkRedirect}
	return h
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", avformat.ErrURLRefused, maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w: redirect to a %s URL", avformat.ErrURLRefused, req.URL.Scheme)
	}
	return nil
}

// close drops idle connections (in-flight requests end with the demuxer's context).
func (h *httpIO) close() { h.transport.CloseIdleConnections() }

// open is the avformat.Opener.
func (h *httpIO) open(ctx context.Context, r avformat.Request) (*avformat.Response, error) {
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// data:, file:, concat:, subfile, crypto of those, ...: never.
		return nil, fmt.Errorf("%w: %s is not an http(s) URL", avformat.ErrURLRefused, redactURL(r.URL))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", avformat.ErrURLRefused, err)
	}
	req.Header.Set("User-Agent", "livesnap")
	if r.Offset > 0 || r.End >= 0 {
		rng := "bytes=" + strconv.FormatInt(r.Offset, 10) + "-"
		if r.End >= 0 {
			rng += strconv.FormatInt(r.End-1, 10)
		}
		req.Header.Set("Range", rng)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redactURL(ue.URL) // errors end up in logs and LastError: no tokens
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		return nil, &avformat.StatusError{Code: resp.StatusCode, URL: redactURL(r.URL)}
	}
	out := &avformat.Response{Body: resp.Body, URL: resp.Request.URL.String()}
	if !h.hls {
		return out, nil
	}
	// HLS: playlists are read whole (bounded) and looked at; everything else is bounded.
	br := bufio.NewReaderSize(resp.Body, 4096)
	if head, _ := br.Peek(7); string(head) == "#EXTM3U" {
		data, err := io.ReadAll(io.LimitReader(br, maxPlaylistSize+1))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(data) > maxPlaylistSize {
			return nil, fmt.Errorf("%w: playlist larger than %d bytes", avformat.ErrTooLarge, maxPlaylistSize)
		}
		h.notePlaylist(data)
		out.Body = io.NopCloser(bytes.NewReader(data))
		return out, nil
	}
	out.Body = &boundedBody{r: br, c: resp.Body, left: maxSegmentSize}
	return out, nil
}

// notePlaylist records the playlist's target duration: segments arrive in bursts that far
// apart, so the stall timeout must be longer.
func (h *httpIO) notePlaylist(data []byte) {
	for _, line := range bytes.Split(data, []byte("\n")) {
		v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("#EXT-X-TARGETDURATION:"))
		if !ok {
			continue
		}
		secs, err := strconv.ParseFloat(string(v), 64)
		if err != nil || secs <= 0 {
			continue
		}
		d := min(time.Duration(secs*float64(time.Second)), maxTargetDuration)
		for {
			old := h.targetDuration.Load()
			if int64(d) <= old || h.targetDuration.CompareAndSwap(old, int64(d)) {
				break
			}
		}
	}
}

// boundedBody fails a response body that grows past its bound.
type boundedBody struct {
	r    io.Reader
	c    io.Closer
	left int64
}

var errBodyTooLarge = errors.New("response larger than the bound")

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("%w: %w (%d bytes)", avformat.ErrTooLarge, errBodyTooLarge, maxSegmentSize)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.c.Close() }

// redactURL keeps scheme, host and path: user information and queries often carry secrets.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			raw = raw[:i]
		}
		if len(raw) > 80 {
			raw = raw[:80] + "..."
		}
		return raw
	}
	s := u.Scheme + "://" + u.Host + u.EscapedPath()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
