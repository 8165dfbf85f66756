package source

import (
	"bytes"
	"net/url"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/media"
)

func TestSplitAnnexB(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want [][]byte
		err  bool
	}{
		{"3- and 4-byte start codes", []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2}, [][]byte{{0x67, 1}, {0x68, 2}}, false},
		{"leading garbage dropped", []byte{9, 9, 0, 0, 1, 0x65, 7}, [][]byte{{0x65, 7}}, false},
		{"trailing zeros trimmed", []byte{0, 0, 1, 0x65, 7, 0, 0, 0, 0, 1, 0x41, 1, 0}, [][]byte{{0x65, 7}, {0x41, 1}}, false},
		{"empty NAL units skipped", []byte{0, 0, 1, 0, 0, 1, 0x41}, [][]byte{{0x41}}, false},
		{"no start code", []byte{0x65, 1, 2}, nil, true},
		{"empty", nil, nil, true},
	}
	for _, tt := range tests {
		got, err := splitAnnexB(tt.in)
		if (err != nil) != tt.err || !equalNALUs(got, tt.want) {
			t.Errorf("%s: got %x, %v; want %x, err %v", tt.name, got, err, tt.want, tt.err)
		}
	}
	many := bytes.Repeat([]byte{0, 0, 1, 0x41}, maxNALUs+2)
	if _, err := splitAnnexB(many); err == nil {
		t.Error("more than maxNALUs NAL units accepted")
	}
}

func TestSplitLengthPrefixed(t *testing.T) {
	for _, size := range []int{1, 2, 4} {
		var buf []byte
		for _, n := range [][]byte{{0x67, 1, 2}, {0x68}, {0x65, 9, 9, 9}} {
			l := len(n)
			for i := size - 1; i >= 0; i-- {
				buf = append(buf, byte(l>>(8*i)))
			}
			buf = append(buf, n...)
		}
		got, err := splitLengthPrefixed(buf, size)
		if err != nil || len(got) != 3 || !bytes.Equal(got[2], []byte{0x65, 9, 9, 9}) {
			t.Errorf("size %d: %x, %v", size, got, err)
		}
		if _, err := splitLengthPrefixed(buf[:len(buf)-1], size); err == nil {
			t.Errorf("size %d: truncated unit accepted", size)
		}
	}
	if _, err := splitLengthPrefixed([]byte{0, 0, 0, 1, 5}, 3); err == nil {
		t.Error("length size 3 accepted")
	}
	if _, err := splitLengthPrefixed([]byte{0xff, 0xff, 0xff, 0xff, 5}, 4); err == nil {
		t.Error("length beyond the data accepted")
	}
}

