package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/livesnap/livesnap/internal/media"
	"github.com/livesnap/livesnap/internal/source/avformat"
)

// Timing of the libavformat inputs.
const (
	// srtPeerIdle is libsrt's peer idle timeout (SRTO_PEERIDLETIMEO, 5 s by default, not
	// settable through FFmpeg 5.1): a silent peer is declared broken after it. A broken
	// connection after that much silence is a stall, not an end.
	srtPeerIdle = 4 * time.Second
	// hlsStallSegments: an HLS stream is stalled after this many target durations without
	// video (segments arrive in bursts a target duration apart, after a playlist reload).
	hlsStallSegments = 3
)

// avStream reads one stream through libavformat (package avformat). Read runs on the
// caller's goroutine; Close (and ctx cancellation) interrupt a pending read within about
// 100 ms, from any goroutine.
type avStream struct {
	dmx   *avformat.Demuxer
	http  *httpIO // HLS and HTTP-FLV; nil otherwise
	ctx   context.Context
	proto string
	where string

	codec      media.Codec
	kind       codecKind
	builder    *unitBuilder
	lengthSize int // NAL length size of AVCC/HVCC packets; 0 for Annex-B

	readTimeout time.Duration
	opened      time.Time // origin of timestamps for packets without any
	lastUnit    time.Time
	lastDTS     time.Duration
	err         error // sticky

	closeOnce sync.Once
}

func openAV(ctx context.Context, typ, rawURL string, opt Options) (Stream, error) {
	t, err := parseAVURL(typ, rawURL)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(opt.ConnectTimeout)
	cfg, hio, err := avConfig(ctx, t, opt, deadline)
	if err != nil {
		kind := failRejected // a refused address or a name that does not resolve
		switch {
		case errors.Is(err, errInvalidURL):
			return nil, err
		case ctx.Err() != nil:
			kind = failCanceled
		case errors.Is(err, context.DeadlineExceeded):
			kind = failTimeout
		}
		return nil, openFailure(ctx, typ, t.where, kind, err, opt.ConnectTimeout)
	}
	if typ == "hls" {
		vctx, cancel := context.WithDeadline(ctx, deadline)
		cfg.URL, err = hlsVariant(vctx, hio, cfg.URL)
		cancel()
		if err != nil {
			hio.close()
			return nil, openFailure(ctx, typ, t.where, classifyAV(ctx, err), err, opt.ConnectTimeout)
		}
	}
	dmx, err := avformat.Open(ctx, cfg)
	if err != nil {
		if hio != nil {
			hio.close()
		}
		return nil, openFailure(ctx, typ, t.where, classifyAV(ctx, err), err, opt.ConnectTimeout)
	}
	s := &avStream{dmx: dmx, http: hio, ctx: ctx, proto: typ, where: t.where,
		readTimeout: opt.ReadTimeout, opened: time.Now()}
	if err := s.selectVideo(); err != nil {
		s.Close()
		return nil, openFailure(ctx, typ, t.where, failNoVideo, err, opt.ConnectTimeout)
	}
	if hio != nil {
		if td := time.Duration(hio.targetDuration.Load()); td > 0 {
			s.readTimeout = max(s.readTimeout, hlsStallSegments*td)
		}
	}
	s.lastUnit = time.Now()
	return s, nil
}

// selectVideo picks the video stream to read: the largest picture among those of a codec
// livesnap decodes (HLS variants), and discards every other stream.
func (s *avStream) selectVideo() error {
	best := -1
	var unsupported []string
	var bestInfo avformat.StreamInfo
	for _, st := range s.dmx.Streams() {
		if st.Type != avformat.MediaVideo {
			continue
		}
		if _, _, ok := codecOf(st.Codec); !ok {
			unsupported = append(unsupported, st.Codec)
			continue
		}
		if best < 0 || st.Width*st.Height > bestInfo.Width*bestInfo.Height {
			best, bestInfo = st.Index, st
		}
	}
	if best < 0 {
		if len(unsupported) > 0 {
			return fmt.Errorf("%w: unsupported video codec: %s", ErrNoVideo, strings.Join(unsupported, ", "))
		}
		return fmt.Errorf("%w: audio only", ErrNoVideo)
	}
	s.codec, s.kind, _ = codecOf(bestInfo.Codec)
	s.builder = newUnitBuilder(s.codec)
	if err := s.takeConfig(bestInfo.Extradata); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNoVideo, bestInfo.Codec, err)
	}
	s.dmx.Keep(best)
	return nil
}

// codecOf maps libavcodec's codec names to ours.
func codecOf(name string) (media.Codec, codecKind, bool) {
	switch name {
	case "h264":
		return media.CodecH264, kindH264, true
	case "hevc":
		return media.CodecH265, kindH265, true
	case "av1":
		return media.CodecAV1, kindAV1, true
	}
	return media.CodecUnknown, 0, false
}

