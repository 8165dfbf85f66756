// Package rtmpserver is a small multi-client RTMP relay: publishers push a stream to a path,
// any number of players pull it. It exists for tests and `make demo` (ffmpeg's `-listen 1`
// serves a single client, and a job needs a probe connection and then a capture connection).
//
// Behaviour:
//   - A path ("app/key" of the RTMP URL, e.g. "live/test") has one publisher at a time; a second
//     publisher is refused with NetStream.Publish.BadName.
//   - A player that asks for a path nobody publishes is refused at once with an error status
//     NetStream.Play.StreamNotFound (what clients report as "stream not found"). With
//     HoldUnpublished set the server behaves like nginx-rtmp instead: it accepts the play, sends
//     nothing, and attaches the player when a publisher starts.
//   - A player joining mid-stream gets the codec configuration (with the latest parameter sets)
//     first, then the cached group of pictures from the latest keyframe (so they start at
//     once, like SRS's gop_cache), then live media: never predicted frames without their
//     keyframe. Audio starts with that keyframe too.
//   - Each player has a bounded queue; a player that falls behind is disconnected instead of
//     slowing the publisher or other players.
//   - When the publisher leaves, each of its players gets what is already queued, a
//     NetStream.Play.UnpublishNotify status, and is disconnected.
//   - Connection count, handshake time and publisher silence are bounded.
package rtmpserver

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/livesnap/livesnap/internal/bitstream"
)

// Defaults used when the Server's fields are zero.
const (
	DefaultAddr             = "127.0.0.1:1935"
	DefaultMaxConns         = 256
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 10 * time.Second
	DefaultPlayerQueue      = 512
)

var (
	errStreamNotFound = errors.New("no publisher on this path")
	errPathBusy       = errors.New("path already has a publisher")
	errPlayerDropped  = errors.New("player dropped")
)

// Server is a multi-client RTMP relay. Set the fields, then call Start; Close stops it.
type Server struct {
	Addr   string       // listen address; "" → DefaultAddr; "127.0.0.1:0" picks a free port
	Logger *slog.Logger // nil → discard

	MaxConns         int           // simultaneous connections; 0 → DefaultMaxConns
	HandshakeTimeout time.Duration // TCP accept to accepted play/publish; 0 → DefaultHandshakeTimeout
	// IdleTimeout bounds publisher silence and a stuck write to a player; 0 → DefaultIdleTimeout.
	IdleTimeout time.Duration
	PlayerQueue int // media messages queued per player before it is dropped; 0 → DefaultPlayerQueue
	// HoldUnpublished makes a play for an unpublished path wait silently (nginx-rtmp style)
	// instead of being refused with NetStream.Play.StreamNotFound.
	HoldUnpublished bool

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	paths  map[string]*path
	closed bool
	wg     sync.WaitGroup
	log    *slog.Logger
}

// path is one stream name with its publisher state and players. Guarded by Server.mu.
type path struct {
	name       string
	publishing bool                 // a publisher holds the path (maybe still analysing)
	ready      bool                 // publisher's tracks are known
	tracks     []*gortmplib.Track   // publisher's tracks
	params     []codecs.Codec       // per track: codec with the latest parameter sets
	players    map[*player]struct{} // attached players
	waiting    map[*player]struct{} // HoldUnpublished players without publisher

	// The GOP cache: every packet since the last keyframe of the first video track, so a new
	// player starts at once with a decodable picture instead of waiting up to a whole GOP.
	firstVideo int
	gop        []packet
	gopBytes   int
}

// maxGOPCacheBytes bounds the GOP cache per path; a longer GOP is not cached.
const maxGOPCacheBytes = 32 << 20

