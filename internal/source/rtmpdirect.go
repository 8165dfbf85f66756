package source

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/livesnap/livesnap/internal/bitstream"
	"github.com/livesnap/livesnap/internal/media"
)

// The direct read path: once gortmplib has set the stream up (handshake, connect, play, track
// discovery), the stream reads the connection with its own chunk parser (rtmpTap's). Message
// bodies are assembled in reused buffers; audio and metadata are dropped unread; a video
// message is copied out once, into the unit's own memory, and not at all when the consumer only
// wants keyframes (SetKeyframesOnly) and the message holds none: such a unit carries its
// timing only (media.AccessUnit.Skipped).
//
// It covers single-track H.264 (legacy FLV and enhanced RTMP avc1) and H.265 (hvc1, and the
// unofficial legacy codec ID 12). Other streams (AV1, multitrack) stay on gortmplib's reader.

// errBadMessage marks a media message that was read whole but does not decode; the stream
// skips it (see rtmpStream.Read).
var errBadMessage = errors.New("undecodable video message")

type rtmpDirect struct {
	p        *chunkParser
	ackBase  uint64 // bytes received when the direct path began, as gortmplib counts them
	consBase uint64 // the parser's consumed count then
	lastAck  uint64
	window   uint32
	// lengthSize is the NAL unit length size of the video (from a configuration record met on
	// this path; 4 before, as gortmplib assumes).
	lengthSize int
}

// startDirect takes the connection over from gortmplib, if the tap was in step with it.
func (s *rtmpStream) startDirect(returned int) {
	t := s.tap
	if t == nil || (s.codec != media.CodecH264 && s.codec != media.CodecH265) || !t.takeover(returned) {
		if t != nil {
			t.transparent()
		}
		return
	}
	d := &rtmpDirect{p: t.p, window: t.window, consBase: t.p.consumed, lengthSize: 4}
	d.ackBase = s.client.BytesReceived()
	if d.window > 0 {
		d.lastAck = d.ackBase - d.ackBase%uint64(d.window)
	}
	// A video message whose first chunks gortmplib read (the tap did not keep its body)
	// completes without a body and is dropped (directVideo).
	t.p.want = func(typ uint8, length uint32) (bool, error) {
		switch typ {
		case rtmpMsgVideo:
			if length > MaxUnitSize {
				return false, fmt.Errorf("%w: %d bytes (limit %d)", errUnitTooLarge, length, MaxUnitSize)
			}
			return true, nil
		case rtmpMsgSetChunkSize, rtmpMsgAbort, rtmpMsgWindowAckSize, rtmpMsgUserControl, rtmpMsgCommandAMF0:
			if length > rtmpMaxControlBody {
				return false, fmt.Errorf("%w: control message of %d bytes", errChunkProtocol, length)
			}
			return true, nil
		}
		return false, nil // audio, metadata, shared objects, aggregates: not needed
	}
	t.p.afterChunk = func() error { return d.acknowledge(s) }
	s.direct = d
}

// readDirect reads one message and handles it. A connection or protocol failure is recorded
// in s.gc.err (the session ends); an undecodable video message returns errBadMessage.
func (s *rtmpStream) readDirect() error {
	d := s.direct
	m, err := d.p.next()
	if err == nil {
		err = s.directMessage(m)
	}
	if err != nil && !errors.Is(err, errBadMessage) {
		s.gc.err = err
	}
	return err
}

// acknowledge sends an acknowledgement once more than the server's window was received since
// the last one: at most one per chunk, whatever window the server asked for.
func (d *rtmpDirect) acknowledge(s *rtmpStream) error {
	if d.window == 0 {
		return nil
	}
	count := d.ackBase + d.p.consumed - d.consBase
	if count-d.lastAck <= uint64(d.window) {
		return nil
	}
	d.lastAck = count
	var body [4]byte
	binary.BigEndian.PutUint32(body[:], uint32(count))
	return writeControl(s.conn, rtmpMsgAck, body[:])
}

