// Package source pulls live streams and yields their video as codec-tagged access units.
//
// One client per protocol; each turns a stream URL into a Stream whose Read returns
// media.AccessUnit values. Sources demux only: they never decode.
package source

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/livesnap/livesnap/internal/media"
)

// Default bounds used when Options leaves them zero.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultReadTimeout    = 10 * time.Second
)

// LiveReadPeriod is the CoalesceReads the runner uses for live pipelines.
const LiveReadPeriod = 200 * time.Millisecond

// MaxUnitSize bounds one video access unit; bigger units fail Read (memory stays bounded).
const MaxUnitSize = 8 << 20

// Options bound every blocking step.
type Options struct {
	ConnectTimeout time.Duration // dial + handshake + play + track discovery; 0 → 10 s
	ReadTimeout    time.Duration // max silence between video units before Read fails with ErrStalled; 0 → 10 s
	// DialContext opens TCP connections made in Go (RTMP, and every HTTP request of HLS and
	// HTTP-FLV); nil → net.Dialer checking CheckAddr. This is where the operator's network
	// allow/deny list checks the resolved address.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
	// CheckAddr refuses addresses the operator does not allow, for the protocols libavformat
	// dials itself (RTSP, SRT): every resolved address of the URL's host is checked before
	// connecting. nil allows all.
	CheckAddr func(netip.Addr) error
	// TLSConfig is used for rtmps and https inputs; nil → system roots.
	TLSConfig *tls.Config
	// RTSPTransport is StreamInput.Transport for rtsp: "tcp" (interleaved, the default) or
	// "udp".
	RTSPTransport string
	// CoalesceReads, for RTMP, reads the network at most this often once the stream plays in
	// real time (see coalescingConn): far fewer wake-ups per picture, for a few tens of
	// milliseconds of arrival delay that snapshots never notice (pictures are stamped by their
	// own timestamps). 0: read as data arrives.
	CoalesceReads time.Duration
}

// dialContext is DialContext, or a plain dialer that checks CheckAddr.
func (o Options) dialContext() func(ctx context.Context, network, address string) (net.Conn, error) {
	if o.DialContext != nil {
		return o.DialContext
	}
	d := &net.Dialer{}
	if o.CheckAddr != nil {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("network policy: unexpected address %q", address)
			}
			return o.CheckAddr(ap.Addr())
		}
	}
	return d.DialContext
}

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	return o
}

// Stream is an open pull of one live stream's video.
type Stream interface {
	// Codec returns the video codec of the stream.
	Codec() media.Codec
	// Read returns the next video access unit (audio is read and discarded, never blocks video).
	// Keyframes carry the current parameter sets (see media.AccessUnit); Received is set.
	// After an error every further Read returns an error.
	Read() (media.AccessUnit, error)
	// Close unblocks a pending Read promptly; idempotent.
	Close() error
}

// KeyframesOnly is implemented by streams that can leave out the data of pictures that are not
// keyframes (RTMP, once it reads the connection itself): while on, such pictures come as
// media.AccessUnit.Skipped, timing only, without being copied. Units holding a keyframe, a
// recovery point or parameter sets always come whole. The stream turns it off itself at every
// keyframe it hands out, so the pictures after a keyframe come whole until the consumer, having
// seen that keyframe, turns it on again. Safe to call from any goroutine; it takes effect from
// the next message read.
type KeyframesOnly interface {
	SetKeyframesOnly(on bool)
}

// Errors reported by Open, Probe and Stream.Read. Returned errors wrap them with details; test
// with errors.Is.
var (
	// ErrStreamNotFound: refused connection, play rejected / StreamNotFound status, or no media
	// before ConnectTimeout.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrNoVideo: the stream is up but has no video track we can snapshot (the wrapping error
	// says which: audio only or which unsupported codec).
	ErrNoVideo = errors.New("stream has no usable video")
	// ErrStalled: no video unit within ReadTimeout while the connection is open.
	ErrStalled = errors.New("stream stalled")
	// ErrUnsupported: the stream type (or URL scheme) is not supported.
	ErrUnsupported = errors.New("unsupported stream type")
	// ErrEnded: the server ended the stream (connection closed, publisher left). Reconnect
	// later to resume.
	ErrEnded = errors.New("stream ended")
	// ErrClosed: Read on a Stream that was closed with Close.
	ErrClosed = errors.New("stream closed")
	// ErrInvalidURL: the stream URL cannot be used with the stream type.
	ErrInvalidURL = errInvalidURL
)

// Types lists the StreamInput.Type values Open supports.
var Types = []string{"rtmp", "rtsp", "hls", "http-flv", "srt"}

// Open connects. streamType is StreamInput.Type: "rtmp" (gortmplib, in Go), "rtsp", "hls",
// "http-flv" or "srt" (libavformat, in process).
// ctx cancellation aborts Open and also closes the Stream later (so a cancelled job always
// unblocks); a Read cut short that way returns an error wrapping ctx.Err().
func Open(ctx context.Context, streamType, rawURL string, opt Options) (Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opt = opt.withDefaults()
	switch streamType {
	case "rtmp":
		return openRTMP(ctx, rawURL, opt)
	case "rtsp", "hls", "http-flv", "srt":
		return openAV(ctx, streamType, rawURL, opt)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupported, streamType)
	}
}

// CheckURL reports, without connecting, whether Open could ever use rawURL as streamType:
// nil, or an error wrapping ErrInvalidURL (e.g. rtmp://host without app and stream key, an
// SRT listener) or ErrUnsupported. Open applies the same rules first.
func CheckURL(streamType, rawURL string) error {
	switch streamType {
	case "rtmp":
		_, err := splitRTMPURL(rawURL)
		return err
	case "rtsp", "hls", "http-flv", "srt":
		_, err := parseAVURL(streamType, rawURL)
		return err
	default:
		return fmt.Errorf("%w: %q", ErrUnsupported, streamType)
	}
}

// Probe opens the stream and waits for its first video unit, all within timeout (0 → 10 s).
// It is what SubmitLiveSnapshotJob and `start` use to check a stream is live.
func Probe(ctx context.Context, streamType, rawURL string, timeout time.Duration) error {
	return ProbeWith(ctx, streamType, rawURL, Options{ConnectTimeout: timeout})
}

// ProbeWith is Probe with options: opt.ConnectTimeout bounds the whole probe; opt.DialContext
// is used to connect.
func ProbeWith(ctx context.Context, streamType, rawURL string, opt Options) error {
	timeout := opt.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	opt.ConnectTimeout, opt.ReadTimeout = timeout, timeout
	s, err := Open(ctx, streamType, rawURL, opt)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: no media within %v", ErrStreamNotFound, timeout)
		}
		return err
	}
	defer s.Close()

	if rs, ok := s.(interface{ setReadTimeout(time.Duration) }); ok {
		rs.setReadTimeout(max(time.Until(deadline), time.Millisecond))
	}
	if _, err := s.Read(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: no video within %v", ErrStalled, timeout)
		}
		return err
	}
	return nil
}
