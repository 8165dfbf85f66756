package source

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/bits"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/livesnap/livesnap/internal/media"
)

// readAll parses every message of a chunk stream; want, when set, decides which bodies are kept.
func readAll(t *testing.T, r io.Reader, chunkSize uint32) []rtmpMessage {
	t.Helper()
	p := newChunkParser(r, 4096)
	p.chunkSize = chunkSize
	var out []rtmpMessage
	for i := 0; i < 100000; i++ {
		m, err := p.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("message %d: %v", len(out), err)
		}
		c := *m
		c.body = bytes.Clone(m.body)
		out = append(out, c)
	}
	t.Fatal("no end")
	return nil
}

// chunk builds one chunk: basic header, message header of the format, and body.
func chunk(format byte, csid byte, header []byte, body []byte) []byte {
	return append(append([]byte{format<<6 | csid}, header...), body...)
}

func be24(v uint32) []byte { return []byte{byte(v >> 16), byte(v >> 8), byte(v)} }

func header0(ts, length uint32, typ byte, msid uint32) []byte {
	h := append(be24(ts), be24(length)...)
	h = append(h, typ)
	return binary.LittleEndian.AppendUint32(h, msid)
}

// The two examples of the RTMP 1.0 specification, section 5.3.2.2.
func TestChunkParserSpecExamples(t *testing.T) {
	// Example 1: four 32-byte audio messages on one chunk stream, timestamps 1000, 1020,
	// 1040, 1060: a type 0 chunk, a type 2 chunk with delta 20, then type 3 chunks.
	var s []byte
	bodies := make([][]byte, 4)
	for i := range bodies {
		bodies[i] = bytes.Repeat([]byte{byte(i + 1)}, 32)
	}
	s = append(s, chunk(0, 3, header0(1000, 32, 8, 12345), bodies[0])...)
	s = append(s, chunk(2, 3, be24(20), bodies[1])...)
	s = append(s, chunk(3, 3, nil, bodies[2])...)
	s = append(s, chunk(3, 3, nil, bodies[3])...)
	// Example 2: one 307-byte video message at chunk size 128: a type 0 chunk, then two
	// type 3 chunks of the same message.
	video := make([]byte, 307)
	for i := range video {
		video[i] = byte(i)
	}
	s = append(s, chunk(0, 4, header0(1000, 307, 9, 12346), video[:128])...)
	s = append(s, chunk(3, 4, nil, video[128:256])...)
	s = append(s, chunk(3, 4, nil, video[256:])...)

	got := readAll(t, bytes.NewReader(s), 128)
	if len(got) != 5 {
		t.Fatalf("%d messages, want 5", len(got))
	}
	for i := 0; i < 4; i++ {
		m := got[i]
		if m.typ != 8 || m.streamID != 12345 || m.timestamp != uint32(1000+20*i) || !bytes.Equal(m.body, bodies[i]) {
			t.Errorf("audio message %d: type %d stream %d ts %d body %d bytes", i, m.typ, m.streamID, m.timestamp, len(m.body))
		}
	}
	if m := got[4]; m.typ != 9 || m.streamID != 12346 || m.timestamp != 1000 || !bytes.Equal(m.body, video) {
		t.Errorf("video message: type %d stream %d ts %d body %d bytes", m.typ, m.streamID, m.timestamp, len(m.body))
	}
}

// A type 3 chunk that starts a message repeats the last delta: after a type 0 chunk that is
// the type 0 timestamp (specification 5.3.1.2.4); with an extended timestamp, the delta is
// the extended field it carries.
func TestChunkParserType3Deltas(t *testing.T) {
	var s []byte
	s = append(s, chunk(0, 3, header0(40, 1, 9, 1), []byte{1})...)
	s = append(s, chunk(3, 3, nil, []byte{2})...) // 40 + 40
	h := append(be24(0xffffff), append(be24(1), 9)...)
	h = binary.LittleEndian.AppendUint32(h, 1)
	s = append(s, chunk(0, 4, binary.BigEndian.AppendUint32(h, 0x1000000), []byte{3})...)
	s = append(s, chunk(3, 4, binary.BigEndian.AppendUint32(nil, 0x1000000), []byte{4})...) // + 0x1000000
	s = append(s, chunk(0, 5, header0(100, 1, 9, 1), []byte{5})...)
	s = append(s, chunk(2, 5, be24(0xffffff), nil)...)
	s = append(s, binary.BigEndian.AppendUint32(nil, 0x2000000)...)
	s = append(s, 6)
	s = append(s, chunk(3, 5, binary.BigEndian.AppendUint32(nil, 0x2000000), []byte{7})...)
	got := readAll(t, bytes.NewReader(s), 128)
	want := []uint32{40, 80, 0x1000000, 0x2000000, 100, 100 + 0x2000000, 100 + 2*0x2000000}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].timestamp != w || got[i].body[0] != byte(i+1) {
			t.Errorf("message %d: timestamp %#x body %v, want %#x", i, got[i].timestamp, got[i].body, w)
		}
	}
}

