package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// RTMP chunk stream parsing (RTMP 1.0 spec, section 5.3), for the direct read path (see
// rtmpTap). gortmplib's reader allocates every chunk's body and then the joined message; for
// hundreds of live streams that garbage costs more than the snapshots. This parser keeps one
// reusable buffer per chunk stream and lets its caller say, per message, whether the body is
// wanted at all (audio, metadata: not).

// RTMP message types this package looks at.
const (
	rtmpMsgSetChunkSize  = 1
	rtmpMsgAbort         = 2
	rtmpMsgAck           = 3
	rtmpMsgUserControl   = 4
	rtmpMsgWindowAckSize = 5
	rtmpMsgPeerBandwidth = 6
	rtmpMsgAudio         = 8
	rtmpMsgVideo         = 9
	rtmpMsgCommandAMF0   = 20
	rtmpMsgAggregate     = 22
)

// Parser bounds.
const (
	rtmpMaxChunkStreams = 64                    // distinct chunk stream IDs one connection may use
	rtmpMaxControlBody  = 64 << 10              // commands and protocol control messages
	rtmpBufferReused    = 64 << 10              // larger messages (keyframes) get a buffer of their own
	rtmpMaxHeld         = 2*MaxUnitSize + 1<<20 // all chunk streams' assembly buffers
)

var errChunkProtocol = errors.New("rtmp chunk stream")

// chunkStream is the header state and message assembly of one chunk stream ID.
type chunkStream struct {
	timestamp uint32 // of the current message
	delta     uint32 // last timestamp delta
	length    uint32
	typ       uint8
	streamID  uint32
	extended  bool // the last header carried an extended timestamp
	started   bool // a type 0 header was seen (types 1-3 need one)

	recv  uint32 // body bytes of the current message received so far
	keep  bool   // whether the current message's body is assembled
	body  []byte // assembly buffer, reused across messages up to rtmpBufferReused
	spare []byte // the reused buffer, while body is a large message's own
}

// rtmpMessage is one complete message. It and its body are only valid until the next call into
// the parser (the body is the chunk stream's reusable buffer); body is nil when not kept.
type rtmpMessage struct {
	chunkStreamID uint32
	typ           uint8
	timestamp     uint32 // milliseconds
	streamID      uint32
	length        uint32
	body          []byte
}

// chunkParser reads chunks from in. It is not safe for concurrent use.
type chunkParser struct {
	in        io.Reader
	buf       []byte
	r, w      int
	consumed  uint64 // bytes taken out of buf (handed on or parsed) since the parser began
	chunkSize uint32
	streams   map[uint32]*chunkStream
	held      int // bytes of assembly buffers currently allocated

	// want decides, when a message starts, whether its body is assembled; nil: always.
	want func(typ uint8, length uint32) (keep bool, err error)

	cur      *chunkStream // chunk stream of the chunk being read
	curID    uint32
	bodyLeft uint32 // body bytes of the current chunk not read yet

	msg rtmpMessage // the last message returned (valid until the next call)

	// afterChunk, when set, runs after every chunk read by next (acknowledgements are due by
	// bytes received, not by messages).
	afterChunk func() error
}

func newChunkParser(in io.Reader, bufSize int) *chunkParser {
	return &chunkParser{in: in, buf: make([]byte, bufSize), chunkSize: 128, streams: make(map[uint32]*chunkStream)}
}

