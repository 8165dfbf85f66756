package decode

import (
	"bytes"
	"errors"
	"testing"

	"github.com/livesnap/livesnap/internal/media"
)

func TestOutputSize(t *testing.T) {
	sq := sourceInfo{w: 640, h: 360, sarN: 1, sarD: 1}
	ana := sourceInfo{w: 720, h: 576, sarN: 16, sarD: 15} // PAL 4:3
	odd := sourceInfo{w: 321, h: 181}
	for _, c := range []struct {
		in   sourceInfo
		opt  Options
		w, h int
	}{
		{sq, Options{}, 640, 360},
		{sq, Options{Width: 320}, 320, 180},
		{sq, Options{Height: 100}, 178, 100},
		{ana, Options{}, 768, 576},
		{ana, Options{Width: 384}, 384, 288},
		{odd, Options{}, 321, 181},
		{odd, Options{Width: 3}, 3, 2},
		{sourceInfo{w: 640, h: 360}, Options{Width: 100, Height: 7}, 100, 7},
	} {
		if w, h := outputSize(c.in, c.opt); w != c.w || h != c.h {
			t.Errorf("outputSize(%+v, %+v) = %dx%d, want %dx%d", c.in, c.opt, w, h, c.w, c.h)
		}
	}
}

func TestPackAnnexB(t *testing.T) {
	nalus := [][]byte{{0x67, 1, 2}, {}, {0x65, 3}}
	n, err := packedSize(media.CodecH264, nalus)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	pack(media.CodecH264, buf, nalus)
	if want := []byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x65, 3}; !bytes.Equal(buf, want) {
		t.Fatalf("packed % x, want % x", buf, want)
	}
}

func TestPackOBU(t *testing.T) {
	payload := bytes.Repeat([]byte{7}, 200)        // needs a 2-byte LEB128 size
	sized := []byte{0x12, 0x00}                    // temporal delimiter with size 0
	bare := append([]byte{0x34, 0x28}, payload...) // frame OBU, extension byte, no size field
	nalus := [][]byte{sized, bare}
	n, err := packedSize(media.CodecAV1, nalus)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	pack(media.CodecAV1, buf, nalus)
	want := append([]byte{0x12, 0x00, 0x36, 0x28, 0xc8, 0x01}, payload...)
	if !bytes.Equal(buf, want) {
		t.Fatalf("packed % x..., want % x...", buf[:8], want[:8])
	}
}

func TestCheckNALU(t *testing.T) {
	for _, c := range []struct {
		b  []byte
		ok bool
	}{
		{[]byte{0x65, 0, 0, 3, 0, 1}, true},
		{[]byte{0x65, 1, 0, 0}, true},       // ends in 00 00
		{[]byte{0x65, 1, 0, 0, 0, 0}, true}, // trailing zeros
		{[]byte{0x65, 0, 0, 1, 5}, false},
		{[]byte{0x65, 9, 0, 0, 0, 7}, false},
		{[]byte{0x65, 0, 0, 3, 0, 0, 2}, false},
		{[]byte{0xe5, 1}, false}, // forbidden_zero_bit
	} {
		err := checkNALU(c.b)
		if (err == nil) != c.ok {
			t.Errorf("checkNALU(% x) = %v", c.b, err)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("checkNALU(% x) = %v, want ErrCorrupt", c.b, err)
		}
	}
}

func TestCheckRandomAccess(t *testing.T) {
	sps, pps := []byte{0x67, 0x42}, []byte{0x68, 0xce}
	idr, p := []byte{0x65, 0x88}, []byte{0x41, 0x9a}
	recovery := []byte{0x06, 0x05, 0x02, 0xaa, 0xbb, 0x06, 0x01, 0xc4, 0x80} // user data, then recovery point
	for _, c := range []struct {
		codec media.Codec
		nalus [][]byte
		ok    bool
	}{
		{media.CodecH264, [][]byte{sps, pps, idr}, true},
		{media.CodecH264, [][]byte{idr}, false},
		{media.CodecH264, [][]byte{sps, pps, p}, false},
		{media.CodecH264, [][]byte{sps, pps, recovery, p}, true},                            // intra-refresh entry
		{media.CodecH265, [][]byte{{0x40, 1}, {0x42, 1}, {0x44, 1}, {0x26, 1, 0x80}}, true}, // IDR_W_RADL
		{media.CodecH265, [][]byte{{0x40, 1}, {0x42, 1}, {0x44, 1}, {0x2a, 1, 0x80}}, true}, // CRA
		{media.CodecH265, [][]byte{{0x40, 1}, {0x42, 1}, {0x44, 1}, {0x02, 1, 0x80}}, false},
		{media.CodecAV1, [][]byte{{0x12, 0}, {0x0a, 1, 0}, {0x32, 1, 0}}, true},
		{media.CodecAV1, [][]byte{{0x12, 0}, {0x32, 1, 0}}, false},
	} {
		err := checkRandomAccess(c.codec, c.nalus)
		if (err == nil) != c.ok {
			t.Errorf("%v % x: %v", c.codec, c.nalus, err)
		}
	}
}

func FuzzChecks(f *testing.F) {
	f.Add([]byte{0x67, 0x64, 0, 0x1f, 0xac, 0xd9, 0x40, 0x50})
	f.Add([]byte{0x06, 0x05, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		units := []media.AccessUnit{{NALUs: [][]byte{b, b}}}
		_ = checkH264Chain(units)
		_ = checkRandomAccess(media.CodecH264, units[0].NALUs)
		_ = checkRandomAccess(media.CodecAV1, units[0].NALUs)
		_ = checkNALU(b)
		_, _ = packedSize(media.CodecAV1, units[0].NALUs)
	})
}