// gortmplib's writer (an independent implementation: header compression with types 1-3,
// extended timestamps) at several chunk sizes, read back by the parser, a byte at a time too.
func TestChunkParserReadsGortmplibWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []uint32{1, 128, 4096, 65536} {
		var msgs []*rawmessage.Message
		ts := map[byte]time.Duration{}
		for i := 0; i < 60; i++ {
			csid := byte(2 + rng.IntN(6))
			n := rng.IntN(3000)
			if i%10 == 0 {
				n = 100000 + rng.IntN(100000)
			}
			if size == 1 {
				n = rng.IntN(300)
			}
			body := make([]byte, n)
			for j := range body {
				body[j] = byte(rng.Uint32())
			}
			step := time.Duration(rng.IntN(3)*40) * time.Millisecond
			if i == 30 {
				step = 0x1000000 * time.Millisecond // into extended timestamps
			}
			ts[csid] += step
			msgs = append(msgs, &rawmessage.Message{ChunkStreamID: csid, Timestamp: ts[csid],
				// One message stream per chunk stream, as servers send: gortmplib's writer, after a
				// type 0 chunk for a changed stream ID, may write a type 3 chunk meaning another
				// delta than the specification's.
				Type: []uint8{8, 9, 20, 18}[rng.IntN(4)], MessageStreamID: uint32(csid % 2), Body: body})
		}
		var buf bytes.Buffer
		w := rawmessage.NewWriter(&buf, bytecounter.NewWriter(io.Discard), false)
		w.SetChunkSize(size)
		for _, m := range msgs {
			if err := w.Write(m); err != nil {
				t.Fatal(err)
			}
		}
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(buf.Bytes())
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got := readAll(t, r, size)
			if len(got) != len(msgs) {
				t.Fatalf("chunk size %d: %d messages, want %d", size, len(got), len(msgs))
			}
			for i, m := range msgs {
				g := got[i]
				// gortmplib writes (and reads) the message stream ID big-endian, against the
				// specification (little-endian, as ffmpeg and the spec's examples have it).
				if uint32(g.chunkStreamID) != uint32(m.ChunkStreamID) || g.typ != m.Type || bits.ReverseBytes32(g.streamID) != m.MessageStreamID ||
					time.Duration(g.timestamp)*time.Millisecond != m.Timestamp || !bytes.Equal(g.body, m.Body) {
					t.Fatalf("chunk size %d, message %d: got cs %d type %d stream %d ts %d %d bytes; want cs %d type %d stream %d ts %v %d bytes",
						size, i, g.chunkStreamID, g.typ, g.streamID, g.timestamp, len(g.body),
						m.ChunkStreamID, m.Type, m.MessageStreamID, m.Timestamp, len(m.Body))
				}
			}
		}
	}
}

// Chunks of two messages interleave; Set Chunk Size and Abort take effect at once; a
// two- and a three-byte basic header reach chunk streams 64 and up.
func TestChunkParserInterleaveAbortAndChunkSize(t *testing.T) {
	a := bytes.Repeat([]byte{0xaa}, 200)
	b := bytes.Repeat([]byte{0xbb}, 10)
	var s []byte
	s = append(s, chunk(0, 4, header0(40, 200, 9, 1), a[:128])...)
	s = append(s, chunk(0, 5, header0(41, 10, 8, 1), b)...)        // another message, whole
	s = append(s, chunk(3, 4, nil, a[128:])...)                    // the rest of the first
	s = append(s, chunk(0, 6, header0(42, 300, 9, 1), a[:128])...) // started, then aborted
	s = append(s, chunk(0, 2, header0(0, 4, rtmpMsgAbort, 0), binary.BigEndian.AppendUint32(nil, 6))...)
	s = append(s, chunk(0, 2, header0(0, 4, rtmpMsgSetChunkSize, 0), binary.BigEndian.AppendUint32(nil, 1000))...)
	s = append(s, chunk(0, 6, header0(43, 200, 9, 1), a)...) // one chunk at the new size
	s = append(s, []byte{0 << 6, 10}...)                     // chunk stream 74, two-byte header
	s = append(s, header0(44, 2, 20, 1)...)
	s = append(s, 1, 2)
	s = append(s, []byte{0<<6 | 1, 0, 1}...) // chunk stream 64 + 0 + 256, three-byte header
	s = append(s, header0(45, 1, 20, 1)...)
	s = append(s, 3)

	got := readAll(t, bytes.NewReader(s), 128)
	type want struct {
		cs  uint32
		typ uint8
		ts  uint32
		n   int
	}
	wants := []want{{5, 8, 41, 10}, {4, 9, 40, 200}, {2, rtmpMsgAbort, 0, 4}, {2, rtmpMsgSetChunkSize, 0, 4}, {6, 9, 43, 200}, {74, 20, 44, 2}, {320, 20, 45, 1}}
	if len(got) != len(wants) {
		t.Fatalf("%d messages, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if g.chunkStreamID != w.cs || g.typ != w.typ || g.timestamp != w.ts || len(g.body) != w.n {
			t.Errorf("message %d: cs %d type %d ts %d %d bytes, want %+v", i, g.chunkStreamID, g.typ, g.timestamp, len(g.body), w)
		}
	}
}