// cache adds pkt to the path's GOP cache. Called with s.mu held.
func (p *path) cache(pkt packet) {
	if pkt.video && pkt.key && pkt.track == p.firstVideo {
		p.gop, p.gopBytes = p.gop[:0], 0
	} else if len(p.gop) == 0 {
		return // no keyframe yet: nothing decodable to cache
	}
	size := len(pkt.frame)
	for _, b := range pkt.au {
		size += len(b)
	}
	if p.gopBytes+size > maxGOPCacheBytes {
		p.gop, p.gopBytes = nil, 0
		return
	}
	p.gop = append(p.gop, pkt)
	p.gopBytes += size
}

// packet is one media message fanned out from a publisher to its players.
type packet struct {
	track int
	pts   time.Duration
	dts   time.Duration
	au    [][]byte // H.264/H.265 NAL units, AV1 OBUs
	frame []byte   // VP9 frame, audio
	key   bool     // video random access point
	video bool
}

type player struct {
	conn     net.Conn
	queue    chan packet             // closed by the publisher when it leaves
	attachCh chan []*gortmplib.Track // HoldUnpublished: tracks once a publisher is ready
	gone     chan struct{}           // closed when the player must stop
	once     sync.Once
}

func (pl *player) stop() {
	pl.once.Do(func() {
		close(pl.gone)
		pl.conn.Close()
	})
}

// Start listens and serves in the background; it returns once listening.
func (s *Server) Start() error {
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("rtmpserver: listen %s: %w", addr, err)
	}
	s.mu.Lock()
	if s.ln != nil || s.closed {
		s.mu.Unlock()
		ln.Close()
		return errors.New("rtmpserver: already started")
	}
	s.ln = ln
	s.conns = make(map[net.Conn]struct{})
	s.paths = make(map[string]*path)
	s.mu.Unlock()

	s.log.Info("rtmp server listening", "addr", ln.Addr().String())
	s.wg.Add(1)
	go s.acceptLoop(ln)
	return nil
}

// ListenAddr returns the address the server listens on (with the real port), or "" before
// Start.
func (s *Server) ListenAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Published reports whether a publisher is streaming on name ("app/key") and players can
// attach.
func (s *Server) Published(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.paths[name]
	return p != nil && p.ready
}

// Close closes the listener and every connection and waits for all goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	ln := s.ln
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	var err error
	if ln != nil {
		err = ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) maxConns() int       { return orInt(s.MaxConns, DefaultMaxConns) }
func (s *Server) playerQueue() int    { return orInt(s.PlayerQueue, DefaultPlayerQueue) }
func (s *Server) idle() time.Duration { return orDur(s.IdleTimeout, DefaultIdleTimeout) }
func (s *Server) handshake() time.Duration {
	return orDur(s.HandshakeTimeout, DefaultHandshakeTimeout)
}

func orInt(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

func orDur(v, d time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return d
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Warn("rtmp accept", "err", err)
			time.Sleep(50 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		if !s.track(c) {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.handleConn(c)
	}
}

// track registers a new connection; false when the server is closed or full.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if len(s.conns) >= s.maxConns() {
		s.log.Warn("rtmp connection refused: too many connections", "remote", c.RemoteAddr().String(), "max", s.maxConns())
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) handleConn(c net.Conn) {
	defer s.wg.Done()
	defer s.untrack(c)
	defer c.Close()

	remote := c.RemoteAddr().String()
	err := s.serveConn(c)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("rtmp conn closed", "remote", remote, "err", err)
	}
}

