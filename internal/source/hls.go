package source

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/livesnap/livesnap/internal/source/avformat"
)

// hlsVariant picks the media playlist to follow when rawURL is a master playlist: the
// variant with the largest picture (then the highest bandwidth) among those whose CODECS
// livesnap decodes (or that do not say). libavformat, given a master playlist, opens every
// variant's playlist and first segment to probe them; given the media playlist it fetches
// one of each, and no audio rendition. A media playlist URL is returned as it is.
func hlsVariant(ctx context.Context, h *httpIO, rawURL string) (string, error) {
	resp, err := h.open(ctx, avformat.Request{URL: rawURL, End: -1, Main: true})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxPlaylistSize+1))
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(data, []byte("#EXTM3U")) {
		return "", fmt.Errorf("%w: not an HLS playlist", avformat.ErrInvalidData)
	}
	base, err := url.Parse(resp.URL)
	if err != nil {
		return "", fmt.Errorf("%w: %v", avformat.ErrURLRefused, err)
	}
	best, found := hlsChoice{}, false
	var pending *hlsChoice
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			c := parseStreamInf(strings.TrimPrefix(line, "#EXT-X-STREAM-INF:"))
			pending = &c
		case line == "" || strings.HasPrefix(line, "#"):
		case pending != nil:
			u, err := base.Parse(line)
			c := *pending
			pending = nil
			if err != nil || !c.decodable {
				continue
			}
			c.url = u.String()
			if !found || c.better(best) {
				best, found = c, true
			}
		}
	}
	if !found {
		if bytes.Contains(data, []byte("#EXT-X-STREAM-INF")) {
			return "", fmt.Errorf("%w: unsupported video codec in every variant", ErrNoVideo)
		}
		return resp.URL, nil // a media playlist
	}
	return best.url, nil
}

// hlsChoice is one variant of a master playlist.
type hlsChoice struct {
	url       string
	pixels    int64
	bandwidth int64
	decodable bool
}

func (c hlsChoice) better(o hlsChoice) bool {
	if c.pixels != o.pixels {
		return c.pixels > o.pixels
	}
	return c.bandwidth > o.bandwidth
}

// parseStreamInf reads the attributes of #EXT-X-STREAM-INF that matter here.
func parseStreamInf(attrs string) hlsChoice {
	c := hlsChoice{decodable: true}
	for _, kv := range splitAttrs(attrs) {
		k, v, _ := strings.Cut(kv, "=")
		v = strings.Trim(v, `"`)
		switch k {
		case "RESOLUTION":
			w, h, ok := strings.Cut(v, "x")
			wi, e1 := strconv.ParseInt(w, 10, 32)
			hi, e2 := strconv.ParseInt(h, 10, 32)
			if ok && e1 == nil && e2 == nil && wi > 0 && hi > 0 {
				c.pixels = wi * hi
			}
		case "BANDWIDTH":
			c.bandwidth, _ = strconv.ParseInt(v, 10, 64)
		case "CODECS":
			c.decodable = decodableCodecs(v)
		}
	}
	return c
}

// decodableCodecs reports whether an RFC 6381 CODECS list has a video codec livesnap decodes
// (audio-only variants and, say, VP9 ones are skipped).
func decodableCodecs(list string) bool {
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		for _, p := range []string{"avc1", "avc3", "hvc1", "hev1", "av01"} {
			if strings.HasPrefix(c, p) {
				return true
			}
		}
	}
	return false
}

// splitAttrs splits an HLS attribute list at commas outside quotes.
func splitAttrs(s string) []string {
	var out []string
	quoted, start := false, 0
	for i, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ',' && !quoted:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}