func TestChunkParserRefuses(t *testing.T) {
	many := []byte{}
	for i := 0; i <= rtmpMaxChunkStreams; i++ {
		many = append(many, 0<<6, byte(i))
		many = append(many, header0(0, 1, 20, 0)...)
		many = append(many, 0)
	}
	cases := map[string][]byte{
		"type 1 first":       chunk(1, 3, append(be24(0), append(be24(1), 20)...), []byte{0}),
		"type 3 first":       chunk(3, 3, nil, []byte{0}),
		"type 0 mid-message": append(chunk(0, 3, header0(0, 200, 9, 0), make([]byte, 128)), chunk(0, 3, header0(0, 1, 9, 0), []byte{0})...),
		"chunk size 0":       chunk(0, 2, header0(0, 4, rtmpMsgSetChunkSize, 0), []byte{0, 0, 0, 0}),
		"too many streams":   many,
		"truncated":          chunk(0, 3, header0(0, 100, 9, 0), make([]byte, 50)),
	}
	for name, s := range cases {
		p := newChunkParser(bytes.NewReader(s), 4096)
		var err error
		for i := 0; i < 1000 && err == nil; i++ {
			_, err = p.next()
		}
		if err == nil || errors.Is(err, io.EOF) {
			t.Errorf("%s: err = %v, want a refusal", name, err)
		}
	}

	// The caller refuses a message from its header, before any of its body is read.
	p := newChunkParser(bytes.NewReader(chunk(0, 3, header0(0, 5000, 9, 0), nil)), 4096)
	p.want = func(typ uint8, length uint32) (bool, error) { return false, errUnitTooLarge }
	if _, err := p.next(); !errors.Is(err, errUnitTooLarge) {
		t.Errorf("err = %v, want the caller's refusal", err)
	}
}

// Bodies a caller does not keep are skipped, not assembled.
func TestChunkParserDropsUnwantedBodies(t *testing.T) {
	s := chunk(0, 4, header0(0, 100, 8, 1), make([]byte, 100))
	s = append(s, chunk(0, 5, header0(0, 3, 9, 1), []byte{1, 2, 3})...)
	p := newChunkParser(bytes.NewReader(s), 4096)
	p.want = func(typ uint8, _ uint32) (bool, error) { return typ == 9, nil }
	m, err := p.next()
	if err != nil || m.typ != 8 || m.body != nil || m.length != 100 {
		t.Fatalf("audio: %+v %v, want no body", m, err)
	}
	m, err = p.next()
	if err != nil || m.typ != 9 || !bytes.Equal(m.body, []byte{1, 2, 3}) {
		t.Fatalf("video: %+v %v", m, err)
	}
	if p.held != 3 {
		t.Errorf("held %d bytes, want 3 (only the kept body)", p.held)
	}
}

// checkHeld checks the parser's count of assembly memory against its buffers.
func checkHeld(t *testing.T, p *chunkParser) {
	t.Helper()
	sum := 0
	for _, cs := range p.streams {
		sum += cap(cs.body) + cap(cs.spare)
		if cap(cs.spare) > rtmpBufferReused {
			t.Fatalf("spare buffer of %d bytes", cap(cs.spare))
		}
	}
	if sum != p.held {
		t.Fatalf("held %d bytes, buffers have %d", p.held, sum)
	}
}

