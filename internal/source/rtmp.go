package source

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/livesnap/livesnap/internal/media"
)

// Errors raised inside the RTMP read path; Open and Read map them to the exported ones.
var (
	errPlayRejected  = errors.New("server rejected play")
	errServerEnded   = errors.New("server ended the stream")
	errUnitTooLarge  = errors.New("video unit too large")
	errNoVideoCodecs = errors.New("unsupported video codec")
)

// rtmpStream reads one RTMP stream. gortmplib's Client and Reader connect, play and discover
// the tracks; then, for a single-track H.264 or H.265 stream, the stream reads the connection
// itself (the direct path, rtmpdirect.go): gortmplib allocates every chunk and message, which
// for hundreds of streams costs more than the snapshots.
//
// Read runs synchronously on the caller's goroutine and sets the read deadline before reading
// (through guardedConn on gortmplib's path). Close (and ctx cancellation) close the socket,
// which unblocks a pending read at once.
type rtmpStream struct {
	conn   net.Conn // the connection (the tap); closing it stops the stream
	client *gortmplib.Client
	reader *gortmplib.Reader
	gc     *guardedConn
	tap    *rtmpTap
	direct *rtmpDirect // set once the stream reads the connection itself
	replay int         // messages gortmplib's reader still replays from track discovery

	keyframesOnly atomic.Bool // see SetKeyframesOnly
	ctx           context.Context
	where         string // host and app, for error messages (no credentials, no stream key)

	codec       media.Codec
	builder     *unitBuilder
	readTimeout time.Duration

	pending []media.AccessUnit // filled by the Reader callback, drained by Read
	bad     int                // undecodable media messages in a row
	cbErr   error              // error raised inside a Reader callback
	err     error              // sticky: once Read failed, it keeps failing

	closed    atomic.Bool
	closeOnce sync.Once
	stopCtx   func() bool // stops the ctx → Close hook
}

func openRTMP(ctx context.Context, rawURL string, opt Options) (Stream, error) {
	tgt, err := splitRTMPURL(rawURL)
	if err != nil {
		return nil, err
	}
	where := tgt.URL.Scheme + "://" + tgt.URL.Host + "/" + tgt.App

	connectCtx, cancel := context.WithTimeout(ctx, opt.ConnectTimeout)
	defer cancel()
	deadline, _ := connectCtx.Deadline()

	dial := opt.dialContext()
	var coalesced *coalescingConn
	if opt.CoalesceReads > 0 {
		inner := coalescing(dial, opt.CoalesceReads)
		dial = func(ctx context.Context, network, address string) (net.Conn, error) {
			c, err := inner(ctx, network, address)
			if err == nil {
				coalesced = c.(*coalescingConn)
			}
			return c, err
		}
	}
	// Every connection (gortmplib dials again to retry authentication) goes through a tap,
	// above TLS for rtmps, so the stream can take it over after track discovery.
	var tap *rtmpTap
	client := &gortmplib.Client{URL: tgt.URL, TLSConfig: opt.TLSConfig}
	client.DialTLSContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if tgt.URL.Scheme == "rtmps" {
			if c, err = tlsClient(ctx, c, address, opt.TLSConfig); err != nil {
				return nil, err
			}
		}
		tap = newRTMPTap(c)
		return tap, nil
	}
	if err := client.Initialize(connectCtx); err != nil {
		kind := failRejected // refused, unreachable, handshake or connect rejected
		switch {
		case ctx.Err() != nil:
			kind = failCanceled
		case connectCtx.Err() != nil:
			kind = failTimeout
		}
		return nil, openFailure(ctx, "rtmp", where, kind, err, opt.ConnectTimeout)
	}

	conn := client.NetConn()
	s := &rtmpStream{
		conn:        conn,
		client:      client,
		tap:         tap,
		ctx:         ctx,
		where:       where,
		readTimeout: opt.ReadTimeout,
	}
	setupMessages := tap.messages // what gortmplib read to connect and play
	s.stopCtx = context.AfterFunc(ctx, func() { conn.Close() })
	s.gc = &guardedConn{client: client, deadline: deadline, stream: s}

	if err := s.discover(); err != nil {
		err = s.openError(err, opt.ConnectTimeout) // before Close: it is not a closed stream
		s.Close()
		return nil, err
	}
	// gortmplib's reader replays the messages it read during discovery; then the stream reads
	// the connection itself.
	s.replay = s.gc.reads
	s.startDirect(setupMessages + s.gc.reads)
	if coalesced != nil {
		coalesced.start()
	}
	return s, nil
}

