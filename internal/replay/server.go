package replay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/livesnap/livesnap/internal/media"
)

// Defaults used when the Server's fields are zero.
const (
	DefaultApp          = "live"
	DefaultMaxConns     = 4096
	DefaultWriteTimeout = 10 * time.Second
	handshakeTimeout    = 10 * time.Second
	// MaxStreams bounds Server.Streams.
	MaxStreams = 100000
)

// Server serves Streams live streams rtmp://<addr>/<app>/s0 ... s<Streams-1>, all playing
// the same clip in a loop.
//
// Each stream runs on its own virtual live clock, whether anyone plays it or not: stream i
// is at position (now - epoch_i) of the endless loop, and its epochs are spread over the loop
// (golden-ratio steps) so that the streams' keyframes do not all arrive at the same instant.
// A player joins live: it starts at the stream's next keyframe (no burst of old pictures) and
// then gets every sample when it is due in real time, with timestamps (in ms from the
// stream's epoch) that keep increasing across loops. A player that cannot keep up (a write
// blocks for WriteTimeout) is disconnected, like a real server drops a slow client.
// Publishing is refused.
type Server struct {
	Addr         string        // listen address; "127.0.0.1:0" picks a free port
	Clip         *Clip         // what every stream plays
	Streams      int           // number of streams (1..MaxStreams)
	App          string        // RTMP app; "" → DefaultApp
	MaxConns     int           // simultaneous connections; 0 → DefaultMaxConns
	WriteTimeout time.Duration // 0 → DefaultWriteTimeout
	Logger       *slog.Logger  // nil → discard

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	start  time.Time
	log    *slog.Logger
	track  *gortmplib.Track
	keys   []int // indexes of the clip's keyframes
}

// Start validates the settings, listens and serves in the background.
func (s *Server) Start() error {
	if s.Clip == nil || len(s.Clip.Samples) == 0 {
		return errors.New("replay: no clip")
	}
	if s.Streams < 1 || s.Streams > MaxStreams {
		return fmt.Errorf("replay: streams must be from 1 to %d", MaxStreams)
	}
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	switch s.Clip.Codec {
	case media.CodecH264:
		s.track = &gortmplib.Track{Codec: &codecs.H264{SPS: s.Clip.SPS, PPS: s.Clip.PPS}}
	case media.CodecH265:
		s.track = &gortmplib.Track{Codec: &codecs.H265{VPS: s.Clip.VPS, SPS: s.Clip.SPS, PPS: s.Clip.PPS}}
	default:
		return fmt.Errorf("replay: codec %v not supported", s.Clip.Codec)
	}
	s.keys = s.Clip.Keyframes()
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("replay: listen %s: %w", s.Addr, err)
	}
	s.mu.Lock()
	s.ln, s.conns, s.start = ln, make(map[net.Conn]struct{}), time.Now()
	s.mu.Unlock()
	s.wg.Add(1)
	go s.acceptLoop()
	return nil
}

// ListenAddr is the address the server listens on.
func (s *Server) ListenAddr() string { return s.ln.Addr().String() }

// URL returns the play URL of stream i.
func (s *Server) URL(i int) string {
	return fmt.Sprintf("rtmp://%s/%s/s%d", s.ListenAddr(), s.app(), i)
}

// Close stops listening, disconnects every player and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed || s.ln == nil {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Server) app() string {
	if s.App == "" {
		return DefaultApp
	}
	return s.App
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		s.mu.Lock()
		limit := s.MaxConns
		if limit <= 0 {
			limit = DefaultMaxConns
		}
		if s.closed || len(s.conns) >= limit {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			err := s.serve(c)
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("replay: player gone", "remote", c.RemoteAddr().String(), "err", err)
			}
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// streamIndex parses "<app>/s<i>" into i.
func (s *Server) streamIndex(path string) (int, error) {
	rest, ok := strings.CutPrefix(strings.Trim(path, "/"), s.app()+"/s")
	if !ok || rest == "" || len(rest) > 6 {
		return 0, fmt.Errorf("no stream %q", path)
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= s.Streams || strconv.Itoa(i) != rest {
		return 0, fmt.Errorf("no stream %q", path)
	}
	return i, nil
}

// epoch is when stream i's loop position was zero.
func (s *Server) epoch(i int) time.Time {
	_, frac := math.Modf(float64(i) * (math.Sqrt(5) - 1) / 2)
	return s.start.Add(-time.Duration(frac * float64(s.Clip.Duration)))
}

func (s *Server) serve(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return err
	}
	sc := &gortmplib.ServerConn{RW: c}
	if err := sc.Initialize(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if err := sc.AcceptConn(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if sc.Publish {
		return errors.New("publishing is not accepted")
	}
	i, err := s.streamIndex(sc.URL.Path)
	if err != nil {
		_ = sc.RejectAction()
		return err
	}
	w := &gortmplib.Writer{Conn: sc, Tracks: []*gortmplib.Track{s.track}}
	if err := w.Initialize(); err != nil {
		return fmt.Errorf("play: %w", err)
	}
	// Players send only acknowledgements and the like: read and discard them, so a player
	// that hangs up is noticed.
	gone := make(chan struct{})
	go func() {
		_ = c.SetReadDeadline(time.Time{})
		_, _ = io.Copy(io.Discard, c)
		close(gone)
	}()
	return s.play(c, sc, i, gone)
}

// play sends stream i from its next keyframe on, in real time, until the player leaves.
func (s *Server) play(c net.Conn, sc *gortmplib.ServerConn, i int, gone <-chan struct{}) error {
	clip := s.Clip
	epoch := s.epoch(i)
	pos := time.Since(epoch)
	loop := int64(pos / clip.Duration)
	within := pos - time.Duration(loop)*clip.Duration
	next := -1
	for _, k := range s.keys {
		if clip.Samples[k].DTS >= within {
			next = k
			break
		}
	}
	if next < 0 { // past the last keyframe: the next loop's first
		next, loop = 0, loop+1
	}
	timeout := s.WriteTimeout
	if timeout <= 0 {
		timeout = DefaultWriteTimeout
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for j := next; ; j++ {
		if j == len(clip.Samples) {
			j, loop = 0, loop+1
		}
		smp := clip.Samples[j]
		base := time.Duration(loop) * clip.Duration
		if d := time.Until(epoch.Add(base + smp.DTS)); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-gone:
				return nil
			}
		}
		if err := c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		if err := sc.Write(s.message(smp, base)); err != nil {
			return err
		}
	}
}

// message wraps a sample's stored payload in an RTMP video message (enhanced RTMP for H.265).
func (s *Server) message(smp Sample, base time.Duration) message.Message {
	dts := base + smp.DTS
	if s.Clip.Codec == media.CodecH264 {
		return &message.Video{ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 0x1000000,
			Codec: message.CodecH264, IsKeyFrame: smp.Key, Type: message.VideoTypeAU, AU: smp.Payload,
			DTS: dts, PTSDelta: smp.PTS - smp.DTS}
	}
	if smp.PTS == smp.DTS {
		return &message.VideoExFramesX{ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 0x1000000,
			FourCC: message.FourCCHEVC, DTS: dts, Payload: smp.Payload}
	}
	return &message.VideoExCodedFrames{ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 0x1000000,
		FourCC: message.FourCCHEVC, DTS: dts, PTSDelta: smp.PTS - smp.DTS, Payload: smp.Payload}
}
