// Package avformat demuxes live streams in process with FFmpeg's libavformat (5.1+), behind
// deadlines and cancellation that work from any goroutine.
//
// A Demuxer is one avformat_open_input + avformat_find_stream_info + av_read_frame session
// with a forced input format. Every blocking libavformat call polls an interrupt callback
// that enforces the current deadline and Close/context cancellation (within about 100 ms:
// libavformat's poll interval). Two hooks keep libavformat from reaching places the caller
// did not approve:
//
//   - Config.IO: libavformat opens nothing itself. The main URL and every URL the demuxer
//     opens later (HLS playlists, segments, keys) are opened by the Opener in Go, so the
//     caller's HTTP client, network policy, redirect rules and size limits apply to each.
//     libavformat only parses the bytes.
//   - Config.CheckURL: for demuxers that dial by themselves (RTSP, SRT), a URL the demuxer
//     switches to (an RTSP redirect) is checked before any request is sent there.
//
// The package knows nothing about codecs beyond names; turning packets into access units is
// the caller's business.
package avformat

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// Bounds on inputs.
const (
	// MaxURLLength bounds every URL the demuxer is given or asked to open.
	MaxURLLength = 4096
	// DefaultMaxStreams bounds the streams of one input when Config.MaxStreams is 0.
	DefaultMaxStreams = 32
	// DefaultMaxOpens bounds the URLs opened through Config.IO while Open runs (HLS: the
	// playlists and first segments of every variant) when Config.MaxOpens is 0.
	DefaultMaxOpens = 64
	// DefaultMaxPacketSize bounds one packet when Config.MaxPacketSize is 0.
	DefaultMaxPacketSize = 16 << 20
)

// Errors. Failures of libavformat calls are *Error values; test with errors.Is.
var (
	// ErrDeadline: the deadline passed during the call (Config.Deadline for Open, the
	// ReadPacket argument for reads).
	ErrDeadline = errors.New("avformat: deadline exceeded")
	// ErrClosed: the Demuxer was closed.
	ErrClosed = errors.New("avformat: demuxer closed")
	// ErrEOF: the input ended (AVERROR_EOF).
	ErrEOF = errors.New("avformat: end of stream")
	// ErrRemote: the server answered a request with an error status (HTTP or RTSP 4xx/5xx).
	ErrRemote = errors.New("avformat: server refused the request")
	// ErrInvalidData: the input is not valid for the demuxer (AVERROR_INVALIDDATA).
	ErrInvalidData = errors.New("avformat: invalid data")
	// ErrURLRefused: Config.CheckURL or the Opener refused a URL the demuxer wanted.
	ErrURLRefused = errors.New("avformat: URL refused")
	// ErrTooLarge: a packet or the number of streams or opens exceeded its bound.
	ErrTooLarge = errors.New("avformat: input exceeds a bound")
)

// Request is a URL the demuxer wants read, as handed to an Opener.
type Request struct {
	URL string
	// Offset and End select a byte range (HLS EXT-X-BYTERANGE): [Offset, End), End -1 for
	// the end of the resource.
	Offset, End int64
	// Main is true for Config.URL, false for URLs the demuxer found in the input.
	Main bool
}

// Response is an opened URL.
type Response struct {
	Body io.ReadCloser
	// URL is where the content came from after redirects (relative URLs in an HLS playlist
	// are resolved against it); empty means Request.URL.
	URL string
}

// Opener opens URLs for a Demuxer (see Config.IO). ctx ends when the Demuxer is closed or
// its context is cancelled; Body.Read is also cut short by the demuxer's deadline. A refusal
// should wrap ErrURLRefused; an HTTP error status should be a *StatusError.
type Opener func(ctx context.Context, req Request) (*Response, error)

// StatusError is an error status a server answered instead of content.
type StatusError struct {
	Code int
	URL  string
}

// Error names the URL (as the Opener gave it) and the status.
func (e *StatusError) Error() string { return fmt.Sprintf("%s: status %d", e.URL, e.Code) }

// Unwrap makes a StatusError match ErrRemote.
func (e *StatusError) Unwrap() error { return ErrRemote }

// Config says what to open and how.
type Config struct {
	// URL is what libavformat is given (and what Opener receives first when IO is set).
	URL string
	// Format is the input format (demuxer) name: no probing, the caller knows the type.
	Format string
	// Options are passed to avformat_open_input (format, demuxer and protocol options).
	// An option no component recognised makes Open fail, so typos do not go unnoticed.
	Options map[string]string
	// IO, when set, opens every URL in Go (see the package documentation).
	IO Opener
	// CheckURL, when set, approves a URL the demuxer switches to after Open started (an
	// RTSP redirect); an error refuses it and fails the call with ErrURLRefused.
	CheckURL func(url string) error
	// Deadline bounds Open (connect, handshake, probing); zero means none.
	Deadline time.Time
	// MaxStreams, MaxOpens, MaxPacketSize: bounds (0: the defaults above).
	MaxStreams    int
	MaxOpens      int
	MaxPacketSize int
}