// discover reads the tracks, picks the video track and registers callbacks for every track
// (gortmplib calls a nil function for a track without one).
func (s *rtmpStream) discover() error {
	s.reader = &gortmplib.Reader{Conn: s.gc}
	if err := s.reader.Initialize(); err != nil {
		return err
	}

	var video *gortmplib.Track
	var unsupported []string
	for _, t := range s.reader.Tracks() {
		if !t.Codec.IsVideo() {
			continue
		}
		switch t.Codec.(type) {
		case *codecs.H264, *codecs.H265, *codecs.AV1:
			if video == nil {
				video = t
			}
		default:
			unsupported = append(unsupported, codecName(t.Codec))
		}
	}

	for _, t := range s.reader.Tracks() {
		if t == video {
			continue
		}
		if err := registerDiscard(s.reader, t); err != nil {
			return err
		}
	}

	if video == nil {
		if len(unsupported) > 0 {
			return fmt.Errorf("%w: %w: %s", ErrNoVideo, errNoVideoCodecs, strings.Join(unsupported, ", "))
		}
		return fmt.Errorf("%w: audio only", ErrNoVideo)
	}

	switch c := video.Codec.(type) {
	case *codecs.H264:
		s.codec = media.CodecH264
		s.builder = newUnitBuilder(s.codec)
		s.builder.setParam(h264NALSPS, c.SPS)
		s.builder.setParam(h264NALPPS, c.PPS)
		s.reader.OnDataH264(video, s.onH26x)
	case *codecs.H265:
		s.codec = media.CodecH265
		s.builder = newUnitBuilder(s.codec)
		s.builder.setParam(h265NALVPS, c.VPS)
		s.builder.setParam(h265NALSPS, c.SPS)
		s.builder.setParam(h265NALPPS, c.PPS)
		s.reader.OnDataH265(video, s.onH26x)
	case *codecs.AV1:
		s.codec = media.CodecAV1
		s.builder = newUnitBuilder(s.codec)
		s.reader.OnDataAV1(video, func(pts time.Duration, tu [][]byte) {
			au, ok := s.builder.av1(tu)
			s.deliver(au, ok, pts, pts)
		})
	}
	return nil
}

func (s *rtmpStream) onH26x(pts, dts time.Duration, nalus [][]byte) {
	au, ok := s.builder.h26x(nalus)
	s.deliver(au, ok, pts, dts)
}

func (s *rtmpStream) deliver(au media.AccessUnit, ok bool, pts, dts time.Duration) {
	if !ok {
		return
	}
	if n := au.Size(); n > MaxUnitSize {
		s.cbErr = fmt.Errorf("%w: %d bytes (limit %d)", errUnitTooLarge, n, MaxUnitSize)
		return
	}
	au.PTS, au.DTS = pts, dts
	au.Received = time.Now()
	if au.Keyframe {
		// Whether the consumer needs keyframes only can change at a keyframe (a longer GOP,
		// a recovery point): the pictures after this one come whole until the consumer, having
		// seen it, says so again (KeyframesOnly). Replayed keyframes included.
		s.keyframesOnly.Store(false)
	}
	s.pending = append(s.pending, au)
}

// onSequenceStart takes parameter sets from an enhanced-RTMP sequence start that arrives
// after track discovery (gortmplib's Reader does not pass those to the data callback).
func (s *rtmpStream) onSequenceStart(m *message.VideoExSequenceStart) {
	b := s.builder
	if b == nil {
		return // still discovering: the track's configuration already holds them
	}
	switch {
	case b.codec == media.CodecH264 && m.FourCC == message.FourCCAVC && m.AVCConfig != nil:
		for _, p := range m.AVCConfig.SequenceParameterSets {
			b.setParam(h264NALSPS, p.NALUnit)
		}
		for _, p := range m.AVCConfig.PictureParameterSets {
			b.setParam(h264NALPPS, p.NALUnit)
		}
	case b.codec == media.CodecH265 && m.FourCC == message.FourCCHEVC && m.HEVCConfig != nil:
		for _, arr := range m.HEVCConfig.NaluArrays {
			for _, n := range arr.Nalus {
				switch typ := nalType(media.CodecH265, n.NALUnit); typ {
				case h265NALVPS, h265NALSPS, h265NALPPS:
					b.setParam(typ, n.NALUnit)
				}
			}
		}
	}
}

// Codec returns the video codec of the stream.
func (s *rtmpStream) Codec() media.Codec { return s.codec }

func (s *rtmpStream) setReadTimeout(d time.Duration) { s.readTimeout = d }