func (s *Server) serveConn(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(s.handshake())); err != nil {
		return err
	}
	sc := &gortmplib.ServerConn{RW: c}
	if err := sc.Initialize(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if err := sc.AcceptConn(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	name := pathName(sc.URL)
	if name == "" {
		return fmt.Errorf("empty stream path")
	}
	if sc.Publish {
		return s.publish(c, sc, name)
	}
	return s.play(c, sc, name)
}

// pathName is the stream's name: the URL path without slashes at either end ("live/test").
func pathName(u *url.URL) string {
	if u == nil {
		return ""
	}
	return strings.Trim(u.Path, "/")
}

func writeStatus(sc *gortmplib.ServerConn, level, code, desc string) error {
	return sc.Write(&message.CommandAMF0{
		ChunkStreamID:   5,
		MessageStreamID: 0x1000000,
		Name:            "onStatus",
		Arguments: []any{
			nil,
			amf0.Object{
				{Key: "level", Value: level},
				{Key: "code", Value: code},
				{Key: "description", Value: desc},
			},
		},
	})
}

// ---- publishers ----

func (s *Server) publish(c net.Conn, sc *gortmplib.ServerConn, name string) error {
	s.mu.Lock()
	p := s.paths[name]
	if p != nil && p.publishing {
		s.mu.Unlock()
		_ = writeStatus(sc, "error", "NetStream.Publish.BadName", "stream is already being published")
		return fmt.Errorf("publish %s: %w", name, errPathBusy)
	}
	if p == nil {
		p = newPath(name)
		s.paths[name] = p
	}
	p.publishing = true
	s.mu.Unlock()
	defer s.unpublish(p)

	// Track analysis reads about two seconds of media: bound it by the idle timeout.
	if err := c.SetDeadline(time.Now().Add(s.idle())); err != nil {
		return err
	}
	// The Reader accepts the publish itself only when it sees the ServerConn, not our wrapper.
	if err := sc.AcceptAction(); err != nil {
		return fmt.Errorf("publish %s: %w", name, err)
	}
	mc := &mediaConn{Conn: sc}
	r := &gortmplib.Reader{Conn: mc}
	if err := r.Initialize(); err != nil {
		return fmt.Errorf("publish %s: read tracks: %w", name, err)
	}
	tracks := r.Tracks()
	params := make([]codecs.Codec, len(tracks))
	for i, t := range tracks {
		if err := validateCodec(t.Codec); err != nil {
			return fmt.Errorf("publish %s: track %d: %w", name, i, err)
		}
		params[i] = t.Codec
		s.register(r, p, i, t)
	}

	s.mu.Lock()
	p.tracks, p.params, p.ready = tracks, params, true
	p.firstVideo, p.gop, p.gopBytes = -1, nil, 0
	for i, t := range tracks {
		if t.Codec.IsVideo() {
			p.firstVideo = i
			break
		}
	}
	for pl := range p.waiting {
		delete(p.waiting, pl)
		p.players[pl] = struct{}{}
		pl.attachCh <- p.playerTracks()
	}
	s.mu.Unlock()
	s.log.Info("rtmp publish started", "path", name, "remote", c.RemoteAddr().String(), "tracks", trackNames(tracks))
	bad := 0 // undecodable media messages in a row

	for {
		// Both directions: reading may write acknowledgements and ping responses.
		if err := c.SetDeadline(time.Now().Add(s.idle())); err != nil {
			return err
		}
		err := r.Read()
		switch {
		case err == nil:
			bad = 0
		case mc.err == nil && bad < maxBadMessages:
			// One media message that does not decode (a file cut short ends in a truncated
			// packet): drop it and keep the publisher, as nginx-rtmp and SRS do.
			bad++
			s.log.Debug("dropped an undecodable media message", "path", name, "err", err)
		default:
			return fmt.Errorf("publish %s: %w", name, err)
		}
	}
}

// maxBadMessages is how many undecodable media messages in a row end a publisher's session.
const maxBadMessages = 50

// mediaConn tells the Reader's errors apart: from the connection (mediaConn.err, fatal) or
// from decoding one message it read whole (the stream goes on).
type mediaConn struct {
	gortmplib.Conn
	err error
}

func (c *mediaConn) Read() (message.Message, error) {
	m, err := c.Conn.Read()
	if err != nil {
		c.err = err
	}
	return m, err
}

func newPath(name string) *path {
	return &path{name: name, players: make(map[*player]struct{}), waiting: make(map[*player]struct{})}
}

// unpublish frees the path: attached players get their queue closed (they flush it, then
// disconnect); waiting players keep waiting.
func (s *Server) unpublish(p *path) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wasReady := p.ready
	p.publishing, p.ready, p.tracks, p.params = false, false, nil, nil
	p.gop, p.gopBytes = nil, 0
	for pl := range p.players {
		delete(p.players, pl)
		close(pl.queue)
	}
	if len(p.waiting) == 0 && s.paths[p.name] == p {
		delete(s.paths, p.name)
	}
	if wasReady {
		s.log.Info("rtmp publish ended", "path", p.name)
	}
}