// fill reads once more into buf (the unread bytes, at most a partial header while parsing,
// move to its start first).
func (p *chunkParser) fill() error {
	if p.r > 0 {
		p.w = copy(p.buf, p.buf[p.r:p.w])
		p.r = 0
	}
	n, err := p.in.Read(p.buf[p.w:])
	p.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// ensure makes n bytes available from p.r (n <= len(buf)).
func (p *chunkParser) ensure(n int) error {
	for p.w-p.r < n {
		if err := p.fill(); err != nil {
			if errors.Is(err, io.EOF) && p.w > p.r {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// header parses the next chunk header, which must be buffered from p.r on, without consuming
// it; it returns the header's length. The chunk's stream state is updated: a chunk that starts
// a message opens its assembly.
func (p *chunkParser) header() (int, error) {
	if err := p.ensure(1); err != nil {
		return 0, err
	}
	b0 := p.buf[p.r]
	format := b0 >> 6
	id := uint32(b0 & 0x3f)
	n := 1
	switch id {
	case 0:
		n = 2
	case 1:
		n = 3
	}
	mh := [4]int{11, 7, 3, 0}[format]
	if err := p.ensure(n + mh); err != nil {
		return 0, err
	}
	h := p.buf[p.r : p.r+n+mh]
	switch id {
	case 0:
		id = 64 + uint32(h[1])
	case 1:
		id = 64 + uint32(h[1]) + uint32(h[2])<<8
	}
	cs := p.streams[id]
	if cs == nil {
		if len(p.streams) >= rtmpMaxChunkStreams {
			return 0, fmt.Errorf("%w: more than %d chunk streams", errChunkProtocol, rtmpMaxChunkStreams)
		}
		cs = &chunkStream{}
		p.streams[id] = cs
	}
	m := h[n:]
	var ts uint32
	if format < 3 {
		ts = uint24(m)
	}
	// Type 3 chunks carry the extended timestamp field whenever the chunk stream's last type
	// 0-2 header did, for a new message and for a continuation alike.
	ext := cs.extended
	if format < 3 {
		ext = ts == 0xffffff
	}
	hl := n + mh
	if ext {
		if err := p.ensure(hl + 4); err != nil {
			return 0, err
		}
		ts = binary.BigEndian.Uint32(p.buf[p.r+hl:])
		hl += 4
	}

	if format < 3 && cs.recv != 0 {
		return 0, fmt.Errorf("%w: type %d chunk inside a message on chunk stream %d", errChunkProtocol, format, id)
	}
	newMessage := cs.recv == 0
	switch format {
	case 0:
		// A type 3 chunk that starts a message after a type 0 one takes the type 0
		// timestamp as its delta (RTMP 1.0, 5.3.1.2.4), as FFmpeg reads it.
		cs.timestamp, cs.delta = ts, ts
		cs.length, cs.typ = uint24(m[3:]), m[6]
		cs.streamID = binary.LittleEndian.Uint32(m[7:])
		cs.started, cs.extended = true, ext
	case 1, 2:
		if !cs.started {
			return 0, fmt.Errorf("%w: type %d chunk before a type 0 chunk on chunk stream %d", errChunkProtocol, format, id)
		}
		cs.timestamp += ts
		cs.delta = ts
		if format == 1 {
			cs.length, cs.typ = uint24(m[3:]), m[6]
		}
		cs.extended = ext
	case 3:
		if !cs.started {
			return 0, fmt.Errorf("%w: type 3 chunk before a type 0 chunk on chunk stream %d", errChunkProtocol, id)
		}
		if newMessage {
			if ext {
				cs.delta = ts // the extended field repeats the delta in full
			}
			cs.timestamp += cs.delta
		}
	}
	if newMessage {
		if err := p.open(cs); err != nil {
			return 0, err
		}
	}
	p.cur, p.curID = cs, id
	p.bodyLeft = min(cs.length-cs.recv, p.chunkSize)
	return hl, nil
}

// open starts assembling cs's new message.
func (p *chunkParser) open(cs *chunkStream) error {
	keep := true
	if p.want != nil {
		var err error
		if keep, err = p.want(cs.typ, cs.length); err != nil {
			return err
		}
	}
	cs.keep = keep
	if !keep {
		return nil
	}
	length := int(cs.length)
	switch {
	case length > rtmpBufferReused && cap(cs.body) <= rtmpBufferReused:
		// A large message (a keyframe) is assembled in a buffer of its own, which the caller
		// may keep (detach) instead of copying it; the reused buffer waits.
		cs.spare, cs.body = cs.body, nil
	case length <= rtmpBufferReused && cap(cs.body) > rtmpBufferReused:
		p.dropLarge(cs) // a large message's buffer nobody took
	}
	if cap(cs.body) < length {
		size := length
		if length <= rtmpBufferReused {
			// Grow the reused buffer as append does, so pictures that grow a little at a
			// time do not reallocate it picture after picture.
			size = min(rtmpBufferReused, max(length, 2*cap(cs.body)))
		}
		if p.held+size-cap(cs.body) > rtmpMaxHeld {
			return fmt.Errorf("%w: more than %d bytes of messages in assembly", errChunkProtocol, rtmpMaxHeld)
		}
		p.held += size - cap(cs.body)
		cs.body = make([]byte, 0, size)
	}
	cs.body = cs.body[:0]
	return nil
}

// dropLarge drops cs's large message buffer and takes the reused one back.
func (p *chunkParser) dropLarge(cs *chunkStream) {
	p.held -= cap(cs.body)
	cs.body, cs.spare = cs.spare, nil
}

// take consumes k buffered bytes of the current chunk's body into its message; it returns the
// message when they complete it.
func (p *chunkParser) take(k int) *rtmpMessage {
	cs := p.cur
	if cs.keep {
		cs.body = append(cs.body, p.buf[p.r:p.r+k]...)
	}
	p.r += k
	p.consumed += uint64(k)
	cs.recv += uint32(k)
	p.bodyLeft -= uint32(k)
	if cs.recv < cs.length {
		return nil
	}
	cs.recv = 0
	p.msg = rtmpMessage{chunkStreamID: p.curID, typ: cs.typ, timestamp: cs.timestamp, streamID: cs.streamID, length: cs.length}
	if cs.keep {
		p.msg.body = cs.body
	}
	return &p.msg
}

// release drops cs's assembly buffer if it is a large message's own (a keyframe's), after the
// message was used.
func (p *chunkParser) release(id uint32) {
	if cs := p.streams[id]; cs != nil && cap(cs.body) > rtmpBufferReused {
		p.dropLarge(cs)
	}
}

// detach hands cs's assembly buffer, which holds the message just returned, to the caller
// for good when it is a large message's own (release would drop it anyway); it reports
// whether it did.
func (p *chunkParser) detach(id uint32) bool {
	if cs := p.streams[id]; cs != nil && cap(cs.body) > rtmpBufferReused {
		p.dropLarge(cs)
		return true
	}
	return false
}

// control applies the protocol control messages that change how chunks are read.
func (p *chunkParser) control(m *rtmpMessage) error {
	switch m.typ {
	case rtmpMsgSetChunkSize:
		if len(m.body) < 4 {
			return fmt.Errorf("%w: short set chunk size", errChunkProtocol)
		}
		// Any size from 1 up: nothing is allocated by chunk size.
		v := binary.BigEndian.Uint32(m.body) & 0x7fffffff
		if v == 0 {
			return fmt.Errorf("%w: chunk size %d", errChunkProtocol, v)
		}
		p.chunkSize = v
	case rtmpMsgAbort:
		if len(m.body) < 4 {
			return fmt.Errorf("%w: short abort", errChunkProtocol)
		}
		if cs := p.streams[binary.BigEndian.Uint32(m.body)]; cs != nil {
			cs.recv = 0
			if cs.body != nil {
				cs.body = cs.body[:0]
			}
		}
	}
	return nil
}

// next reads until a message is complete and returns it (protocol control applied).
func (p *chunkParser) next() (*rtmpMessage, error) {
	for {
		if p.bodyLeft == 0 {
			hl, err := p.header()
			if err != nil {
				return nil, err
			}
			p.r += hl
			p.consumed += uint64(hl)
			if p.bodyLeft == 0 { // an empty message
				if m := p.take(0); m != nil {
					return m, p.control(m)
				}
				continue
			}
		}
		if p.r == p.w {
			if err := p.fill(); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
		}
		m := p.take(min(int(p.bodyLeft), p.w-p.r))
		if p.bodyLeft == 0 && p.afterChunk != nil {
			if err := p.afterChunk(); err != nil {
				return nil, err
			}
		}
		if m != nil {
			return m, p.control(m)
		}
	}
}

func uint24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }
