// Package decode turns compressed video access units into JPEG snapshots with FFmpeg's
// libavcodec (decode), libswscale (scaling and pixel formats, when needed) and libjpeg-turbo
// (JPEG encoding straight from YUV planes), called in process through a small cgo layer.
//
// A Decoder holds one decoder context per stream; each Decode call feeds a keyframe-started
// run of units in decode order, drains the decoder, keeps only the last unit's picture, and
// flushes, so calls are independent. Pictures the decoder flags as damaged, or whose chain
// saw a decode error, are refused with ErrCorrupt: livesnap never stores a fake image.
//
// Colour: decoded YUV is converted to full-range (JPEG/JFIF) 4:2:0. The source's range comes
// from the decoded frame (limited "tv" unless signalled full); 10-bit and 4:2:2/4:4:4 sources
// are converted to 8-bit 4:2:0. The YUV matrix is passed through unchanged (as the ffmpeg CLI
// does): a BT.709 source becomes a JPEG that viewers decode with BT.601, a small hue shift on
// saturated colours only.
package decode

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/livesnap/livesnap/internal/media"
)

var (
	// ErrCorrupt means the target picture was flagged corrupt or concealed by the decoder, a
	// unit in its chain failed to decode, or its reference chain was broken (units[0] is not a
	// clean random access point). Such a picture is never returned.
	ErrCorrupt = errors.New("decode: picture corrupt or reference chain broken")
	// ErrNoPicture means the decoder produced no picture for the target unit.
	ErrNoPicture = errors.New("decode: no picture for the target unit")
	// ErrUnsupported means this libavcodec cannot decode the codec.
	ErrUnsupported = errors.New("decode: codec not supported")
	// ErrClosed is returned by Decode after Close.
	ErrClosed = errors.New("decode: decoder closed")

	errNoUnits = errors.New("decode: no units")
)

// Limits on inputs (every input size bounded).
const (
	// MaxDimension bounds Options.Width/Height and the output size.
	MaxDimension = 8192
	// MaxUnits bounds the units of one Decode call (a 10 s GOP at 60 fps is 600).
	MaxUnits = 4096
	// DefaultQuality is used when Options.Quality is 0.
	DefaultQuality = 85
)

// Options shape the output image.
//
// Width and Height: both 0 keep the source's display size; one of them 0 keeps the aspect
// ratio (the other is derived and rounded to an even number); both set give exactly that size.
// The aspect ratio is the display aspect ratio: a non-square sample aspect ratio (anamorphic
// SD, some 1440x1080 streams) is applied while scaling, which costs nothing extra since every
// picture goes through the scaler anyway.
//
// Quality is libjpeg's 1..100 (0 means DefaultQuality).
type Options struct {
	Width, Height int
	Quality       int
}

// Picture is one encoded snapshot.
type Picture struct {
	JPEG          []byte
	Width, Height int
	PTS           time.Duration // the target unit's PTS
}

// Decoder decodes one stream's pictures on demand. Not safe for concurrent use; one per job.
type Decoder struct {
	s       *cstate
	cleanup runtime.Cleanup
}

// New returns a decoder for codec: H.264, H.265, or AV1 when libavcodec has a software AV1
// decoder (libdav1d, else libaom); otherwise an error wrapping ErrUnsupported.
func New(codec media.Codec) (*Decoder, error) {
	s, err := newCState(codec)
	if err != nil {
		return nil, err
	}
	d := &Decoder{s: s}
	// Safety net for a forgotten Close; Close is still the way to free memory promptly.
	d.cleanup = runtime.AddCleanup(d, func(s *cstate) { s.free() }, s)
	return d, nil
}

// Close frees all C memory. It is idempotent.
func (d *Decoder) Close() {
	if d.s == nil {
		return
	}
	d.cleanup.Stop()
	d.s.free()
	d.s = nil
}

