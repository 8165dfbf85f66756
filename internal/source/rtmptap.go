package source

import (
	"errors"
	"net"
)

// rtmpHandshakeLen is what a client reads in the plain RTMP handshake: S0, S1 and S2.
const rtmpHandshakeLen = 1 + 1536 + 1536

// tapBuffer is the tap's read buffer (at least one coalesced network read).
const tapBuffer = coalesceBuffer

// rtmpTap is the connection gortmplib's client reads through (above TLS, for rtmps). gortmplib
// does the handshake, connect, play and track discovery; meanwhile the tap parses every chunk
// that passes, so that afterwards the stream can take the connection over and read it with
// its own chunk parser (rtmpStream.direct), without gortmplib's per-chunk allocations.
//
// The takeover is exact because the tap never hands gortmplib a byte past the end of the chunk
// whose header it has parsed: when gortmplib has returned a message it holds no buffered
// bytes of the next one, and the tap's chunk stream state (chunk size, headers) is the
// connection's. takeover checks that the tap saw as many messages as gortmplib returned.
type rtmpTap struct {
	net.Conn
	p *chunkParser

	handshake int    // handshake bytes still to hand on unparsed
	pass      int    // bytes of the current chunk (header, then body) still to hand on
	hdr       int    // of which header bytes, handed on without parsing them again
	messages  int    // messages completed while passing bytes on
	direct    bool   // taken over: gortmplib must not read any more
	broken    error  // the tap could not parse what passed: no takeover, pass everything
	sawMulti  bool   // a multitrack video message passed (the direct path does not read those)
	window    uint32 // window acknowledgement size the server asked for
}

func newRTMPTap(c net.Conn) *rtmpTap {
	t := &rtmpTap{Conn: c, handshake: rtmpHandshakeLen}
	t.p = newChunkParser(c, tapBuffer)
	t.p.want = func(typ uint8, length uint32) (bool, error) {
		// While passing bytes on, only what steers the parser (and track checks) is kept.
		switch typ {
		case rtmpMsgSetChunkSize, rtmpMsgAbort, rtmpMsgWindowAckSize:
			return length <= rtmpMaxControlBody, nil
		}
		return false, nil
	}
	return t
}

// Read hands gortmplib the connection's bytes, never past the end of the current chunk.
func (t *rtmpTap) Read(b []byte) (int, error) {
	p := t.p
	if t.direct {
		return 0, net.ErrClosed // taken over; gortmplib must not read
	}
	if t.broken != nil || t.handshake > 0 {
		if p.r == p.w {
			if err := p.fill(); err != nil {
				return 0, err
			}
		}
		n := min(len(b), p.w-p.r)
		if t.handshake > 0 {
			n = min(n, t.handshake)
			t.handshake -= n
		}
		copy(b, p.buf[p.r:p.r+n])
		p.r += n
		return n, nil
	}
	if t.pass == 0 {
		hl, err := p.header()
		if err != nil {
			if isNetErr(err) {
				return 0, err
			}
			// Not a chunk stream the tap understands: stop parsing, let gortmplib judge.
			t.broken = err
			return t.Read(b)
		}
		t.hdr, t.pass = hl, hl+int(p.bodyLeft)
		if p.bodyLeft == 0 {
			t.complete(p.take(0))
		}
	}
	if p.r == p.w {
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	n := min(len(b), t.pass, p.w-p.r)
	if t.hdr > 0 {
		n = min(n, t.hdr)
		copy(b, p.buf[p.r:p.r+n])
		p.r += n
		p.consumed += uint64(n)
		t.hdr -= n
		t.pass -= n
		return n, nil
	}
	if cs := p.cur; cs.recv == 0 && cs.typ == rtmpMsgVideo && n > 0 {
		// Enhanced RTMP: IsExHeader with packet type Multitrack.
		if b0 := p.buf[p.r]; b0&0x80 != 0 && b0&0x0f == 6 {
			t.sawMulti = true
		}
	}
	copy(b, p.buf[p.r:p.r+n])
	t.pass -= n
	t.complete(p.take(n))
	return n, nil
}

func (t *rtmpTap) complete(m *rtmpMessage) {
	if m == nil {
		return
	}
	t.messages++
	if err := t.p.control(m); err != nil {
		t.broken = err
		return
	}
	if m.typ == rtmpMsgWindowAckSize && len(m.body) >= 4 {
		t.window = uint32(m.body[0])<<24 | uint32(m.body[1])<<16 | uint32(m.body[2])<<8 | uint32(m.body[3])
	}
}

// takeover stops handing bytes to gortmplib; it reports whether the tap's parser is exactly
// where gortmplib stopped (returned is how many messages gortmplib returned).
func (t *rtmpTap) takeover(returned int) bool {
	if t.broken != nil || t.handshake > 0 || t.pass != 0 || t.messages != returned || t.sawMulti {
		return false
	}
	t.direct = true
	return true
}

// errNotTakenOver puts a tap that was not taken over into plain pass-through.
var errNotTakenOver = errors.New("not taken over")

// transparent stops parsing: gortmplib reads on, through the tap's buffer.
func (t *rtmpTap) transparent() {
	if t.broken == nil {
		t.broken = errNotTakenOver
	}
}

func isNetErr(err error) bool {
	_, ok := err.(net.Error)
	return ok || isConnGone(err)
}