// h264RecoveryPoint reports an intra-refresh entry point (a recovery point SEI): such streams
// have no IDR after the first picture, so players start there instead.
func h264RecoveryPoint(au [][]byte) bool {
	for _, n := range au {
		if len(n) > 0 && n[0]&0x1f == 6 {
			if _, ok := bitstream.H264RecoveryPoint(n[1:]); ok {
				return true
			}
		}
	}
	return false
}

// register installs the data callback of one publisher track.
func (s *Server) register(r *gortmplib.Reader, p *path, i int, t *gortmplib.Track) {
	send := func(pkt packet) {
		pkt.track = i
		s.broadcast(p, pkt)
	}
	switch t.Codec.(type) {
	case *codecs.H264:
		r.OnDataH264(t, func(pts, dts time.Duration, au [][]byte) {
			send(packet{pts: pts, dts: dts, au: au, key: h264.IsRandomAccess(au) || h264RecoveryPoint(au), video: true})
		})
	case *codecs.H265:
		r.OnDataH265(t, func(pts, dts time.Duration, au [][]byte) {
			send(packet{pts: pts, dts: dts, au: au, key: h265.IsRandomAccess(au), video: true})
		})
	case *codecs.AV1:
		r.OnDataAV1(t, func(pts time.Duration, tu [][]byte) {
			send(packet{pts: pts, dts: pts, au: tu, key: av1.IsRandomAccess2(tu), video: true})
		})
	case *codecs.VP9:
		r.OnDataVP9(t, func(pts time.Duration, frame []byte) {
			send(packet{pts: pts, dts: pts, frame: frame, key: vp9IsKey(frame), video: true})
		})
	case *codecs.Opus:
		r.OnDataOpus(t, func(pts time.Duration, b []byte) { send(packet{pts: pts, frame: b}) })
	case *codecs.FLAC:
		r.OnDataFLAC(t, func(pts time.Duration, b []byte) { send(packet{pts: pts, frame: b}) })
	case *codecs.MPEG4Audio:
		r.OnDataMPEG4Audio(t, func(pts time.Duration, b []byte) { send(packet{pts: pts, frame: b}) })
	case *codecs.MPEG1Audio:
		r.OnDataMPEG1Audio(t, func(pts time.Duration, b []byte) { send(packet{pts: pts, frame: b}) })
	case *codecs.AC3:
		r.OnDataAC3(t, func(pts time.Duration, b []byte) { send(packet{pts: pts, frame: b}) })
	case *codecs.G711:
		r.OnDataG711(t, func(pts time.Duration, b []byte) { send(packet{pts: pts, frame: b}) })
	case *codecs.LPCM:
		r.OnDataLPCM(t, func(pts time.Duration, b []byte) {
			send(packet{pts: pts, frame: b})
		})
	}
}

// broadcast hands a packet to every attached player without ever blocking: a player whose
// queue is full is dropped.
func (s *Server) broadcast(p *path, pkt packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pkt.video && pkt.track < len(p.params) {
		p.params[pkt.track] = updateParams(p.params[pkt.track], pkt.au)
	}
	p.cache(pkt)
	for pl := range p.players {
		select {
		case pl.queue <- pkt:
		default:
			delete(p.players, pl)
			close(pl.queue)
			pl.stop()
			s.log.Warn("rtmp player dropped: queue full", "path", p.name, "remote", pl.conn.RemoteAddr().String())
		}
	}
}

// playerTracks returns fresh tracks for a new player's Writer, carrying the latest parameter
// sets. Called with s.mu held.
func (p *path) playerTracks() []*gortmplib.Track {
	out := make([]*gortmplib.Track, len(p.tracks))
	for i := range p.tracks {
		out[i] = &gortmplib.Track{Codec: p.params[i]}
	}
	return out
}

