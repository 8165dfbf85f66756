package decode

import (
	"errors"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/bitstream"
	"github.com/livesnap/livesnap/internal/media"
)

var (
	specH264 = streamSpec{name: "h264", codec: media.CodecH264, w: 640, h: 360, withRef: true,
		input:  []string{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"},
		encode: []string{"-frames:v", "50", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p"}}
	specH265 = streamSpec{name: "h265", codec: media.CodecH265, w: 640, h: 360, withRef: true,
		input: []string{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"},
		encode: []string{"-frames:v", "50", "-c:v", "libx265", "-preset", "veryfast", "-g", "25", "-bf", "2",
			"-pix_fmt", "yuv420p", "-x265-params", "log-level=error"}}
	specH265Hash = streamSpec{name: "h265-hash", codec: media.CodecH265, w: 640, h: 360, withRef: true,
		input: []string{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"},
		encode: []string{"-frames:v", "5", "-c:v", "libx265", "-preset", "veryfast", "-g", "25", "-bf", "2",
			"-pix_fmt", "yuv420p", "-x265-params", "log-level=error:hash=1"}}
	specH265Main10 = streamSpec{name: "h265-10bit", codec: media.CodecH265, w: 320, h: 180, withRef: true,
		input: []string{"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"},
		encode: []string{"-frames:v", "10", "-c:v", "libx265", "-preset", "veryfast", "-g", "25", "-bf", "2",
			"-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error"}}
	specH264Odd = streamSpec{name: "h264-322x182", codec: media.CodecH264, w: 322, h: 182, withRef: true,
		input:  []string{"-f", "lavfi", "-i", "testsrc2=size=322x182:rate=25"},
		encode: []string{"-frames:v", "10", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p"}}
	// Odd width and height need a chroma format without subsampling.
	specH264Odd444 = streamSpec{name: "h264-321x181-444", codec: media.CodecH264, w: 321, h: 181, withRef: true,
		input:     []string{"-f", "lavfi", "-i", "testsrc2=size=322x182:rate=25"},
		refFilter: "format=yuv420p", // compare like with like: the JPEG is 4:2:0
		encode:    []string{"-vf", "format=yuv444p,crop=321:181:0:0", "-frames:v", "5", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2", "-pix_fmt", "yuv444p"}}
)

// TestKeyframe decodes each stream's first keyframe alone and compares it with ffmpeg's own
// decode of that frame.
func TestKeyframe(t *testing.T) {
	for _, sp := range []streamSpec{specH264, specH265, specH265Main10, specH264Odd, specH264Odd444} {
		t.Run(sp.name, func(t *testing.T) {
			t.Parallel()
			s := getStream(t, sp)
			d := newDecoder(t, s.codec)
			p, err := d.Decode(s.units[:1], Options{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Width != sp.w || p.Height != sp.h {
				t.Fatalf("picture is %dx%d, want %dx%d", p.Width, p.Height, sp.w, sp.h)
			}
			if p.PTS != s.units[0].PTS {
				t.Errorf("PTS %v, want %v", p.PTS, s.units[0].PTS)
			}
			img := decodeJPEG(t, p)
			v, vy := psnr(t, img, s.ref[0]), psnrY(t, img, s.ref[0])
			if sp.refFilter != "" {
				v = vy // 4:4:4 noise: chroma resampling differences dominate RGB
			}
			if v < 30 {
				t.Errorf("PSNR against ffmpeg's frame 0 is %.1f dB (luma %.1f), want >= 30", v, vy)
			} else {
				t.Logf("%s: %d bytes, PSNR %.1f dB (luma %.1f)", sp.name, len(p.JPEG), v, vy)
			}
		})
	}
}

// TestReorderedTarget decodes GOP prefixes ending in B and P pictures and checks that the
// picture returned is exactly the target's (not a neighbour that came out of the reorder
// buffer), then that the decoder is reusable across unrelated calls.
func TestReorderedTarget(t *testing.T) {
	for _, sp := range []streamSpec{specH264, specH265} {
		t.Run(sp.name, func(t *testing.T) {
			t.Parallel()
			s := getStream(t, sp)
			d := newDecoder(t, s.codec)
			checked, bframes := 0, 0
			// Every unit of the first GOP but the keyframe, then a few again in another order
			// to show calls are independent.
			var idx []int
			for i := 1; i < len(s.units) && !s.units[i].Keyframe; i++ {
				idx = append(idx, i)
			}
			idx = append(idx, 7, 3, 12, 5)
			for _, k := range idx {
				n := s.order[k]
				if n == 0 || n+1 >= len(s.ref) {
					continue
				}
				p, err := d.Decode(s.units[:k+1], Options{})
				if err != nil {
					t.Fatalf("unit %d (frame %d): %v", k, n, err)
				}
				if p.PTS != s.units[k].PTS {
					t.Fatalf("unit %d: PTS %v, want %v", k, p.PTS, s.units[k].PTS)
				}
				img := decodeJPEG(t, p)
				same, prev, next := psnr(t, img, s.ref[n]), psnr(t, img, s.ref[n-1]), psnr(t, img, s.ref[n+1])
				if same < 30 || same < prev+3 || same < next+3 {
					t.Errorf("unit %d (frame %d): PSNR vs frame %d/%d/%d = %.1f/%.1f/%.1f dB: not clearly frame %d",
						k, n, n-1, n, n+1, prev, same, next, n)
				}
				checked++
				if n < k { // shown before later-decoded pictures: a B picture
					bframes++
				}
			}
			if bframes == 0 {
				t.Fatal("stream has no B pictures in the first GOP; the test proves nothing")
			}
			t.Logf("%d targets checked, %d of them B pictures", checked, bframes)

			// The second GOP on its own: an unrelated call after the first GOP's.
			g := -1
			for i := 1; i < len(s.units); i++ {
				if s.units[i].Keyframe {
					g = i
					break
				}
			}
			if g < 0 {
				t.Fatal("no second keyframe")
			}
			k := g + 3
			p, err := d.Decode(s.units[g:k+1], Options{})
			if err != nil {
				t.Fatalf("second GOP: %v", err)
			}
			if v := psnr(t, decodeJPEG(t, p), s.ref[s.order[k]]); v < 30 {
				t.Errorf("second GOP unit %d: PSNR %.1f dB", k, v)
			}
		})
	}
}

// solidStream encodes a single-colour picture.
func solidStream(t *testing.T, name, colour, pixFmt string, extra ...string) *stream {
	return getStream(t, streamSpec{name: name, codec: media.CodecH264, w: 320, h: 240,
		input:  []string{"-f", "lavfi", "-i", "color=c=" + colour + ":size=320x240:rate=25"},
		encode: append([]string{"-frames:v", "1", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", pixFmt}, extra...)})
}

// TestColourRange checks that limited-range video comes out full range (white is 255, not
// 235) and that full-range video is not expanded twice.
func TestColourRange(t *testing.T) {
	cases := []struct {
		name, colour, pixFmt string
		extra                []string
		want                 [3]float64
	}{
		{"white-tv", "white", "yuv420p", nil, [3]float64{255, 255, 255}},
		{"grey-tv", "0x808080", "yuv420p", nil, [3]float64{128, 128, 128}},
		{"black-tv", "black", "yuv420p", nil, [3]float64{0, 0, 0}},
		{"red-tv", "0xff0000", "yuv420p", nil, [3]float64{255, 0, 0}},
		{"grey-pc", "0x808080", "yuvj420p", nil, [3]float64{128, 128, 128}},
		{"white-pc", "white", "yuvj420p", nil, [3]float64{255, 255, 255}},
		// Full-range samples in plain yuv420p, signalled only by the VUI range flag.
		{"grey-pc-tagged", "0x808080", "yuv420p", []string{"-vf", "scale=out_range=pc", "-color_range", "pc"}, [3]float64{128, 128, 128}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := solidStream(t, "solid-"+c.name, c.colour, c.pixFmt, c.extra...)
			d := newDecoder(t, s.codec)
			p, err := d.Decode(s.units[:1], Options{Quality: 95})
			if err != nil {
				t.Fatal(err)
			}
			r, g, b := meanRGB(decodeJPEG(t, p))
			tol := 3.0
			if c.name == "red-tv" {
				tol = 6 // the red corner of the gamut clips a little through 4:2:0 and JPEG
			}
			for i, v := range [3]float64{r, g, b} {
				if v < c.want[i]-tol || v > c.want[i]+tol {
					t.Fatalf("mean RGB %.1f,%.1f,%.1f, want %v", r, g, b, c.want)
				}
			}
		})
	}
}

// damage returns a copy of unit u with its last slice NAL unit changed by f.
func damage(u media.AccessUnit, f func([]byte) []byte) media.AccessUnit {
	u.NALUs = append([][]byte(nil), u.NALUs...)
	for j := len(u.NALUs) - 1; j >= 0; j-- {
		n := u.NALUs[j]
		vcl := n[0]&0x1f >= 1 && n[0]&0x1f <= 5
		if u.Codec == media.CodecH265 {
			vcl = (n[0]>>1)&0x3f <= 31
		}
		if vcl {
			u.NALUs[j] = f(append([]byte(nil), n...))
			break
		}
	}
	return u
}

// TestCorrupt: damaged keyframes and broken reference chains give errors, never a picture.
func TestCorrupt(t *testing.T) {
	type mutation struct {
		name string
		f    func(b []byte, at int) []byte
	}
	truncate := mutation{"truncated", func(b []byte, at int) []byte { return b[:at] }}
	flip := mutation{"flipped", func(b []byte, at int) []byte {
		for k := at; k < at+16 && k < len(b); k++ {
			b[k] ^= 0xff
		}
		return b
	}}
	flipBit := mutation{"bit-flipped", func(b []byte, at int) []byte { b[at] ^= 0x10; return b }}
	zeroGap := mutation{"zero-filled", func(b []byte, at int) []byte {
		for k := at; k < at+64 && k < len(b); k++ {
			b[k] = 0
		}
		return b
	}}
	cases := []struct {
		spec streamSpec
		muts []mutation
	}{
		{specH264, []mutation{truncate, flip, flipBit, zeroGap}},
		// FFmpeg 5.1's HEVC decoder reports no concealment: truncation and byte flips are
		// caught reliably only with decoded-picture-hash SEI (x265 --hash=1); a zeroed gap is
		// caught by our own NAL check in any stream. See errRecognition.
		{specH265Hash, []mutation{truncate}},
		{specH265, []mutation{zeroGap}},
	}
	for _, c := range cases {
		t.Run(c.spec.name, func(t *testing.T) {
			t.Parallel()
			s := getStream(t, c.spec)
			d := newDecoder(t, s.codec)
			for _, m := range c.muts {
				for pct := 5; pct < 100; pct += 10 {
					u := damage(s.units[0], func(b []byte) []byte { return m.f(b, len(b)*pct/100) })
					p, err := d.Decode([]media.AccessUnit{u}, Options{})
					if err == nil {
						t.Errorf("%s at %d%%: got a %d-byte picture, want an error", m.name, pct, len(p.JPEG))
					} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNoPicture) {
						t.Errorf("%s at %d%%: %v, want ErrCorrupt or ErrNoPicture", m.name, pct, err)
					}
				}
			}
			// Damage in a reference picture poisons the target that depends on it.
			if c.spec.name == "h264" {
				units := append([]media.AccessUnit(nil), s.units[:4]...)
				units[0] = damage(units[0], func(b []byte) []byte { return truncate.f(b, len(b)/2) })
				if _, err := d.Decode(units, Options{}); !errors.Is(err, ErrCorrupt) {
					t.Errorf("target after a damaged keyframe: %v, want ErrCorrupt", err)
				}
			}

			// A P picture without its keyframe, flagged honestly.
			p := s.units[1]
			if _, err := d.Decode([]media.AccessUnit{p}, Options{}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("P picture alone: %v, want ErrCorrupt", err)
			}
			// A source lying about it: parameter sets in front, Keyframe set.
			p.NALUs = append(append([][]byte(nil), s.units[0].NALUs[:len(paramTypes(s.codec))]...), p.NALUs...)
			p.Keyframe = true
			if _, err := d.Decode([]media.AccessUnit{p}, Options{}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("P picture posing as keyframe: %v, want ErrCorrupt", err)
			}
			// A lost reference picture: the keyframe, then a P picture whose reference (the
			// first P) is missing. libavcodec's H.264 decoder conceals this silently; the
			// frame_num check must catch it. (H.265: not detected, see checkH264Chain.)
			if s.codec == media.CodecH264 {
				var ps []int
				for i := 1; i < len(s.units) && len(ps) < 2; i++ {
					if s.units[i].NALUs[len(s.units[i].NALUs)-1][0]&0x60 != 0 { // reference picture
						ps = append(ps, i)
					}
				}
				units := []media.AccessUnit{s.units[0], s.units[ps[1]]}
				if _, err := d.Decode(units, Options{}); !errors.Is(err, ErrCorrupt) {
					t.Errorf("missing reference picture: %v, want ErrCorrupt", err)
				}
			}
			// After all that the decoder still works.
			if _, err := d.Decode(s.units[:1], Options{}); err != nil {
				t.Fatalf("clean keyframe after damaged calls: %v", err)
			}
		})
	}
}

// TestScaling covers the size options and the quality knob.
func TestScaling(t *testing.T) {
	s := getStream(t, specH264)
	d := newDecoder(t, s.codec)
	for _, c := range []struct {
		opt  Options
		w, h int
	}{
		{Options{Width: 320}, 320, 180},
		{Options{Height: 90}, 160, 90},
		{Options{Width: 101}, 101, 56}, // derived side rounded to even
		{Options{Width: 200, Height: 200}, 200, 200},
		{Options{Width: 1280}, 1280, 720},
		{Options{}, 640, 360},
	} {
		p, err := d.Decode(s.units[:1], c.opt)
		if err != nil {
			t.Fatalf("%+v: %v", c.opt, err)
		}
		if p.Width != c.w || p.Height != c.h {
			t.Fatalf("%+v: %dx%d, want %dx%d", c.opt, p.Width, p.Height, c.w, c.h)
		}
		decodeJPEG(t, p)
	}
	prev := 0
	for _, q := range []int{20, 50, 75, 90, 100} {
		p, err := d.Decode(s.units[:1], Options{Quality: q})
		if err != nil {
			t.Fatal(err)
		}
		decodeJPEG(t, p)
		if len(p.JPEG) <= prev {
			t.Fatalf("quality %d: %d bytes, not larger than %d at the previous quality", q, len(p.JPEG), prev)
		}
		prev = len(p.JPEG)
	}
	for _, bad := range []Options{{Width: -1}, {Height: MaxDimension + 1}, {Quality: 101}, {Quality: -5}} {
		if _, err := d.Decode(s.units[:1], bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestAPI covers misuse and lifecycle.
func TestAPI(t *testing.T) {
	if _, err := New(media.CodecUnknown); !errors.Is(err, ErrUnsupported) {
		t.Errorf("New(unknown): %v", err)
	}
	s := getStream(t, specH264)
	d, err := New(media.CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode(nil, Options{}); err == nil {
		t.Error("no units accepted")
	}
	u := s.units[0]
	u.Codec = media.CodecH265
	if _, err := d.Decode([]media.AccessUnit{u}, Options{}); err == nil {
		t.Error("wrong codec accepted")
	}
	d.Close()
	d.Close()
	if _, err := d.Decode(s.units[:1], Options{}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestAV1 runs when this libavcodec has a software AV1 decoder and ffmpeg an AV1 encoder.
func TestAV1(t *testing.T) {
	d, err := New(media.CodecAV1)
	if errors.Is(err, ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := getStream(t, streamSpec{name: "av1", codec: media.CodecAV1, w: 320, h: 180, withRef: true,
		input: []string{"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"},
		encode: []string{"-frames:v", "6", "-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime",
			"-g", "25", "-pix_fmt", "yuv420p"}})
	for _, k := range []int{0, len(s.units) - 1} {
		p, err := d.Decode(s.units[:k+1], Options{})
		if err != nil {
			t.Fatalf("unit %d: %v", k, err)
		}
		if v := psnr(t, decodeJPEG(t, p), s.ref[s.order[k]]); v < 30 {
			t.Errorf("unit %d: PSNR %.1f dB", k, v)
		}
	}
	// OBUs without obu_has_size_field (allowed for the last OBU of an element) are framed
	// by the packer.
	var units []media.AccessUnit
	for _, u := range s.units[:3] {
		var obus [][]byte
		for _, o := range u.NALUs {
			_, hdr := obuHeader(o)
			_, l := bitstream.ReadLEB128(o[hdr:])
			bare := append(append([]byte{o[0] &^ 0x02}, o[1:hdr]...), o[hdr+l:]...)
			obus = append(obus, bare)
		}
		u.NALUs = obus
		units = append(units, u)
	}
	p, err := d.Decode(units, Options{})
	if err != nil {
		t.Fatalf("unsized OBUs: %v", err)
	}
	if v := psnr(t, decodeJPEG(t, p), s.ref[s.order[2]]); v < 30 {
		t.Errorf("unsized OBUs: PSNR %.1f dB", v)
	}
	// A frame without its sequence header / keyframe.
	if _, err := d.Decode(s.units[1:2], Options{}); err == nil {
		t.Error("AV1 inter frame alone gave a picture")
	}
}

// rss returns the process's resident set size in kB.
func rss(t testing.TB) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			v, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:")), " kB"))
			return v
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestLeak decodes a keyframe 2000 times through every path that allocates C memory (size
// changes that rebuild the scaler and encoder, corrupt input, decoder re-creation) and checks
// that RSS stays flat. A leaked packet, frame or JPEG would add tens of MB.
func TestLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	s := getStream(t, specH264)
	bad := damage(s.units[0], func(b []byte) []byte { return b[:len(b)/2] })
	gop := s.units[:6]
	d, err := New(media.CodecH264)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Close() }()
	iter := func(i int) {
		opt := Options{}
		if i%2 == 1 {
			opt.Width = 320 // alternate sizes: scaler and encoder are rebuilt each call
		}
		units := s.units[:1]
		switch {
		case i%10 == 3:
			units = []media.AccessUnit{bad}
		case i%10 == 7:
			units = gop
		}
		_, err := d.Decode(units, opt)
		if (err != nil) != (i%10 == 3) {
			t.Fatalf("iteration %d: %v", i, err)
		}
		if i%100 == 99 {
			d.Close()
			if d, err = New(media.CodecH264); err != nil {
				t.Fatal(err)
			}
		}
	}
	type mem struct{ rss, cheap int }
	settle := func() mem {
		runtime.GC()
		debug.FreeOSMemory()
		return mem{rss(t), int(CHeapInUse() / 1024)}
	}
	for i := 0; i < 200; i++ { // warm up: pools, glibc arenas, sizes of every path
		iter(i)
	}
	// Two halves: a leak grows memory linearly, so the second half grows as much as the
	// first, while allocator settling shows up in the first half only. The smallest leak that
	// matters, one unfreed input packet (7.5 kB here), adds 7.5 MB per half; a frame or an
	// encoder leaks far more. The C heap figure (glibc mallinfo2) is exact; RSS also sees Go's
	// heap and, under -race, the race detector's shadow memory, so it is only checked without.
	m0 := settle()
	start := time.Now()
	for i := 0; i < 1000; i++ {
		iter(i)
	}
	m1 := settle()
	for i := 1000; i < 2000; i++ {
		iter(i)
	}
	m2 := settle()
	t.Logf("2000 decodes in %v; C heap %d -> %d -> %d kB; RSS %d -> %d -> %d kB",
		time.Since(start).Round(time.Millisecond), m0.cheap, m1.cheap, m2.cheap, m0.rss, m1.rss, m2.rss)
	if grow := m2.cheap - m1.cheap; grow > 1024 {
		t.Errorf("C heap grew by %d kB over the second 1000 decodes", grow)
	}
	if grow := m2.cheap - m0.cheap; grow > 2048 {
		t.Errorf("C heap grew by %d kB over 2000 decodes", grow)
	}
	if raceEnabled {
		return
	}
	// 6 MB: below the smallest leak that matters (7.5 MB a half), above the few MB Go's heap
	// and glibc's arenas wander by between two settled points.
	if grow := m2.rss - m1.rss; grow > 6*1024 {
		t.Errorf("RSS grew by %d kB over the second 1000 decodes", grow)
	}
	if grow := m2.rss - m0.rss; grow > 16*1024 {
		t.Errorf("RSS grew by %d kB over 2000 decodes", grow)
	}
}

// BenchmarkDecodeKeyframe1080p: decode one 1080p H.264 IDR and encode the JPEG (quality 85,
// source size): the per-snapshot floor.
func BenchmarkDecodeKeyframe1080p(b *testing.B) {
	s := getStream(b, streamSpec{name: "bench-1080p", codec: media.CodecH264, w: 1920, h: 1080,
		input:  []string{"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25"},
		encode: []string{"-frames:v", "1", "-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p"}})
	d := newDecoder(b, media.CodecH264)
	units := s.units[:1]
	if _, err := d.Decode(units, Options{}); err != nil {
		b.Fatal(err)
	}
	var size int
	b.ResetTimer()
	for b.Loop() {
		p, err := d.Decode(units, Options{})
		if err != nil {
			b.Fatal(err)
		}
		size = len(p.JPEG)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	b.ReportMetric(float64(size), "jpeg-bytes")
}