// Read returns the next video access unit; see Stream.
func (s *rtmpStream) Read() (media.AccessUnit, error) {
	if s.err != nil {
		return media.AccessUnit{}, s.err
	}
	if s.closed.Load() {
		s.err = ErrClosed
		return media.AccessUnit{}, s.err
	}
	s.gc.deadline = time.Now().Add(s.readTimeout)
	if s.direct != nil {
		// Both directions: reading may write acknowledgements and ping responses.
		if err := s.conn.SetDeadline(s.gc.deadline); err != nil {
			s.err = s.readError(err)
			return media.AccessUnit{}, s.err
		}
	}
	for {
		if len(s.pending) > 0 {
			au := s.pending[0]
			s.pending[0] = media.AccessUnit{}
			s.pending = s.pending[1:]
			return au, nil
		}
		err := s.readNext()
		if err == nil && s.cbErr != nil {
			err = s.cbErr
		}
		switch {
		case err == nil:
			s.bad = 0
		case s.gc.err == nil && s.cbErr == nil && s.bad < maxBadMessages:
			// A media message that was read whole but does not decode (a publisher looping
			// a file cut short sends a truncated packet): skip it, the stream goes on. The
			// picture it held is missing, which the decoder's chain checks see.
			s.bad++
		default:
			s.err = s.readError(err)
			return media.AccessUnit{}, s.err
		}
	}
}

// readNext reads one message, through gortmplib's reader or directly.
func (s *rtmpStream) readNext() error {
	if s.direct == nil {
		return s.reader.Read()
	}
	if s.replay > 0 {
		s.replay-- // from gortmplib's record: the connection is not read
		return s.reader.Read()
	}
	if s.reader != nil {
		s.releaseSetup()
	}
	return s.readDirect()
}

// releaseSetup drops gortmplib's client and reader once the direct path has replayed
// everything they read: they keep the record of track discovery and the last message of
// every chunk stream they read, a few hundred KiB per stream for the stream's whole life.
// Only the reading goroutine uses them; Close closes conn.
func (s *rtmpStream) releaseSetup() {
	s.reader, s.client, s.gc.client = nil, nil, nil
}

// SetKeyframesOnly implements KeyframesOnly (on the direct path; gortmplib's reader always
// hands out whole units).
func (s *rtmpStream) SetKeyframesOnly(on bool) { s.keyframesOnly.Store(on) }

// maxBadMessages is how many undecodable media messages in a row end a session.
const maxBadMessages = 50

// Close closes the connection; a pending Read returns ErrClosed. Idempotent.
func (s *rtmpStream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.stopCtx != nil {
			s.stopCtx()
		}
		s.conn.Close()
	})
	return nil
}

// openError maps a track discovery failure to the package's errors.
func (s *rtmpStream) openError(err error, connectTimeout time.Duration) error {
	kind := s.classify(err)
	if kind == failNoVideo && !errors.Is(err, ErrNoVideo) {
		err = fmt.Errorf("%w: %w", ErrNoVideo, err)
	}
	return openFailure(s.ctx, "rtmp", s.where, kind, err, connectTimeout)
}

// readError maps a Read failure to the package's errors.
func (s *rtmpStream) readError(err error) error {
	return readFailure(s.ctx, "rtmp", s.where, s.classify(err), err, s.readTimeout)
}

// classify tells why gortmplib gave up.
func (s *rtmpStream) classify(err error) failure {
	switch {
	case s.closed.Load():
		return failClosed
	case s.ctx.Err() != nil:
		return failCanceled
	case errors.Is(err, ErrNoVideo):
		return failNoVideo
	case isTimeout(err):
		return failTimeout
	case errors.Is(err, errPlayRejected):
		return failRejected
	case errors.Is(err, errServerEnded), isConnGone(err):
		return failGone
	case strings.Contains(err.Error(), "unsupported video codec"):
		// gortmplib refuses legacy FLV codecs other than H.264/H.265 (Sorenson, VP6, ...).
		return failNoVideo
	}
	return failOther
}