// writeControl sends a protocol or user control message in one type 0 chunk on chunk stream
// 2, message stream 0, where the spec puts them. A full header depends on no earlier header,
// so gortmplib's writer (which wrote the setup's messages, and writes nothing after the
// takeover) shares no state with it; one chunk holds any control body, whose few bytes are
// under the chunk size gortmplib's client announces (65536).
func writeControl(w io.Writer, typ uint8, body []byte) error {
	var b [12 + 8]byte
	b[0] = 2                                                                    // fmt 0, chunk stream 2
	b[4], b[5], b[6] = byte(len(body)>>16), byte(len(body)>>8), byte(len(body)) // timestamp 0, then length
	b[7] = typ                                                                  // message stream 0 (bytes 8-11)
	n := 12 + copy(b[12:], body)
	_, err := w.Write(b[:n])
	return err
}

func (s *rtmpStream) directMessage(m *rtmpMessage) error {
	switch m.typ {
	case rtmpMsgVideo:
		err := s.directVideo(m)
		s.direct.p.release(m.chunkStreamID)
		return err
	case rtmpMsgWindowAckSize:
		if len(m.body) >= 4 {
			s.direct.window = binary.BigEndian.Uint32(m.body)
		}
	case rtmpMsgUserControl:
		// Ping request (event 6): answer it, or the server takes the client for dead.
		if len(m.body) >= 6 && binary.BigEndian.Uint16(m.body) == 6 {
			var body [6]byte
			binary.BigEndian.PutUint16(body[:], 7) // ping response, with the request's time
			copy(body[2:], m.body[2:6])
			return writeControl(s.conn, rtmpMsgUserControl, body[:])
		}
	case rtmpMsgAggregate:
		// FLV tags bundled in one message (some servers send them); gortmplib does not read
		// them either. A stream of nothing else ends after maxBadMessages, saying why.
		return fmt.Errorf("%w: aggregate message, not supported", errBadMessage)
	case rtmpMsgCommandAMF0:
		data, err := amf0.Unmarshal(m.body)
		if err != nil || len(data) < 3 {
			return nil // not a command this client acts on
		}
		name, _ := data[0].(string)
		id, _ := data[1].(float64)
		return checkStatus(&message.CommandAMF0{Name: name, CommandID: int(id), Arguments: data[2:]})
	}
	return nil
}

// FLV video tag constants.
const (
	flvFrameKey     = 1
	flvFrameCommand = 5
	flvCodecAVC     = 7
	flvCodecHEVC    = 12 // unofficial legacy ID
	flvExMultitrack = 6
)

var (
	fourCCAVC  = []byte("avc1")
	fourCCHEVC = []byte("hvc1")
)

