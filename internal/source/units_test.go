package source

import (
	"bytes"
	"testing"

	"github.com/livesnap/livesnap/internal/media"
)

func nalTypes(c media.Codec, nalus [][]byte) []int {
	out := make([]int, len(nalus))
	for i, n := range nalus {
		out[i] = nalType(c, n)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestUnitBuilderH264(t *testing.T) {
	sps, pps := []byte{0x67, 1, 2}, []byte{0x68, 3}
	sps2 := []byte{0x67, 9, 9}
	idr, p := []byte{0x65, 0x88}, []byte{0x41, 0x9a}
	aud, sei := []byte{0x09, 0xf0}, []byte{0x06, 5}

	tests := []struct {
		name      string
		in        [][]byte
		ok, key   bool
		wantTypes []int
	}{
		{"config-only unit updates state but is not a picture", [][]byte{sps, pps}, false, false, nil},
		{"SEI-only unit is not a picture", [][]byte{sei}, false, false, nil},
		{"predicted frame passes through", [][]byte{p}, true, false, []int{1}},
		{"bare IDR gets SPS and PPS prepended", [][]byte{idr}, true, true, []int{7, 8, 5}},
		{"parameter sets go after a leading AUD", [][]byte{aud, sei, idr}, true, true, []int{9, 7, 8, 6, 5}},
		{"complete keyframe is left alone", [][]byte{sps, pps, idr}, true, true, []int{7, 8, 5}},
		{"in-band SPS only: rebuilt in order without duplicates", [][]byte{sps2, idr}, true, true, []int{7, 8, 5}},
	}
	b := newUnitBuilder(media.CodecH264)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			au, ok := b.h26x(tt.in)
			if ok != tt.ok || au.Keyframe != tt.key {
				t.Fatalf("ok %v key %v, want %v %v", ok, au.Keyframe, tt.ok, tt.key)
			}
			if ok && !equalInts(nalTypes(media.CodecH264, au.NALUs), tt.wantTypes) {
				t.Fatalf("types %v, want %v", nalTypes(media.CodecH264, au.NALUs), tt.wantTypes)
			}
		})
	}
	// The latest in-band SPS wins for later keyframes.
	au, _ := b.h26x([][]byte{idr})
	if !bytes.Equal(au.NALUs[0], sps2) {
		t.Errorf("keyframe SPS = %x, want latest %x", au.NALUs[0], sps2)
	}
}

// An intra-refresh stream has no IDR after its first picture: its entry points are P
// pictures with a recovery point SEI, and the pictures are clean recovery_frame_cnt later.
func TestUnitBuilderRecoveryPoint(t *testing.T) {
	b := newUnitBuilder(media.CodecH264)
	b.setParam(h264NALSPS, []byte{0x67, 1, 2})
	b.setParam(h264NALPPS, []byte{0x68, 3})
	recovery := []byte{0x06, 0x06, 0x02, 0x09, 0xc4, 0x80} // recovery_frame_cnt 18, as x264 writes it
	au, ok := b.h26x([][]byte{recovery, {0x41, 0x9a}})
	if !ok || !au.Keyframe || au.RecoveryFrames != 18 {
		t.Fatalf("ok %v key %v recovery %d, want a keyframe clean 18 units later", ok, au.Keyframe, au.RecoveryFrames)
	}
	if got := nalTypes(media.CodecH264, au.NALUs); !equalInts(got, []int{7, 8, 6, 1}) {
		t.Fatalf("types %v: the entry point must carry its parameter sets", got)
	}
	if au, _ := b.h26x([][]byte{{0x41, 0x9b}}); au.Keyframe || au.RecoveryFrames != 0 {
		t.Fatalf("a plain P picture is not an entry point")
	}
	if au, _ := b.h26x([][]byte{{0x65, 0x88}}); !au.Keyframe || au.RecoveryFrames != 0 {
		t.Fatalf("an IDR is clean at once")
	}
}

func TestUnitBuilderKeyframeWithoutParamsIsNotClaimed(t *testing.T) {
	b := newUnitBuilder(media.CodecH264)
	au, ok := b.h26x([][]byte{{0x65, 1}})
	if !ok || au.Keyframe {
		t.Fatalf("ok %v key %v: an IDR without known SPS/PPS cannot be a self-contained keyframe", ok, au.Keyframe)
	}
}

func TestUnitBuilderH265(t *testing.T) {
	vps, sps, pps := []byte{32 << 1, 1}, []byte{33 << 1, 1}, []byte{34 << 1, 1}
	b := newUnitBuilder(media.CodecH265)
	b.setParam(h265NALVPS, vps)
	b.setParam(h265NALSPS, sps)
	b.setParam(h265NALPPS, pps)
	for typ := 0; typ <= 40; typ++ {
		au, ok := b.h26x([][]byte{{byte(typ << 1), 1, 0x80}})
		wantOK := typ <= 31
		wantKey := typ >= 16 && typ <= 23
		if ok != wantOK || au.Keyframe != wantKey {
			t.Errorf("type %d: ok %v key %v, want %v %v", typ, ok, au.Keyframe, wantOK, wantKey)
		}
		if wantKey && !equalInts(nalTypes(media.CodecH265, au.NALUs), []int{32, 33, 34, typ}) {
			t.Errorf("type %d: NAL types %v", typ, nalTypes(media.CodecH265, au.NALUs))
		}
	}
}

func TestUnitBuilderAV1(t *testing.T) {
	b := newUnitBuilder(media.CodecAV1)
	seq, frame := []byte{1 << 3, 0}, []byte{6 << 3, 0}
	if au, ok := b.av1([][]byte{seq, frame}); !ok || !au.Keyframe {
		t.Errorf("TU with sequence header: ok %v key %v", ok, au.Keyframe)
	}
	if au, ok := b.av1([][]byte{frame}); !ok || au.Keyframe {
		t.Errorf("TU without sequence header: ok %v key %v", ok, au.Keyframe)
	}
}