// tlsClient runs the TLS handshake of an rtmps connection (the server name from the address
// when the configuration has none, as gortmplib and net/http do).
func tlsClient(ctx context.Context, c net.Conn, address string, cfg *tls.Config) (net.Conn, error) {
	if cfg == nil {
		cfg = &tls.Config{}
	} else {
		cfg = cfg.Clone()
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			host = address
		}
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isConnGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// guardedConn sits between gortmplib's Reader and Client: it sets the read deadline before
// every read, bounds payload sizes and watches server status messages.
type guardedConn struct {
	client   *gortmplib.Client
	deadline time.Time
	stream   *rtmpStream
	err      error // the last error Read returned: the connection's, or a refused message
	reads    int   // messages returned
}

func (g *guardedConn) BytesReceived() uint64           { return g.client.BytesReceived() }
func (g *guardedConn) BytesSent() uint64               { return g.client.BytesSent() }
func (g *guardedConn) Write(msg message.Message) error { return g.client.Write(msg) }

func (g *guardedConn) Read() (message.Message, error) {
	msg, err := g.read()
	g.err = err
	if err == nil {
		g.reads++
	}
	return msg, err
}

func (g *guardedConn) read() (message.Message, error) {
	// Both directions: reading may write acknowledgements and ping responses.
	if err := g.client.NetConn().SetDeadline(g.deadline); err != nil {
		return nil, err
	}
	msg, err := g.client.Read()
	if err != nil {
		return nil, err
	}
	if err := g.inspect(msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func (g *guardedConn) inspect(msg message.Message) error {
	var n int
	switch m := msg.(type) {
	case *message.CommandAMF0:
		return checkStatus(m)
	case *message.Video:
		n = len(m.AU)
	case *message.VideoExFramesX:
		n = len(m.Payload)
	case *message.VideoExCodedFrames:
		n = len(m.Payload)
	case *message.VideoExSequenceStart:
		g.stream.onSequenceStart(m)
	case *message.VideoExMultitrack:
		// Multitrack streams: only the wrapped payload size matters here.
		switch w := m.Wrapped.(type) {
		case *message.VideoExFramesX:
			n = len(w.Payload)
		case *message.VideoExCodedFrames:
			n = len(w.Payload)
		}
	}
	if n > MaxUnitSize {
		return fmt.Errorf("%w: %d bytes (limit %d)", errUnitTooLarge, n, MaxUnitSize)
	}
	return nil
}

// checkStatus turns the onStatus messages that end a play into errors.
func checkStatus(m *message.CommandAMF0) error {
	if m.Name != "onStatus" || len(m.Arguments) < 2 {
		return nil
	}
	var obj amf0.Object
	switch o := m.Arguments[1].(type) {
	case amf0.Object:
		obj = o
	case amf0.ECMAArray:
		obj = amf0.Object(o)
	default:
		return nil
	}
	code, _ := obj.GetString("code")
	level, _ := obj.GetString("level")
	switch code {
	case "NetStream.Play.StreamNotFound", "NetStream.Play.Failed", "NetStream.Play.BadName":
		return fmt.Errorf("%w: %s", errPlayRejected, code)
	case "NetStream.Play.UnpublishNotify", "NetStream.Play.Stop", "NetStream.Play.Complete":
		return fmt.Errorf("%w: %s", errServerEnded, code)
	}
	if level == "error" {
		return fmt.Errorf("%w: %s", errPlayRejected, code)
	}
	return nil
}

// registerDiscard gives a track we do not use a callback that drops its data.
func registerDiscard(r *gortmplib.Reader, t *gortmplib.Track) error {
	switch t.Codec.(type) {
	case *codecs.H264:
		r.OnDataH264(t, func(time.Duration, time.Duration, [][]byte) {})
	case *codecs.H265:
		r.OnDataH265(t, func(time.Duration, time.Duration, [][]byte) {})
	case *codecs.AV1:
		r.OnDataAV1(t, func(time.Duration, [][]byte) {})
	case *codecs.VP9:
		r.OnDataVP9(t, func(time.Duration, []byte) {})
	case *codecs.Opus:
		r.OnDataOpus(t, func(time.Duration, []byte) {})
	case *codecs.FLAC:
		r.OnDataFLAC(t, func(time.Duration, []byte) {})
	case *codecs.MPEG4Audio:
		r.OnDataMPEG4Audio(t, func(time.Duration, []byte) {})
	case *codecs.MPEG1Audio:
		r.OnDataMPEG1Audio(t, func(time.Duration, []byte) {})
	case *codecs.AC3:
		r.OnDataAC3(t, func(time.Duration, []byte) {})
	case *codecs.G711:
		r.OnDataG711(t, func(time.Duration, []byte) {})
	case *codecs.LPCM:
		r.OnDataLPCM(t, func(time.Duration, []byte) {})
	default:
		return fmt.Errorf("%w: track codec %s", ErrUnsupported, codecName(t.Codec))
	}
	return nil
}

func codecName(c codecs.Codec) string {
	switch c.(type) {
	case *codecs.H264:
		return "H.264"
	case *codecs.H265:
		return "H.265"
	case *codecs.AV1:
		return "AV1"
	case *codecs.VP9:
		return "VP9"
	case *codecs.Opus:
		return "Opus"
	case *codecs.FLAC:
		return "FLAC"
	case *codecs.MPEG4Audio:
		return "AAC"
	case *codecs.MPEG1Audio:
		return "MP3"
	case *codecs.AC3:
		return "AC-3"
	case *codecs.G711:
		return "G.711"
	case *codecs.LPCM:
		return "LPCM"
	}
	return fmt.Sprintf("%T", c)
}