func TestSplitOBUs(t *testing.T) {
	seq := []byte{1<<3 | 2, 2, 0xaa, 0xbb}       // sequence header, size 2
	frame := []byte{6<<3 | 2 | 4, 0x10, 1, 0xcc} // frame with extension header, size 1
	got, err := splitOBUs(append(append([]byte{}, seq...), frame...))
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], seq) || !bytes.Equal(got[1], frame) {
		t.Fatalf("got %x, %v", got, err)
	}
	for _, bad := range [][]byte{{1 << 3, 0xaa}, {1<<3 | 2, 5, 0}, {1<<3 | 2, 0x80}} {
		if _, err := splitOBUs(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestParseCodecConfig(t *testing.T) {
	sps, pps := []byte{0x67, 0x42, 0xc0, 0x1e}, []byte{0x68, 0xce, 0x3c, 0x80}
	avcc := append([]byte{1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, byte(len(sps))}, sps...)
	avcc = append(append(avcc, 1, 0, byte(len(pps))), pps...)
	cfg, err := parseCodecConfig(kindH264, avcc)
	if err != nil || cfg.lengthSize != 4 || len(cfg.params) != 2 || !bytes.Equal(cfg.params[0], sps) || !bytes.Equal(cfg.params[1], pps) {
		t.Fatalf("avcC: %+v, %v", cfg, err)
	}

	vps, hsps, hpps := []byte{0x40, 1, 2}, []byte{0x42, 1, 3}, []byte{0x44, 1, 4}
	hvcc := make([]byte, 22)
	hvcc[0], hvcc[21] = 1, 0xf0|1 // lengthSizeMinusOne = 1
	hvcc = append(hvcc, 3)
	for _, n := range [][]byte{vps, hsps, hpps} {
		hvcc = append(hvcc, 0x80|n[0]>>1, 0, 1, 0, byte(len(n)))
		hvcc = append(hvcc, n...)
	}
	cfg, err = parseCodecConfig(kindH265, hvcc)
	if err != nil || cfg.lengthSize != 2 || len(cfg.params) != 3 || !bytes.Equal(cfg.params[2], hpps) {
		t.Fatalf("hvcC: %+v, %v", cfg, err)
	}

	annexB := append(append([]byte{0, 0, 0, 1}, sps...), append([]byte{0, 0, 1}, pps...)...)
	cfg, err = parseCodecConfig(kindH264, annexB)
	if err != nil || cfg.lengthSize != 0 || len(cfg.params) != 2 {
		t.Fatalf("Annex-B: %+v, %v", cfg, err)
	}

	seq := []byte{1<<3 | 2, 2, 0xaa, 0xbb}
	cfg, err = parseCodecConfig(kindAV1, append([]byte{0x81, 0, 0, 0}, seq...))
	if err != nil || len(cfg.params) != 1 || !bytes.Equal(cfg.params[0], seq) {
		t.Fatalf("av1C: %+v, %v", cfg, err)
	}

	for _, bad := range [][]byte{avcc[:9], hvcc[:30], {1, 2, 3}} {
		if _, err := parseCodecConfig(kindH265, bad); err == nil && len(bad) > 3 {
			t.Errorf("truncated record %x accepted", bad)
		}
	}
	if _, err := parseCodecConfig(kindH264, avcc[:len(avcc)-2]); err == nil {
		t.Error("truncated avcC accepted")
	}
}

func TestUnitBuilderAV1Keyed(t *testing.T) {
	b := newUnitBuilder(media.CodecAV1)
	seq, frame := []byte{1<<3 | 2, 1, 0}, []byte{6<<3 | 2, 1, 0}
	if au, ok := b.av1Keyed([][]byte{frame}, true); !ok || au.Keyframe {
		t.Errorf("flagged key frame without any sequence header known: ok %v key %v", ok, au.Keyframe)
	}
	b.setParam(av1OBUSequenceHeader, seq)
	au, ok := b.av1Keyed([][]byte{frame}, true)
	if !ok || !au.Keyframe || len(au.NALUs) != 2 || !bytes.Equal(au.NALUs[0], seq) {
		t.Errorf("flagged key frame: ok %v key %v NALUs %x", ok, au.Keyframe, au.NALUs)
	}
	if au, _ := b.av1Keyed([][]byte{frame}, false); au.Keyframe || len(au.NALUs) != 1 {
		t.Errorf("inter frame: key %v NALUs %d", au.Keyframe, len(au.NALUs))
	}
}

func TestSRTOptions(t *testing.T) {
	q, _ := url.ParseQuery("streamid=%23%21%3A%3Ar%3Dlive%2Fx%2Cm%3Drequest&latency=200000&passphrase=0123456789")
	opts, err := srtOptions(q)
	if err != nil || opts["streamid"] != "#!::r=live/x,m=request" || opts["mode"] != "caller" || opts["latency"] != "200000" {
		t.Fatalf("%v, %v", opts, err)
	}
}

func TestNotePlaylist(t *testing.T) {
	h := &httpIO{}
	h.notePlaylist([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n"))
	h.notePlaylist([]byte("#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r\n"))
	if d := time.Duration(h.targetDuration.Load()); d != 6*time.Second {
		t.Errorf("target duration %v, want the longest, 6 s", d)
	}
	h.notePlaylist([]byte("#EXT-X-TARGETDURATION:100000\n"))
	if d := time.Duration(h.targetDuration.Load()); d != maxTargetDuration {
		t.Errorf("target duration %v, want the bound %v", d, maxTargetDuration)
	}
}

func equalNALUs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FuzzBitstream: the packet and configuration parsers never panic and stay within their
// input.
func FuzzBitstream(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2}, byte(0))
	f.Add([]byte{1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 2, 0x67, 1, 1, 0, 1, 0x68}, byte(1))
	f.Add([]byte{0x81, 0, 0, 0, 1<<3 | 2, 1, 0}, byte(2))
	f.Add([]byte{0, 0, 0, 3, 0x65, 1, 2}, byte(4))
	f.Fuzz(func(t *testing.T, data []byte, sel byte) {
		total := len(data)
		check := func(nalus [][]byte) {
			n := 0
			for _, x := range nalus {
				n += len(x)
			}
			if n > total {
				t.Fatalf("%d bytes of NAL units from %d bytes", n, total)
			}
		}
		if nalus, err := splitAnnexB(data); err == nil {
			check(nalus)
		}
		if nalus, err := splitLengthPrefixed(data, int(sel%5)); err == nil {
			check(nalus)
		}
		if obus, err := splitOBUs(data); err == nil {
			check(obus)
		}
		for _, k := range []codecKind{kindH264, kindH265, kindAV1} {
			if cfg, err := parseCodecConfig(k, data); err == nil {
				check(cfg.params)
			}
		}
	})
}