// Decode feeds units in decode order (units[0] must be a Keyframe carrying its parameter
// sets, see media.AccessUnit) and returns the picture of the last unit (the target), encoded
// as a full-range JPEG. After it returns, the decoder is flushed and ready for an unrelated
// call.
//
// The target is identified by its position, not by comparing timestamps, so repeated source
// PTS cannot select the wrong picture; Picture.PTS is units[len(units)-1].PTS.
//
// Errors: ErrCorrupt (damage anywhere in the fed chain, including non-reference pictures,
// or units[0] not a random access point), ErrNoPicture, ErrClosed, or an argument error.
func (d *Decoder) Decode(units []media.AccessUnit, opt Options) (Picture, error) {
	s := d.s
	if s == nil {
		return Picture{}, ErrClosed
	}
	quality, err := checkOptions(opt)
	if err != nil {
		return Picture{}, err
	}
	if len(units) == 0 {
		return Picture{}, errNoUnits
	}
	if len(units) > MaxUnits {
		return Picture{}, fmt.Errorf("decode: %d units, more than %d", len(units), MaxUnits)
	}
	for i := range units {
		if c := units[i].Codec; c != s.codec && c != media.CodecUnknown {
			return Picture{}, fmt.Errorf("decode: unit %d is %v, decoder is %v", i, c, s.codec)
		}
	}
	if !units[0].Keyframe {
		return Picture{}, fmt.Errorf("%w: first unit is not a keyframe", ErrCorrupt)
	}
	if err := checkRandomAccess(s.codec, units[0].NALUs); err != nil {
		return Picture{}, err
	}
	if s.codec == media.CodecH264 {
		if err := checkH264Chain(units); err != nil {
			return Picture{}, err
		}
	}

	defer s.reset()
	r := &run{target: int64(len(units) - 1)}
	for i := range units {
		if err := s.send(r, i, &units[i]); err != nil {
			return Picture{}, err
		}
	}
	if err := s.send(r, -1, nil); err != nil { // drain: reordered pictures come out now
		return Picture{}, err
	}
	if r.damaged {
		return Picture{}, fmt.Errorf("%w: %s", ErrCorrupt, r.reason)
	}
	if !r.found {
		return Picture{}, fmt.Errorf("%w (%d units fed, %d pictures out)", ErrNoPicture, len(units), r.frames)
	}

	info := s.targetInfo()
	w, h := outputSize(info, opt)
	jpeg, err := s.encodeTarget(info, w, h, quality)
	if err != nil {
		return Picture{}, err
	}
	return Picture{JPEG: jpeg, Width: w, Height: h, PTS: units[len(units)-1].PTS}, nil
}

// checkOptions validates opt and returns the JPEG quality to use.
func checkOptions(opt Options) (int, error) {
	if opt.Width < 0 || opt.Height < 0 || opt.Width > MaxDimension || opt.Height > MaxDimension {
		return 0, fmt.Errorf("decode: output size %dx%d outside 0..%d", opt.Width, opt.Height, MaxDimension)
	}
	if opt.Quality < 0 || opt.Quality > 100 {
		return 0, fmt.Errorf("decode: quality %d outside 1..100", opt.Quality)
	}
	if opt.Quality == 0 {
		return DefaultQuality, nil
	}
	return opt.Quality, nil
}

// outputSize computes the JPEG's size from the source picture and the options.
func outputSize(info sourceInfo, opt Options) (w, h int) {
	// Display size: stretch the width by the sample aspect ratio.
	dw, dh := float64(info.w), float64(info.h)
	if info.sarN > 0 && info.sarD > 0 && info.sarN != info.sarD {
		dw = dw * float64(info.sarN) / float64(info.sarD)
	}
	switch {
	case opt.Width > 0 && opt.Height > 0:
		return opt.Width, opt.Height
	case opt.Width > 0:
		return opt.Width, even(float64(opt.Width) * dh / dw)
	case opt.Height > 0:
		return even(float64(opt.Height) * dw / dh), opt.Height
	case dw != float64(info.w):
		return even(dw), info.h
	}
	return info.w, info.h
}

// even rounds a derived dimension to the nearest even number within 2..MaxDimension, so
// 4:2:0 chroma planes cover it exactly.
func even(v float64) int {
	n := int(math.Round(v/2)) * 2
	return min(max(n, 2), MaxDimension)
}