// updateParams returns the codec with in-band parameter sets of au applied (a new value when
// something changed: the old one may be in use by a player's Writer).
func updateParams(c codecs.Codec, au [][]byte) codecs.Codec {
	switch c := c.(type) {
	case *codecs.H264:
		n := *c
		for _, nalu := range au {
			if len(nalu) == 0 {
				continue
			}
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS:
				var sps h264.SPS
				if sps.Unmarshal(nalu) == nil {
					n.SPS = nalu
				}
			case h264.NALUTypePPS:
				n.PPS = nalu
			}
		}
		if string(n.SPS) != string(c.SPS) || string(n.PPS) != string(c.PPS) {
			return &n
		}
	case *codecs.H265:
		n := *c
		for _, nalu := range au {
			if len(nalu) == 0 {
				continue
			}
			switch h265.NALUType((nalu[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				n.VPS = nalu
			case h265.NALUType_SPS_NUT:
				var sps h265.SPS
				if sps.Unmarshal(nalu) == nil {
					n.SPS = nalu
				}
			case h265.NALUType_PPS_NUT:
				n.PPS = nalu
			}
		}
		if string(n.VPS) != string(c.VPS) || string(n.SPS) != string(c.SPS) || string(n.PPS) != string(c.PPS) {
			return &n
		}
	}
	return c
}

// validateCodec rejects parameter sets that gortmplib's Writer could not re-encode for players.
func validateCodec(c codecs.Codec) error {
	switch c := c.(type) {
	case *codecs.H264:
		var sps h264.SPS
		if err := sps.Unmarshal(c.SPS); err != nil {
			return fmt.Errorf("invalid H.264 SPS: %w", err)
		}
	case *codecs.H265:
		var sps h265.SPS
		if err := sps.Unmarshal(c.SPS); err != nil {
			return fmt.Errorf("invalid H.265 SPS: %w", err)
		}
	}
	return nil
}

// vp9IsKey reads frame_type from a VP9 uncompressed frame header.
func vp9IsKey(f []byte) bool {
	if len(f) == 0 || f[0]>>6 != 0b10 {
		return false
	}
	profile := (f[0]>>5)&1 | ((f[0]>>4)&1)<<1
	shift := 3
	if profile == 3 {
		shift = 2 // reserved_zero bit
	}
	showExisting := (f[0] >> shift) & 1
	frameType := (f[0] >> (shift - 1)) & 1
	return showExisting == 0 && frameType == 0
}

func trackNames(ts []*gortmplib.Track) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = strings.TrimPrefix(fmt.Sprintf("%T", t.Codec), "*codecs.")
	}
	return strings.Join(names, ",")
}

// ---- players ----

func (s *Server) play(c net.Conn, sc *gortmplib.ServerConn, name string) error {
	pl := &player{
		conn:     c,
		queue:    make(chan packet, s.playerQueue()),
		attachCh: make(chan []*gortmplib.Track, 1),
		gone:     make(chan struct{}),
	}

	s.mu.Lock()
	p := s.paths[name]
	var tracks []*gortmplib.Track
	switch {
	case p != nil && p.ready:
		tracks = p.playerTracks()
		// Start from the cached GOP: its first packet is a keyframe.
		pl.queue = make(chan packet, s.playerQueue()+len(p.gop))
		for _, pkt := range p.gop {
			pl.queue <- pkt
		}
		p.players[pl] = struct{}{}
	case !s.HoldUnpublished:
		s.mu.Unlock()
		_ = writeStatus(sc, "error", "NetStream.Play.StreamNotFound", "no publisher on "+name)
		return fmt.Errorf("play %s: %w", name, errStreamNotFound)
	default:
		if p == nil {
			p = newPath(name)
			s.paths[name] = p
		}
		p.waiting[pl] = struct{}{}
	}
	s.mu.Unlock()
	defer s.leave(p, pl)

	if err := c.SetDeadline(time.Time{}); err != nil {
		return err
	}
	// Players send nothing we need (acknowledgements, buffer length): read and discard, and
	// stop the player when its side closes.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_, _ = io.Copy(io.Discard, c)
		pl.stop()
	}()

	if tracks == nil {
		if err := c.SetWriteDeadline(time.Now().Add(s.idle())); err != nil {
			return err
		}
		if err := sc.AcceptAction(); err != nil {
			return err
		}
		select {
		case tracks = <-pl.attachCh:
		case <-pl.gone:
			return errPlayerDropped
		}
	}
	return s.runPlayer(pl, sc, name, tracks)
}