// directVideo turns one video message (legacy FLV or enhanced RTMP) into a unit.
func (s *rtmpStream) directVideo(m *rtmpMessage) error {
	b := m.body
	if b == nil {
		return nil // dropped at the takeover
	}
	if len(b) < 5 {
		return fmt.Errorf("%w: %d bytes", errBadMessage, len(b))
	}
	dts := time.Duration(m.timestamp) * time.Millisecond
	var frameType byte
	var cts int32
	var payload []byte
	if b[0]&0x80 == 0 { // legacy FLV
		frameType = b[0] >> 4
		codec := b[0] & 0x0f
		if (s.codec == media.CodecH264 && codec != flvCodecAVC) || (s.codec == media.CodecH265 && codec != flvCodecHEVC) {
			return fmt.Errorf("%w: FLV codec %d in a %v stream", errBadMessage, codec, s.codec)
		}
		cts = int24(b[2:])
		switch b[1] {
		case 0:
			return s.directConfig(b[5:])
		case 1:
			payload = b[5:]
		case 2:
			return nil // end of sequence
		default:
			return fmt.Errorf("%w: AVC packet type %d", errBadMessage, b[1])
		}
	} else { // enhanced RTMP
		frameType = (b[0] >> 4) & 7
		packetType := b[0] & 0x0f
		if packetType == flvExMultitrack {
			return fmt.Errorf("%w: multitrack message in a single-track stream", errBadMessage)
		}
		want := fourCCAVC
		if s.codec == media.CodecH265 {
			want = fourCCHEVC
		}
		if !bytes.Equal(b[1:5], want) {
			return fmt.Errorf("%w: FourCC %q in a %v stream", errBadMessage, b[1:5], s.codec)
		}
		switch packetType {
		case 0: // sequence start
			return s.directConfig(b[5:])
		case 1: // coded frames, with a composition time offset
			if len(b) < 8 {
				return fmt.Errorf("%w: %d bytes", errBadMessage, len(b))
			}
			cts = int24(b[5:])
			payload = b[8:]
		case 3: // coded frames, no composition time offset
			payload = b[5:]
		case 2, 4, 5: // sequence end, metadata, MPEG-2 TS sequence start
			return nil
		default:
			return fmt.Errorf("%w: enhanced RTMP packet type %d", errBadMessage, packetType)
		}
	}
	if frameType == flvFrameCommand {
		return nil // video info / command frame: no picture
	}
	pts := dts + time.Duration(cts)*time.Millisecond
	if frameType != flvFrameKey && s.keyframesOnly.Load() {
		if drop, picture := s.droppable(payload); drop {
			if picture {
				s.pending = append(s.pending, media.AccessUnit{Codec: s.codec, PTS: pts, DTS: dts, Received: time.Now(), Skipped: true})
			}
			return nil
		}
	}
	if !s.direct.p.detach(m.chunkStreamID) {
		// The parser's buffer is reused for the next message: the unit needs its own copy.
		// A large one (a keyframe) is the unit's already.
		payload = bytes.Clone(payload)
	}
	nalus, err := splitLengthPrefixed(payload, s.direct.lengthSize)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadMessage, err)
	}
	if len(nalus) == 0 {
		return nil
	}
	s.onH26x(pts, dts, nalus)
	return s.cbErr
}

// droppable reports whether a unit's data can be dropped under SetKeyframesOnly: it holds no
// random access point, no recovery point and no parameter set (each of which changes what a
// later keyframe decodes to), and its structure is sound. picture: it holds a picture.
func (s *rtmpStream) droppable(avcc []byte) (drop, picture bool) {
	size := s.direct.lengthSize
	for len(avcc) > 0 {
		if len(avcc) < size {
			return false, false
		}
		n := 0
		for _, b := range avcc[:size] {
			n = n<<8 | int(b)
		}
		if n > len(avcc)-size {
			return false, false
		}
		nalu := avcc[size : size+n]
		avcc = avcc[size+n:]
		typ := nalType(s.codec, nalu)
		switch {
		case typ < 0:
			continue
		case isVCL(s.codec, typ):
			if isRandomAccess(s.codec, typ) {
				return false, false
			}
			picture = true
		case s.codec == media.CodecH264 && typ == h264NALSEI:
			if _, ok := bitstream.H264RecoveryPoint(nalu[1:]); ok {
				return false, false
			}
		default:
			for _, p := range paramTypes(s.codec) {
				if typ == p {
					return false, false
				}
			}
		}
	}
	return true, picture
}

// directConfig takes the parameter sets of a decoder configuration record: avcC (H.264) or
// hvcC (H.265).
func (s *rtmpStream) directConfig(rec []byte) error {
	parse := parseAVCC
	if s.codec == media.CodecH265 {
		parse = parseHVCC
	}
	cfg, err := parse(rec)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadMessage, err)
	}
	s.direct.lengthSize = cfg.lengthSize
	for _, p := range cfg.params {
		typ := nalType(s.codec, p)
		for _, want := range paramTypes(s.codec) {
			if typ == want {
				s.builder.setParam(typ, p)
			}
		}
	}
	return nil
}

// int24 reads a signed 24-bit big-endian integer.
func int24(b []byte) int32 {
	return int32(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8) >> 8
}
