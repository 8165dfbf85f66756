package decode

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/livesnap/livesnap/internal/bitstream"
	"github.com/livesnap/livesnap/internal/media"
)

// maxPacket bounds one unit's size once packed (a 4K intra picture is a few MB).
const maxPacket = 64 << 20

// packedSize returns how many bytes pack will write for one access unit.
//
// H.264/H.265: each NAL unit gets a 4-byte start code. AV1: OBUs are concatenated in the
// low-overhead format; an OBU without obu_has_size_field gets one (+ up to 8 bytes of LEB128).
func packedSize(codec media.Codec, nalus [][]byte) (int, error) {
	n := 0
	for _, b := range nalus {
		if len(b) == 0 {
			continue
		}
		switch codec {
		case media.CodecAV1:
			hasSize, hdr := obuHeader(b)
			if hdr > len(b) {
				return 0, fmt.Errorf("%w: truncated OBU header", ErrCorrupt)
			}
			n += len(b)
			if !hasSize {
				n += lebLen(uint64(len(b) - hdr))
			}
		default:
			if err := checkNALU(b); err != nil {
				return 0, err
			}
			n += 4 + len(b)
		}
		if n > maxPacket {
			return 0, fmt.Errorf("decode: access unit larger than %d bytes", maxPacket)
		}
	}
	return n, nil
}

// checkNALU rejects an H.264/H.265 NAL unit that cannot be intact: its forbidden_zero_bit is
// set, or it contains 00 00 00, 00 00 01 or 00 00 02, which emulation prevention makes
// impossible inside a NAL unit. Such bytes (typically a zero-filled gap where data was lost)
// would cut the unit short in Annex-B, and CABAC can decode the remains without noticing.
// Trailing zero bytes are tolerated. The scan runs at memory speed (bytes.Index).
func checkNALU(b []byte) error {
	if b[0]&0x80 != 0 {
		return fmt.Errorf("%w: NAL unit with forbidden_zero_bit set", ErrCorrupt)
	}
	for i := 0; ; {
		k := bytes.Index(b[i:], zeroZero)
		if k < 0 {
			return nil
		}
		i += k
		if i+2 >= len(b) {
			return nil
		}
		if b[i+2] <= 2 {
			if len(bytes.TrimRight(b[i:], "\x00")) == 0 {
				return nil // trailing_zero_8bits
			}
			return fmt.Errorf("%w: NAL unit contains a start code prefix at byte %d of %d", ErrCorrupt, i, len(b))
		}
		i += 2
	}
}

var zeroZero = []byte{0, 0}

// pack writes the unit into dst, which has exactly packedSize bytes.
func pack(codec media.Codec, dst []byte, nalus [][]byte) {
	p := 0
	for _, b := range nalus {
		if len(b) == 0 {
			continue
		}
		if codec == media.CodecAV1 {
			hasSize, hdr := obuHeader(b)
			if hasSize {
				p += copy(dst[p:], b)
				continue
			}
			// Rewrite "OBU runs to the end of the element" as an explicit size.
			p += copy(dst[p:], b[:hdr])
			dst[p-hdr] |= 0x02 // obu_has_size_field
			p += putLeb(dst[p:], uint64(len(b)-hdr))
			p += copy(dst[p:], b[hdr:])
			continue
		}
		dst[p], dst[p+1], dst[p+2], dst[p+3] = 0, 0, 0, 1
		p += 4
		p += copy(dst[p:], b)
	}
}

// obuHeader reports whether an OBU carries its own size and how long its header is.
func obuHeader(b []byte) (hasSize bool, hdrLen int) {
	hdrLen = 1
	if b[0]&0x04 != 0 { // obu_extension_flag
		hdrLen = 2
	}
	return b[0]&0x02 != 0, hdrLen
}

func lebLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func putLeb(dst []byte, v uint64) int {
	i := 0
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		dst[i] = c
		i++
		if v == 0 {
			return i
		}
	}
}

// errNotRAP is wrapped in ErrCorrupt: without a random access point the reference chain is
// broken by definition.
var errNotRAP = errors.New("first unit is not a clean random access point with its parameter sets")

// checkRandomAccess verifies what the AccessUnit contract promises for units[0]: a clean
// random access point carrying its parameter sets. This matters because a flushed decoder
// still remembers the previous call's parameter sets, and the HEVC decoder happily
// "decodes" a P picture against invented grey references.
func checkRandomAccess(codec media.Codec, nalus [][]byte) error {
	var vps, sps, pps, rap bool
	switch codec {
	case media.CodecH264:
		vps = true
		for _, b := range nalus {
			if len(b) == 0 {
				continue
			}
			switch b[0] & 0x1f {
			case 7:
				sps = true
			case 8:
				pps = true
			case 5: // IDR slice
				rap = true
			case 6: // SEI: a recovery point makes an intra-refresh entry the decoder tracks
				if _, ok := bitstream.H264RecoveryPoint(b[1:]); ok {
					rap = true
				}
			}
		}
	case media.CodecH265:
		for _, b := range nalus {
			if len(b) < 2 {
				continue
			}
			switch t := (b[0] >> 1) & 0x3f; {
			case t == 32:
				vps = true
			case t == 33:
				sps = true
			case t == 34:
				pps = true
			case t >= 16 && t <= 23: // IRAP: BLA, IDR, CRA
				rap = true
			}
		}
	case media.CodecAV1:
		vps, pps = true, true
		for _, b := range nalus {
			for len(b) > 0 {
				hasSize, hdr := obuHeader(b)
				if hdr > len(b) {
					return fmt.Errorf("%w: truncated OBU header", ErrCorrupt)
				}
				switch (b[0] >> 3) & 0x0f {
				case 1: // sequence header
					sps = true
				case 3, 6: // frame header, frame
					rap = true // key_frame itself is trusted to the Keyframe flag
				}
				if !hasSize {
					break
				}
				size, l := bitstream.ReadLEB128(b[hdr:])
				if l == 0 || uint64(len(b)-hdr-l) < size {
					return fmt.Errorf("%w: bad OBU size", ErrCorrupt)
				}
				b = b[hdr+l+int(size):]
			}
		}
	default:
		return fmt.Errorf("%w: %v", ErrUnsupported, codec)
	}
	if !(vps && sps && pps && rap) {
		return fmt.Errorf("%w: %w", ErrCorrupt, errNotRAP)
	}
	return nil
}