// leave detaches a player from its path and forgets the path when nothing uses it.
func (s *Server) leave(p *path, pl *player) {
	pl.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(p.waiting, pl)
	if _, ok := p.players[pl]; ok {
		delete(p.players, pl)
		close(pl.queue)
	}
	if !p.publishing && len(p.waiting) == 0 && len(p.players) == 0 && s.paths[p.name] == p {
		delete(s.paths, p.name)
	}
}

func (s *Server) runPlayer(pl *player, sc *gortmplib.ServerConn, name string, tracks []*gortmplib.Track) error {
	c := pl.conn
	if err := c.SetWriteDeadline(time.Now().Add(s.idle())); err != nil {
		return err
	}
	w := &gortmplib.Writer{Conn: sc, Tracks: tracks}
	if err := initWriter(w); err != nil {
		return fmt.Errorf("play %s: %w", name, err)
	}
	s.log.Info("rtmp play started", "path", name, "remote", c.RemoteAddr().String())

	first := -1 // first video track: playback starts at its next keyframe
	for i, t := range tracks {
		if t.Codec.IsVideo() {
			first = i
			break
		}
	}
	started := first < 0

	for {
		select {
		case pkt, ok := <-pl.queue:
			if !ok {
				_ = c.SetWriteDeadline(time.Now().Add(s.idle()))
				_ = writeStatus(sc, "status", "NetStream.Play.UnpublishNotify", name+" is now unpublished")
				return nil
			}
			if !started {
				if pkt.track != first || !pkt.key {
					continue
				}
				started = true
			}
			if err := c.SetWriteDeadline(time.Now().Add(s.idle())); err != nil {
				return err
			}
			if err := writePacket(w, tracks[pkt.track], pkt); err != nil {
				return fmt.Errorf("play %s: %w", name, err)
			}
		case <-pl.gone:
			return errPlayerDropped
		}
	}
}

// initWriter runs Writer.Initialize, turning a panic on odd parameter sets into an error.
func initWriter(w *gortmplib.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write codec configuration: %v", r)
		}
	}()
	return w.Initialize()
}

func writePacket(w *gortmplib.Writer, t *gortmplib.Track, p packet) error {
	switch t.Codec.(type) {
	case *codecs.H264:
		return w.WriteH264(t, p.pts, p.dts, p.au)
	case *codecs.H265:
		return w.WriteH265(t, p.pts, p.dts, p.au)
	case *codecs.AV1:
		return w.WriteAV1(t, p.pts, p.au)
	case *codecs.VP9:
		return w.WriteVP9(t, p.pts, p.frame)
	case *codecs.Opus:
		return w.WriteOpus(t, p.pts, p.frame)
	case *codecs.FLAC:
		return w.WriteFLAC(t, p.pts, p.frame)
	case *codecs.MPEG4Audio:
		return w.WriteMPEG4Audio(t, p.pts, p.frame)
	case *codecs.MPEG1Audio:
		return w.WriteMPEG1Audio(t, p.pts, p.frame)
	case *codecs.AC3:
		return w.WriteAC3(t, p.pts, p.frame)
	case *codecs.G711:
		return w.WriteG711(t, p.pts, p.frame)
	case *codecs.LPCM:
		return w.WriteLPCM(t, p.pts, p.frame)
	}
	return nil
}