// MediaType says what a stream carries.
type MediaType int

// Media types.
const (
	MediaOther MediaType = iota
	MediaVideo
	MediaAudio
)

// String returns "video", "audio" or "other".
func (t MediaType) String() string {
	switch t {
	case MediaVideo:
		return "video"
	case MediaAudio:
		return "audio"
	}
	return "other"
}

// StreamInfo describes one stream of the input.
type StreamInfo struct {
	Index int
	Type  MediaType
	// Codec is libavcodec's codec name: "h264", "hevc", "av1", "aac", ...
	Codec string
	// Extradata is the codec configuration (avcC/hvcC/av1C record or Annex-B parameter
	// sets), a private copy; nil when the container has none.
	Extradata     []byte
	Width, Height int
	// PixelFormat is libavutil's AVPixelFormat, -1 when unknown; Profile the codec profile.
	PixelFormat int
	Profile     int
}

// Packet is one demuxed packet, in Go memory.
type Packet struct {
	Stream   int
	Data     []byte
	PTS, DTS time.Duration
	// HasPTS, HasDTS are false when the container gave no timestamp.
	HasPTS, HasDTS bool
	Key            bool
	// NewExtradata is new codec configuration sent in band (AV_PKT_DATA_NEW_EXTRADATA).
	NewExtradata []byte
}

// liveHandles counts cgo handles (demuxers and Go readers) not yet released.
var liveHandles atomic.Int64

// LiveHandles returns how many demuxer and reader handles are alive; leak tests check that
// it returns to its starting value.
func LiveHandles() int64 { return liveHandles.Load() }

// nested is a URL the demuxer asked for, decoded from libavformat's conventions.
type nested struct {
	req     Request
	key, iv []byte // AES-128-CBC (HLS "crypto+" URLs)
}

// parseNested turns what libavformat's io_open gets into a Request: "crypto+URL" and
// "crypto:URL" carry an AES-128 key and IV in hex options. Other protocol prefixes
// (data:, file:, concat:, subfile,...) are the Opener's to refuse.
func parseNested(url, keyHex, ivHex string, offset, end int64) (nested, error) {
	n := nested{req: Request{URL: url, Offset: offset, End: end}}
	if len(url) > MaxURLLength {
		return n, fmt.Errorf("%w: URL longer than %d bytes", ErrURLRefused, MaxURLLength)
	}
	if offset < 0 || (end >= 0 && end < offset) {
		return n, fmt.Errorf("%w: bad byte range %d-%d", ErrURLRefused, offset, end)
	}
	rest, ok := strings.CutPrefix(url, "crypto+")
	if !ok {
		rest, ok = strings.CutPrefix(url, "crypto:")
	}
	if !ok {
		return n, nil
	}
	key, err1 := hex.DecodeString(keyHex)
	iv, err2 := hex.DecodeString(ivHex)
	if err1 != nil || err2 != nil || len(key) != aes.BlockSize || len(iv) != aes.BlockSize {
		return n, fmt.Errorf("%w: crypto URL without a 128-bit key and IV", ErrURLRefused)
	}
	n.req.URL, n.key, n.iv = rest, key, iv
	return n, nil
}

// cbcReader decrypts AES-128-CBC with PKCS#7 padding (HLS METHOD=AES-128) as it reads,
// holding back the last block until EOF to strip the padding.
type cbcReader struct {
	src  io.Reader
	mode cipher.BlockMode
	in   []byte // ciphertext not yet decrypted (less than one block, or the held-back block)
	out  []byte // plaintext ready to hand out
	buf  [32 << 10]byte
	eof  bool
}

func newCBCReader(src io.Reader, key, iv []byte) (*cbcReader, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &cbcReader{src: src, mode: cipher.NewCBCDecrypter(b, iv)}, nil
}

func (r *cbcReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		n, err := r.src.Read(r.buf[:])
		r.in = append(r.in, r.buf[:n]...)
		if errors.Is(err, io.EOF) {
			r.eof = true
			if len(r.in)%aes.BlockSize != 0 {
				return 0, fmt.Errorf("avformat: encrypted segment is not a whole number of blocks")
			}
			r.mode.CryptBlocks(r.in, r.in)
			pad := 0
			if len(r.in) > 0 {
				pad = int(r.in[len(r.in)-1])
			}
			if pad < 1 || pad > aes.BlockSize || pad > len(r.in) {
				return 0, fmt.Errorf("avformat: bad padding in encrypted segment")
			}
			r.out, r.in = r.in[:len(r.in)-pad], nil
			continue
		}
		if err != nil {
			return 0, err
		}
		// Decrypt whole blocks but keep the last one back: it may be the padded one.
		whole := (len(r.in)/aes.BlockSize - 1) * aes.BlockSize
		if whole > 0 {
			r.mode.CryptBlocks(r.in[:whole], r.in[:whole])
			r.out = append(r.out[:0], r.in[:whole]...)
			r.in = append(r.in[:0], r.in[whole:]...)
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}
