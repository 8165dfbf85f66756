package decode

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/bitstream"
	"github.com/livesnap/livesnap/internal/media"
	"github.com/livesnap/livesnap/internal/testenv"
)

// testDir holds the generated streams, shared by all tests of one run (see TestMain).
var testDir string

func TestMain(m *testing.M) {
	_ = SetLogLevel("quiet") // damaged-stream tests would otherwise fill the output
	d, err := os.MkdirTemp("", "livesnap-decode-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// run executes an external tool under a timeout (some ffmpeg encoder/muxer combinations hang
// instead of failing) and returns its stdout.
func runTool(t testing.TB, timeout time.Duration, name string, args ...string) []byte {
	t.Helper()
	_, err := exec.LookPath(name)
	testenv.Require(t, err == nil, name)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	runTool(t, 90*time.Second, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)...)
}

// stream is a generated test stream as a source would deliver it, plus ffmpeg's own decode.
type stream struct {
	codec media.Codec
	raw   string // Annex-B / OBU file
	units []media.AccessUnit
	order []int // order[i] = presentation index of unit i (decode order)
	w, h  int
	ref   [][]byte // ffmpeg's decode, RGB24, presentation order (nil unless asked)
}

type streamSpec struct {
	name      string
	codec     media.Codec
	input     []string // ffmpeg input arguments
	encode    []string // ffmpeg encoder arguments
	w, h      int
	withRef   bool
	refFilter string // filter applied before ffmpeg's reference RGB conversion
}

var (
	streamsMu sync.Mutex
	streams   = map[string]*streamOnce{}
)

type streamOnce struct {
	once sync.Once
	s    *stream
	err  string
}

// getStream generates a stream once per test run (tests share it).
func getStream(t testing.TB, spec streamSpec) *stream {
	t.Helper()
	streamsMu.Lock()
	o := streams[spec.name]
	if o == nil {
		o = &streamOnce{}
		streams[spec.name] = o
	}
	streamsMu.Unlock()
	o.once.Do(func() {
		// Run on a throwaway T so a failure is reported to every caller, not just the first.
		ok := false
		defer func() {
			if !ok && o.s == nil && o.err == "" {
				o.err = "generation of " + spec.name + " failed"
			}
		}()
		o.s = makeStream(t, spec)
		ok = true
	})
	if o.s == nil {
		t.Fatal(o.err)
	}
	return o.s
}

// makeStream encodes into Matroska (which records each packet's pts), copies the elementary
// stream out as Annex-B/OBU, splits that back into access units with our own parser like a
// source would, and takes the pts from ffprobe to know each unit's presentation index.
func makeStream(t testing.TB, sp streamSpec) *stream {
	dir := filepath.Join(testDir, sp.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mkv := filepath.Join(dir, "src.mkv")
	args := append(append([]string{}, sp.input...), sp.encode...)
	ffmpeg(t, append(args, "-an", "-f", "matroska", mkv)...)

	format := map[media.Codec]string{media.CodecH264: "h264", media.CodecH265: "hevc", media.CodecAV1: "obu"}[sp.codec]
	raw := filepath.Join(dir, "es."+format)
	ffmpeg(t, "-i", mkv, "-c:v", "copy", "-f", format, raw)
	data, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}

	var units []media.AccessUnit
	if sp.codec == media.CodecAV1 {
		units = splitOBU(data)
	} else {
		units = splitAnnexB(sp.codec, data)
	}

	out := runTool(t, 30*time.Second, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts,flags", "-of", "csv=p=0", mkv)
	var pts []int64
	var keys []bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("ffprobe line %q: %v", sc.Text(), err)
		}
		pts = append(pts, v)
		keys = append(keys, strings.HasPrefix(f[1], "K"))
	}
	if len(pts) != len(units) {
		t.Fatalf("%s: split into %d access units, container has %d packets", sp.name, len(units), len(pts))
	}
	sorted := append([]int64(nil), pts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	s := &stream{codec: sp.codec, raw: raw, units: units, w: sp.w, h: sp.h}
	for i := range units {
		if units[i].Keyframe != keys[i] {
			t.Fatalf("%s: unit %d keyframe=%v, container says %v", sp.name, i, units[i].Keyframe, keys[i])
		}
		units[i].PTS = time.Duration(pts[i]) * time.Millisecond // Matroska: 1 ms time base
		units[i].DTS = units[i].PTS
		s.order = append(s.order, sort.Search(len(sorted), func(k int) bool { return sorted[k] >= pts[i] }))
	}
	if sp.withRef {
		rgb := filepath.Join(dir, "ref.rgb")
		args := []string{"-i", mkv, "-fps_mode", "passthrough"}
		if sp.refFilter != "" {
			args = append(args, "-vf", sp.refFilter)
		}
		ffmpeg(t, append(args, "-f", "rawvideo", "-pix_fmt", "rgb24", rgb)...)
		all, err := os.ReadFile(rgb)
		if err != nil {
			t.Fatal(err)
		}
		fs := sp.w * sp.h * 3
		if len(all) != fs*len(units) {
			t.Fatalf("%s: reference has %d bytes, want %d frames of %d", sp.name, len(all), len(units), fs)
		}
		for i := 0; i < len(units); i++ {
			s.ref = append(s.ref, all[i*fs:(i+1)*fs])
		}
	}
	return s
}

// splitNALUs cuts an Annex-B byte stream at its start codes.
func splitNALUs(data []byte) [][]byte {
	var nalus [][]byte
	start := -1
	for i := 0; i+2 < len(data); i++ {
		if data[i] == 0 && data[i+1] == 0 && data[i+2] == 1 {
			if start >= 0 {
				nalus = append(nalus, bytes.TrimRight(data[start:i], "\x00"))
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(data) {
		nalus = append(nalus, bytes.TrimRight(data[start:], "\x00"))
	}
	return nalus
}

// splitAnnexB groups NAL units into access units the way H.264/H.265 define the boundary: a
// new unit starts at an AUD/parameter set/prefix SEI, or at a slice that is the first of its
// picture, once the current unit already has a picture. Keyframes (IDR/IRAP) get the latest
// parameter sets in front if they lack them, as the AccessUnit contract requires.
func splitAnnexB(codec media.Codec, data []byte) []media.AccessUnit {
	var units []media.AccessUnit
	var cur [][]byte
	hasVCL, key := false, false
	params := map[int][]byte{} // latest VPS/SPS/PPS by NAL type (single-id streams)
	flush := func() {
		if len(cur) == 0 {
			return
		}
		u := media.AccessUnit{Codec: codec, NALUs: cur, Keyframe: key}
		if key {
			have := map[int]bool{}
			for _, n := range cur {
				have[nalType(codec, n)] = true
			}
			var pre [][]byte
			for _, t := range paramTypes(codec) {
				if !have[t] && params[t] != nil {
					pre = append(pre, params[t])
				}
			}
			u.NALUs = append(pre, cur...)
		}
		units = append(units, u)
		cur, hasVCL, key = nil, false, false
	}
	for _, n := range splitNALUs(data) {
		if len(n) < 3 {
			continue
		}
		t := nalType(codec, n)
		var vcl, first, prefix, irap bool
		if codec == media.CodecH264 {
			vcl = t >= 1 && t <= 5
			first = vcl && n[1]&0x80 != 0 // first_mb_in_slice == 0 (ue(v) "1")
			prefix = t == 6 || t == 7 || t == 8 || t == 9 || (t >= 14 && t <= 18)
			irap = t == 5
		} else {
			vcl = t <= 31
			first = vcl && n[2]&0x80 != 0 // first_slice_segment_in_pic_flag
			prefix = (t >= 32 && t <= 35) || t == 39 || (t >= 41 && t <= 44) || (t >= 48 && t <= 55)
			irap = t >= 16 && t <= 23
		}
		if hasVCL && (prefix || first) {
			flush()
		}
		for _, p := range paramTypes(codec) {
			if t == p {
				params[t] = n
			}
		}
		cur = append(cur, n)
		hasVCL = hasVCL || vcl
		key = key || irap
	}
	flush()
	return units
}

func nalType(codec media.Codec, n []byte) int {
	if codec == media.CodecH264 {
		return int(n[0] & 0x1f)
	}
	return int(n[0]>>1) & 0x3f
}

func paramTypes(codec media.Codec) []int {
	if codec == media.CodecH264 {
		return []int{7, 8}
	}
	return []int{32, 33, 34}
}

// splitOBU cuts a low-overhead AV1 stream (every OBU sized) at temporal delimiters; a temporal
// unit with a sequence header is a keyframe in these test streams (libaom repeats it on key
// frames).
func splitOBU(data []byte) []media.AccessUnit {
	var units []media.AccessUnit
	for len(data) > 0 {
		_, hdr := obuHeader(data)
		size, l := bitstream.ReadLEB128(data[hdr:])
		n := hdr + l + int(size)
		obu := data[:n]
		data = data[n:]
		typ := (obu[0] >> 3) & 0x0f
		if typ == 2 || len(units) == 0 { // temporal delimiter starts a unit
			units = append(units, media.AccessUnit{Codec: media.CodecAV1})
		}
		u := &units[len(units)-1]
		u.NALUs = append(u.NALUs, obu)
		if typ == 1 {
			u.Keyframe = true
		}
	}
	return units
}

// decodeJPEG decodes a snapshot with Go's decoder and checks its size.
func decodeJPEG(t testing.TB, p Picture) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(p.JPEG))
	if err != nil {
		t.Fatalf("JPEG does not decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() != p.Width || b.Dy() != p.Height {
		t.Fatalf("JPEG is %dx%d, Picture says %dx%d", b.Dx(), b.Dy(), p.Width, p.Height)
	}
	return img
}

// psnr compares an image with an RGB24 reference of the same size (over R, G and B).
func psnr(t testing.TB, img image.Image, ref []byte) float64 {
	t.Helper()
	b := img.Bounds()
	if len(ref) != b.Dx()*b.Dy()*3 {
		t.Fatalf("reference size %d does not match %dx%d", len(ref), b.Dx(), b.Dy())
	}
	return testenv.PSNR(img, ref)
}

func rgbAt(img image.Image, x, y int) (r, g, b uint8) { return testenv.RGBAt(img, x, y) }

// meanRGB averages an image's colour.
func meanRGB(img image.Image) (r, g, b float64) {
	bd := img.Bounds()
	n := 0.0
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			rr, gg, bb := rgbAt(img, x, y)
			r, g, b = r+float64(rr), g+float64(gg), b+float64(bb)
			n++
		}
	}
	return r / n, g / n, b / n
}

func newDecoder(t testing.TB, c media.Codec) *Decoder {
	t.Helper()
	d, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// presentation returns the unit index whose presentation index is n.
func (s *stream) unitFor(n int) int {
	for i, o := range s.order {
		if o == n {
			return i
		}
	}
	return -1
}

// psnrY compares luma only (the JPEG's Y plane against BT.601 Y of the RGB reference): for
// sources with full-resolution chroma, where 4:2:0 and chroma upsampling differences would
// dominate an RGB comparison.
func psnrY(t testing.TB, img image.Image, ref []byte) float64 {
	t.Helper()
	yc, ok := img.(*image.YCbCr)
	if !ok {
		t.Fatalf("JPEG decoded to %T, want *image.YCbCr", img)
	}
	b := yc.Bounds()
	var sum float64
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			ry := 0.299*float64(ref[i]) + 0.587*float64(ref[i+1]) + 0.114*float64(ref[i+2])
			d := float64(yc.Y[yc.YOffset(x, y)]) - ry
			sum += d * d
			i += 3
		}
	}
	mse := sum / float64(b.Dx()*b.Dy())
	if mse == 0 {
		return 99
	}
	return 10 * math.Log10(255*255/mse)
}