// takeConfig reads codec configuration (extradata, at open or in band): the parameter sets
// and the packets' NAL framing.
func (s *avStream) takeConfig(extradata []byte) error {
	if len(extradata) == 0 {
		return nil
	}
	cfg, err := parseCodecConfig(s.kind, extradata)
	if err != nil {
		return err
	}
	s.lengthSize = cfg.lengthSize
	for _, p := range cfg.params {
		if s.kind == kindAV1 {
			if len(p) > 0 && int(p[0]>>3)&0x0f == av1OBUSequenceHeader {
				s.builder.setParam(av1OBUSequenceHeader, p)
			}
			continue
		}
		typ := nalType(s.codec, p)
		for _, want := range paramTypes(s.codec) {
			if typ == want {
				s.builder.setParam(typ, p)
			}
		}
	}
	return nil
}

// Codec returns the video codec of the stream.
func (s *avStream) Codec() media.Codec { return s.codec }

func (s *avStream) setReadTimeout(d time.Duration) { s.readTimeout = d }

// Read returns the next video access unit; see Stream.
func (s *avStream) Read() (media.AccessUnit, error) {
	if s.err != nil {
		return media.AccessUnit{}, s.err
	}
	deadline := time.Now().Add(s.readTimeout)
	for {
		p, err := s.dmx.ReadPacket(deadline)
		if err != nil {
			s.err = readFailure(s.ctx, s.proto, s.where, s.classifyRead(err), err, s.readTimeout)
			return media.AccessUnit{}, s.err
		}
		au, ok, err := s.unit(p)
		if err != nil {
			s.err = readFailure(s.ctx, s.proto, s.where, failOther, err, s.readTimeout)
			return media.AccessUnit{}, s.err
		}
		if ok {
			s.lastUnit = au.Received
			return au, nil
		}
	}
}

// unit turns one packet into an access unit (ok false: nothing to show, e.g. parameter sets
// only, or a packet that does not parse, which is skipped).
func (s *avStream) unit(p avformat.Packet) (media.AccessUnit, bool, error) {
	if len(p.NewExtradata) > 0 {
		_ = s.takeConfig(p.NewExtradata) // keep the old configuration if the new one is bad
	}
	if len(p.Data) == 0 {
		return media.AccessUnit{}, false, nil
	}
	var au media.AccessUnit
	var ok bool
	if s.kind == kindAV1 {
		obus, err := splitOBUs(p.Data)
		if err != nil {
			return media.AccessUnit{}, false, nil
		}
		au, ok = s.builder.av1Keyed(obus, p.Key)
	} else {
		nalus, err := s.split(p.Data)
		if err != nil {
			return media.AccessUnit{}, false, nil
		}
		au, ok = s.builder.h26x(nalus)
	}
	if !ok {
		return media.AccessUnit{}, false, nil
	}
	if n := au.Size(); n > MaxUnitSize {
		return media.AccessUnit{}, false, fmt.Errorf("%w: %d bytes (limit %d)", errUnitTooLarge, n, MaxUnitSize)
	}
	au.Received = time.Now()
	switch {
	case p.HasDTS:
		au.DTS = p.DTS
	case p.HasPTS:
		au.DTS = p.PTS
	default:
		// No timestamps at all: arrival time since open keeps DTS increasing.
		au.DTS = max(au.Received.Sub(s.opened), s.lastDTS+time.Millisecond)
	}
	au.PTS = au.DTS
	if p.HasPTS {
		au.PTS = p.PTS
	}
	s.lastDTS = au.DTS
	return au, true, nil
}

// split cuts a packet into NAL units in the framing the configuration announced; a packet
// that does not fit it is tried as Annex-B (some muxers mix).
func (s *avStream) split(data []byte) ([][]byte, error) {
	if s.lengthSize > 0 {
		if nalus, err := splitLengthPrefixed(data, s.lengthSize); err == nil {
			return nalus, nil
		}
	}
	return splitAnnexB(data)
}

// Close stops the demuxer (a pending Read returns ErrClosed) and frees it. Idempotent.
func (s *avStream) Close() error {
	s.closeOnce.Do(func() {
		s.dmx.Close()
		if s.http != nil {
			s.http.close()
		}
	})
	return nil
}

// classifyRead tells why a read failed.
func (s *avStream) classifyRead(err error) failure {
	kind := classifyAV(s.ctx, err)
	if s.proto == "srt" && kind == failGone && time.Since(s.lastUnit) >= srtPeerIdle {
		// libsrt declares a silent peer broken after its idle timeout: that is a stall.
		return failTimeout
	}
	return kind
}

// classifyAV tells why a libavformat call (or a Go-side open for it) failed.
func classifyAV(ctx context.Context, err error) failure {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, avformat.ErrClosed):
		return failClosed
	case ctx.Err() != nil:
		return failCanceled
	case errors.Is(err, ErrNoVideo):
		return failNoVideo
	case errors.Is(err, avformat.ErrDeadline), errors.Is(err, syscall.ETIMEDOUT), isTimeout(err):
		return failTimeout
	case errors.Is(err, avformat.ErrTooLarge), errors.Is(err, errUnitTooLarge):
		return failOther
	case errors.Is(err, avformat.ErrRemote), errors.Is(err, avformat.ErrURLRefused), errors.Is(err, errPolicy),
		errors.Is(err, avformat.ErrInvalidData), errors.As(err, &dnsErr),
		errors.As(err, &opErr) && opErr.Op == "dial", // refused, unreachable, the network policy
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EACCES):
		return failRejected
	case errors.Is(err, avformat.ErrEOF), errors.Is(err, syscall.EIO), isConnGone(err):
		return failGone
	}
	return failOther
}
