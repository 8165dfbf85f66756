package source

import (
	"bytes"

	"github.com/livesnap/livesnap/internal/bitstream"
	"github.com/livesnap/livesnap/internal/media"
)

// NAL unit types that matter for snapshots.
const (
	h264NALIDR = 5
	h264NALSEI = 6
	h264NALSPS = 7
	h264NALPPS = 8
	h264NALAUD = 9

	h265NALIRAPFirst = 16 // BLA_W_LP
	h265NALIRAPLast  = 23 // RSV_IRAP_VCL23
	h265NALVPS       = 32
	h265NALSPS       = 33
	h265NALPPS       = 34
	h265NALAUD       = 35

	av1OBUSequenceHeader = 1
)

// nalType returns the NAL unit type of an H.264 or H.265 NAL unit, or -1 for an empty one.
func nalType(c media.Codec, nalu []byte) int {
	if len(nalu) == 0 {
		return -1
	}
	if c == media.CodecH265 {
		return int(nalu[0]>>1) & 0x3f
	}
	return int(nalu[0]) & 0x1f
}

// isVCL reports whether a NAL unit type carries picture data.
func isVCL(c media.Codec, typ int) bool {
	if c == media.CodecH265 {
		return typ >= 0 && typ <= 31
	}
	return typ >= 1 && typ <= 5
}

// isRandomAccess reports whether a NAL unit type starts a clean random access point.
func isRandomAccess(c media.Codec, typ int) bool {
	if c == media.CodecH265 {
		return typ >= h265NALIRAPFirst && typ <= h265NALIRAPLast
	}
	return typ == h264NALIDR
}

// paramTypes lists a codec's parameter set NAL types in the order decoders need them.
func paramTypes(c media.Codec) []int {
	if c == media.CodecH265 {
		return []int{h265NALVPS, h265NALSPS, h265NALPPS}
	}
	return []int{h264NALSPS, h264NALPPS}
}

func isAUD(c media.Codec, typ int) bool {
	if c == media.CodecH265 {
		return typ == h265NALAUD
	}
	return typ == h264NALAUD
}

// unitBuilder turns the NAL unit lists a demuxer hands out into media.AccessUnits: it tracks
// the latest parameter sets (from codec configuration and in-band) and makes every keyframe
// self-contained.
type unitBuilder struct {
	codec  media.Codec
	params map[int][]byte // NAL type → latest parameter set (H.264/H.265); OBU type (AV1)
}

func newUnitBuilder(c media.Codec) *unitBuilder {
	return &unitBuilder{codec: c, params: make(map[int][]byte)}
}

// setParam stores a parameter set (a private copy: demuxer buffers are not ours to keep).
func (b *unitBuilder) setParam(typ int, nalu []byte) {
	if len(nalu) == 0 {
		return
	}
	if old, ok := b.params[typ]; ok && bytes.Equal(old, nalu) {
		return
	}
	b.params[typ] = bytes.Clone(nalu)
}

// h26x builds a unit from one H.264/H.265 access unit. ok is false when the access unit holds
// no picture (parameter sets only, SEI only, ...): those update state but are not returned.
func (b *unitBuilder) h26x(nalus [][]byte) (au media.AccessUnit, ok bool) {
	want := paramTypes(b.codec)
	key := false
	hasPicture := false
	recovery := -1 // recovery_frame_cnt of an H.264 recovery point SEI in this unit
	present := make(map[int]bool, len(want))
	for _, n := range nalus {
		typ := nalType(b.codec, n)
		for _, p := range want {
			if typ == p {
				b.setParam(typ, n)
				present[typ] = true
			}
		}
		if b.codec == media.CodecH264 && typ == h264NALSEI {
			if frames, ok := bitstream.H264RecoveryPoint(n[1:]); ok {
				recovery = frames
			}
		}
		if isVCL(b.codec, typ) {
			hasPicture = true
			if isRandomAccess(b.codec, typ) {
				key = true
			}
		}
	}
	if !hasPicture {
		return media.AccessUnit{}, false
	}
	au = media.AccessUnit{Codec: b.codec, NALUs: nalus}
	if !key && recovery >= 0 {
		// An intra-refresh stream's entry point: decoding may start here, and the pictures
		// are clean from recovery_frame_cnt units later.
		key, au.RecoveryFrames = true, recovery
	}
	if !key {
		return au, true
	}

	complete := true
	for _, p := range want {
		if !present[p] {
			complete = false
		}
		if b.params[p] == nil {
			// Cannot make it decodable on its own: do not claim it is a keyframe.
			return au, true
		}
	}
	au.Keyframe = true
	if complete {
		return au, true
	}

	// Rebuild: leading AUDs, then the parameter sets in decoding order, then the rest of the
	// unit minus in-band copies of those same parameter sets.
	out := make([][]byte, 0, len(nalus)+len(want))
	i := 0
	for ; i < len(nalus) && isAUD(b.codec, nalType(b.codec, nalus[i])); i++ {
		out = append(out, nalus[i])
	}
	for _, p := range want {
		out = append(out, b.params[p])
	}
	for _, n := range nalus[i:] {
		if typ := nalType(b.codec, n); typ >= 0 {
			if ps, ok := b.params[typ]; ok && bytes.Equal(ps, n) {
				continue
			}
		}
		out = append(out, n)
	}
	au.NALUs = out
	return au, true
}

// av1 builds a unit from one AV1 temporal unit. A temporal unit carrying a sequence header is
// taken as a keyframe (what encoders emit at key frames; the same rule gortmplib and
// mediacommon use).
func (b *unitBuilder) av1(obus [][]byte) (au media.AccessUnit, ok bool) {
	if len(obus) == 0 {
		return media.AccessUnit{}, false
	}
	au = media.AccessUnit{Codec: media.CodecAV1, NALUs: obus}
	for _, o := range obus {
		if len(o) > 0 && int(o[0]>>3)&0x0f == av1OBUSequenceHeader {
			b.setParam(av1OBUSequenceHeader, o)
			au.Keyframe = true
		}
	}
	return au, true
}

// av1Keyed is av1 for containers that flag key frames themselves and keep the sequence
// header in their configuration (MP4's av1C) rather than in band: a flagged temporal unit
// without a sequence header gets the latest one in front, so it decodes on its own.
func (b *unitBuilder) av1Keyed(obus [][]byte, key bool) (media.AccessUnit, bool) {
	au, ok := b.av1(obus)
	if !ok || au.Keyframe || !key {
		return au, ok
	}
	seq := b.params[av1OBUSequenceHeader]
	if seq == nil {
		return au, ok // not decodable on its own: do not claim it is a keyframe
	}
	au.NALUs = append([][]byte{seq}, obus...)
	au.Keyframe = true
	return au, ok
}
