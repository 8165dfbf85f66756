// Package bitstream reads the few codec bitstream structures livesnap needs outside the
// decoder itself: H.264/H.265 emulation prevention, Exp-Golomb fields and recovery point SEI
// messages, and AV1's LEB128 sizes. Sources use it to find random access points and split
// units, decode to check reference chains and pack units for the decoder.
package bitstream

import "errors"

// ErrOverrun: a field runs past the end of its NAL unit.
var ErrOverrun = errors.New("header runs past the end of its NAL unit")

// Unescape removes emulation-prevention bytes (00 00 03 -> 00 00), turning a NAL unit's
// payload into its RBSP.
func Unescape(p []byte) []byte {
	out := make([]byte, 0, len(p))
	zeros := 0
	for _, c := range p {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// BitReader reads an RBSP most significant bit first; the first overrun sets Err and every
// later read returns 0.
type BitReader struct {
	b   []byte
	pos int
	Err error
}

// NewBitReader reads rbsp (already unescaped).
func NewBitReader(rbsp []byte) *BitReader { return &BitReader{b: rbsp} }

// U reads an n-bit unsigned field (n ≤ 32).
func (r *BitReader) U(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		if r.Err != nil || r.pos >= len(r.b)*8 {
			r.Err = ErrOverrun
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos/8]>>(7-r.pos%8))&1
		r.pos++
	}
	return v
}

// UE reads an unsigned Exp-Golomb field.
func (r *BitReader) UE() uint32 {
	zeros := 0
	for r.U(1) == 0 {
		if r.Err != nil || zeros == 31 {
			r.Err = ErrOverrun
			return 0
		}
		zeros++
	}
	return (1<<zeros - 1) + r.U(zeros)
}

// SE reads a signed Exp-Golomb field.
func (r *BitReader) SE() int32 {
	v := r.UE()
	if v&1 == 1 {
		return int32((v + 1) / 2)
	}
	return -int32(v / 2)
}

// seiRecoveryPoint is the SEI payload type of a recovery point (H.264 and H.265).
const seiRecoveryPoint = 6

// maxRecoveryFrames bounds what a recovery point may claim (an encoder's refresh period is a
// few seconds of frames; a bigger value is damage).
const maxRecoveryFrames = 1024

// H264RecoveryPoint looks through the SEI messages of an H.264 SEI NAL unit's payload (after
// the one-byte NAL header) for a recovery point, the mark of a clean entry into an
// intra-refresh stream. It returns recovery_frame_cnt: the picture that many frames later is
// the first one fully refreshed.
func H264RecoveryPoint(payload []byte) (frames int, ok bool) {
	rbsp := Unescape(payload)
	for len(rbsp) > 1 {
		typ, n := seiNumber(rbsp)
		if n == 0 {
			return 0, false
		}
		rbsp = rbsp[n:]
		size, n := seiNumber(rbsp)
		if n == 0 || size > len(rbsp)-n {
			return 0, false
		}
		rbsp = rbsp[n:]
		if typ == seiRecoveryPoint {
			r := NewBitReader(rbsp[:size])
			cnt := r.UE()
			if r.Err != nil || cnt > maxRecoveryFrames {
				return 0, false
			}
			return int(cnt), true
		}
		rbsp = rbsp[size:]
	}
	return 0, false
}

// seiNumber reads an SEI payload type or size: a run of 0xFF bytes plus a final byte.
func seiNumber(b []byte) (v, n int) {
	for n < len(b) && n < 64 {
		v += int(b[n])
		n++
		if b[n-1] != 0xff {
			return v, n
		}
	}
	return 0, 0
}

// maxLEB128 is the longest LEB128 value AV1 allows (8 bytes).
const maxLEB128 = 8

// ReadLEB128 decodes an unsigned LEB128 value (at most 8 bytes), returning it and its
// length, or a length of 0 when b does not start with a valid one.
func ReadLEB128(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < maxLEB128 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