// A chunk stream reuses one buffer for its messages up to rtmpBufferReused; a larger message
// (a keyframe) gets a buffer of its own, which the caller may take without a copy, and the
// reused buffer comes back after it.
func TestChunkParserReusesSmallAndHandsOverLargeBuffers(t *testing.T) {
	sizes := []int{1000, 3000, 2000, 200 << 10, 1500, 100 << 10, 2500}
	var s []byte
	for i, n := range sizes {
		s = append(s, chunk(0, 6, header0(uint32(40*i), uint32(n), 9, 1), bytes.Repeat([]byte{byte(i + 1)}, n))...)
	}
	p := newChunkParser(bytes.NewReader(s), 4096)
	p.chunkSize = 1 << 20
	var small *byte
	var taken []byte
	for i, n := range sizes {
		m, err := p.next()
		if err != nil || len(m.body) != n || m.body[0] != byte(i+1) || m.body[n-1] != byte(i+1) {
			t.Fatalf("message %d: %d bytes, %v", i, len(m.body), err)
		}
		large := n > rtmpBufferReused
		switch {
		case !large && i <= 1: // the second grows it to hold 3000 bytes, then 2x
			small = &m.body[:1][0]
		case !large && i > 1 && &m.body[:1][0] != small:
			t.Errorf("message %d (%d bytes) is not in the reused buffer", i, n)
		case large && &m.body[:1][0] == small:
			t.Errorf("message %d (%d bytes) is in the reused buffer", i, n)
		}
		switch {
		case i == 3: // the caller keeps the first large one
			if !p.detach(m.chunkStreamID) {
				t.Fatalf("a %d-byte message was not handed over", n)
			}
			taken = m.body
		case large:
			p.release(m.chunkStreamID) // the second is dropped
		default:
			if p.detach(m.chunkStreamID) {
				t.Fatalf("the reused buffer was handed over (message %d)", i)
			}
		}
		checkHeld(t, p)
		if large && p.held > 2*rtmpBufferReused {
			t.Errorf("after message %d the parser holds %d bytes", i, p.held)
		}
	}
	if !bytes.Equal(taken, bytes.Repeat([]byte{4}, 200<<10)) {
		t.Error("the handed-over body changed after later messages")
	}
}

func FuzzChunkParser(f *testing.F) {
	var buf bytes.Buffer
	w := rawmessage.NewWriter(&buf, bytecounter.NewWriter(io.Discard), false)
	w.SetChunkSize(64)
	for i := range 5 {
		_ = w.Write(&rawmessage.Message{ChunkStreamID: byte(3 + i%2), Timestamp: time.Duration(i*40) * time.Millisecond,
			Type: 9, MessageStreamID: 1, Body: bytes.Repeat([]byte{byte(i)}, 30*i)})
	}
	f.Add(buf.Bytes())
	f.Add(chunk(0, 2, header0(0, 4, rtmpMsgSetChunkSize, 0), []byte{0, 0, 0, 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := newChunkParser(bytes.NewReader(b), 64)
		// Every message takes at least one byte of input: the loop is bounded by it.
		for i := 0; i <= len(b); i++ {
			m, err := p.next()
			if err != nil {
				return
			}
			if m.body != nil && uint32(len(m.body)) != m.length {
				t.Fatalf("body of %d bytes for a message of %d", len(m.body), m.length)
			}
			if i%2 == 0 {
				p.release(m.chunkStreamID)
			} else {
				p.detach(m.chunkStreamID)
			}
			checkHeld(t, p)
		}
		t.Fatalf("more than %d messages from %d bytes", len(b), len(b))
	})
}

// Any video message body, legacy or enhanced, either becomes units or is refused: no panic,
// and a unit is whole or Skipped.
func FuzzDirectVideo(f *testing.F) {
	idr := []byte{0, 0, 0, 3, 0x65, 0x88, 0x84}
	f.Add(append([]byte{0x17, 1, 0, 0, 0}, idr...), false, false)
	f.Add(append([]byte{0x27, 1, 0, 0, 0}, 0, 0, 0, 2, 0x41, 0x9a), false, true)
	f.Add([]byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 0x64, 1, 0, 2, 0x68, 0xee}, false, false)
	f.Add(append([]byte{0x93, 'h', 'v', 'c', '1'}, 0, 0, 0, 3, 0x26, 0x01, 0xaf), true, true)
	f.Fuzz(func(t *testing.T, body []byte, hevc, keysOnly bool) {
		codec := media.CodecH264
		if hevc {
			codec = media.CodecH265
		}
		s := &rtmpStream{codec: codec, builder: newUnitBuilder(codec),
			direct: &rtmpDirect{p: newChunkParser(bytes.NewReader(nil), 64), lengthSize: 4}}
		s.keyframesOnly.Store(keysOnly)
		_ = s.directVideo(&rtmpMessage{typ: rtmpMsgVideo, body: body, length: uint32(len(body))})
		for _, au := range s.pending {
			if au.Skipped == (len(au.NALUs) > 0) || (au.Skipped && au.Keyframe) {
				t.Fatalf("unit: skipped %v keyframe %v with %d NAL units", au.Skipped, au.Keyframe, len(au.NALUs))
			}
		}
	})
}
