package source

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/livesnap/livesnap/internal/bitstream"
)

// maxNALUs bounds the NAL units (or OBUs) of one access unit; sliced 4K pictures have a few
// dozen, so this only stops garbage.
const maxNALUs = 1024

var errBadBitstream = errors.New("malformed video packet")

// splitAnnexB cuts an Annex-B byte stream (00 00 01 / 00 00 00 01 start codes) into NAL
// units without start codes. Bytes before the first start code are dropped; trailing zero
// bytes of a NAL unit (trailing_zero_8bits, the first byte of a 4-byte start code) are
// trimmed. The NAL units alias buf.
func splitAnnexB(buf []byte) ([][]byte, error) {
	var out [][]byte
	start := -1
	for i := 0; ; {
		k := bytes.Index(buf[i:], startCode)
		if k < 0 {
			break
		}
		k += i
		if start >= 0 {
			if n := bytes.TrimRight(buf[start:k], "\x00"); len(n) > 0 {
				out = append(out, n)
			}
		}
		start = k + len(startCode)
		i = start
		if len(out) > maxNALUs {
			return nil, fmt.Errorf("%w: more than %d NAL units", errBadBitstream, maxNALUs)
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%w: no Annex-B start code", errBadBitstream)
	}
	if n := bytes.TrimRight(buf[start:], "\x00"); len(n) > 0 {
		out = append(out, n)
	}
	return out, nil
}

var startCode = []byte{0, 0, 1}

// splitLengthPrefixed cuts AVCC/HVCC data (each NAL unit after a big-endian length of size
// bytes: 1, 2 or 4) into NAL units. The NAL units alias buf.
func splitLengthPrefixed(buf []byte, size int) ([][]byte, error) {
	if size != 1 && size != 2 && size != 4 {
		return nil, fmt.Errorf("%w: NAL length size %d", errBadBitstream, size)
	}
	var out [][]byte
	for len(buf) > 0 {
		if len(buf) < size {
			return nil, fmt.Errorf("%w: truncated NAL length", errBadBitstream)
		}
		n := 0
		for _, b := range buf[:size] {
			n = n<<8 | int(b)
		}
		buf = buf[size:]
		if n > len(buf) {
			return nil, fmt.Errorf("%w: NAL unit of %d bytes, %d left", errBadBitstream, n, len(buf))
		}
		if n > 0 {
			out = append(out, buf[:n])
		}
		buf = buf[n:]
		if len(out) > maxNALUs {
			return nil, fmt.Errorf("%w: more than %d NAL units", errBadBitstream, maxNALUs)
		}
	}
	return out, nil
}

// splitOBUs cuts an AV1 low-overhead bitstream (every OBU with obu_has_size_field, as
// libavformat delivers AV1) into OBUs, each still carrying its header and size field (the
// form decode takes). The OBUs alias buf.
func splitOBUs(buf []byte) ([][]byte, error) {
	var out [][]byte
	for len(buf) > 0 {
		hdr := 1
		if buf[0]&0x04 != 0 { // obu_extension_flag
			hdr = 2
		}
		if buf[0]&0x02 == 0 || len(buf) < hdr {
			return nil, fmt.Errorf("%w: OBU without size field", errBadBitstream)
		}
		size, n := bitstream.ReadLEB128(buf[hdr:])
		if n == 0 || size > uint64(len(buf)-hdr-n) {
			return nil, fmt.Errorf("%w: bad OBU size", errBadBitstream)
		}
		end := hdr + n + int(size)
		out = append(out, buf[:end])
		buf = buf[end:]
		if len(out) > maxNALUs {
			return nil, fmt.Errorf("%w: more than %d OBUs", errBadBitstream, maxNALUs)
		}
	}
	return out, nil
}

// codecConfig is a stream's codec configuration as a container gives it (extradata).
type codecConfig struct {
	params     [][]byte // parameter sets (H.264/H.265) or configuration OBUs (AV1)
	lengthSize int      // NAL length size of the packets (AVCC/HVCC), 0 for Annex-B
}

// parseCodecConfig reads extradata: an AVCDecoderConfigurationRecord (avcC),
// HEVCDecoderConfigurationRecord (hvcC) or AV1CodecConfigurationRecord (av1C), which also
// say that packets are length-prefixed; or Annex-B parameter sets (MPEG-TS, RTSP), which say
// packets are Annex-B. Empty extradata means Annex-B without configuration.
func parseCodecConfig(c codecKind, extradata []byte) (codecConfig, error) {
	if len(extradata) == 0 {
		return codecConfig{}, nil
	}
	switch {
	case c == kindAV1:
		return parseAV1C(extradata)
	case extradata[0] == 1 && c == kindH264:
		return parseAVCC(extradata)
	case extradata[0] == 1 && c == kindH265:
		return parseHVCC(extradata)
	}
	nalus, err := splitAnnexB(extradata)
	if err != nil {
		return codecConfig{}, fmt.Errorf("codec configuration: %w", err)
	}
	return codecConfig{params: nalus}, nil
}

// codecKind names the codecs whose bitstreams parseCodecConfig knows.
type codecKind int

const (
	kindH264 codecKind = iota + 1
	kindH265
	kindAV1
)

// parseAVCC reads an avcC record (ISO/IEC 14496-15 5.3.3.1).
func parseAVCC(b []byte) (codecConfig, error) {
	if len(b) < 7 {
		return codecConfig{}, fmt.Errorf("%w: avcC record of %d bytes", errBadBitstream, len(b))
	}
	cfg := codecConfig{lengthSize: int(b[4]&3) + 1}
	r := b[5:]
	for _, countMask := range []byte{0x1f, 0xff} { // SPS count (5 bits), then PPS count
		if len(r) < 1 {
			return codecConfig{}, fmt.Errorf("%w: truncated avcC record", errBadBitstream)
		}
		n := int(r[0] & countMask)
		r = r[1:]
		for range n {
			var nalu []byte
			var err error
			if nalu, r, err = take16(r); err != nil {
				return codecConfig{}, fmt.Errorf("avcC: %w", err)
			}
			cfg.params = append(cfg.params, nalu)
		}
	}
	return cfg, nil
}

// parseHVCC reads an hvcC record (ISO/IEC 14496-15 8.3.3.1).
func parseHVCC(b []byte) (codecConfig, error) {
	if len(b) < 23 {
		return codecConfig{}, fmt.Errorf("%w: hvcC record of %d bytes", errBadBitstream, len(b))
	}
	cfg := codecConfig{lengthSize: int(b[21]&3) + 1}
	arrays := int(b[22])
	r := b[23:]
	for range arrays {
		if len(r) < 3 {
			return codecConfig{}, fmt.Errorf("%w: truncated hvcC record", errBadBitstream)
		}
		n := int(r[1])<<8 | int(r[2])
		r = r[3:]
		if len(cfg.params)+n > maxNALUs {
			return codecConfig{}, fmt.Errorf("%w: more than %d parameter sets in hvcC", errBadBitstream, maxNALUs)
		}
		for range n {
			var nalu []byte
			var err error
			if nalu, r, err = take16(r); err != nil {
				return codecConfig{}, fmt.Errorf("hvcC: %w", err)
			}
			cfg.params = append(cfg.params, nalu)
		}
	}
	return cfg, nil
}

// parseAV1C reads an av1C record (AV1 ISOBMFF binding 2.3.3): 4 header bytes, then
// configuration OBUs (a sequence header) in the low-overhead format.
func parseAV1C(b []byte) (codecConfig, error) {
	if len(b) < 4 || b[0] != 0x81 {
		return codecConfig{}, fmt.Errorf("%w: not an av1C record", errBadBitstream)
	}
	obus, err := splitOBUs(b[4:])
	if err != nil {
		return codecConfig{}, fmt.Errorf("av1C: %w", err)
	}
	return codecConfig{params: obus}, nil
}

// take16 splits off one 16-bit-length-prefixed NAL unit.
func take16(r []byte) (nalu, rest []byte, err error) {
	if len(r) < 2 {
		return nil, nil, fmt.Errorf("%w: truncated length", errBadBitstream)
	}
	n := int(r[0])<<8 | int(r[1])
	if n > len(r)-2 {
		return nil, nil, fmt.Errorf("%w: parameter set of %d bytes, %d left", errBadBitstream, n, len(r)-2)
	}
	return r[2 : 2+n], r[2+n:], nil
}
