package decode

// This file is the only place that talks to FFmpeg. The C preamble holds a few helpers for what
// cgo cannot express (error macros, const-qualified plane arrays); every other call is made from
// Go so the control flow stays readable and testable.

/*
#cgo pkg-config: libavcodec libavutil libswscale libturbojpeg
#cgo CFLAGS: -O3
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
#include <turbojpeg.h>

// Error codes are function-like macros; an enum makes them visible to Go as constants.
enum {
	LS_EAGAIN = AVERROR(EAGAIN),
	LS_EOF = AVERROR_EOF,
	LS_ENOMEM = AVERROR(ENOMEM),
	LS_EINVAL = AVERROR(EINVAL),
};

// ls_open_decoder allocates and opens a decoder context configured the way Decode relies on:
// one thread (one frame of latency, scales better across many streams), no output of frames
// the decoder itself knows to be broken, and the codec-specific error sensitivity chosen in Go.
static int ls_open_decoder(const AVCodec *codec, int err_recognition, AVCodecContext **out) {
	AVCodecContext *c = avcodec_alloc_context3(codec);
	if (!c)
		return AVERROR(ENOMEM);
	c->thread_count = 1;
	c->flags &= ~AV_CODEC_FLAG_OUTPUT_CORRUPT;
	c->flags2 &= ~AV_CODEC_FLAG2_SHOW_ALL;
	c->err_recognition |= err_recognition;
	int ret = avcodec_open2(c, codec, NULL);
	if (ret < 0) {
		avcodec_free_context(&c);
		return ret;
	}
	*out = c;
	return 0;
}

// ls_expand_range turns limited-range ("tv") 8-bit 4:2:0 src into full-range (JPEG) dst of
// the same size: Y' = (Y-16)*255/219 and C' = (C-128)*255/224+128, clamped, in 8.8 fixed
// point on 16 bits (298/256 and 291/256) so that the compiler vectorises the loops with eight
// or more samples per instruction (-O3 above): about three times faster than a table lookup,
// within one level of exact rounding.
static void ls_expand_range(const AVFrame *src, AVFrame *dst) {
	for (int p = 0; p < 3; p++) {
		int w = p == 0 ? src->width : (src->width + 1) / 2;
		int h = p == 0 ? src->height : (src->height + 1) / 2;
		uint16_t top = p == 0 ? 219 : 224, mul = p == 0 ? 298 : 291, add = p == 0 ? 128 : 200;
		for (int y = 0; y < h; y++) {
			const uint8_t *restrict in = src->data[p] + (ptrdiff_t)y * src->linesize[p];
			uint8_t *restrict out = dst->data[p] + (ptrdiff_t)y * dst->linesize[p];
			for (int x = 0; x < w; x++) {
				uint16_t v = in[x] < 16 ? 0 : in[x] - 16;
				v = v > top ? top : v;
				out[x] = (uint8_t)((uint16_t)(v * mul + add) >> 8);
			}
		}
	}
}

// ls_compress encodes full-range 4:2:0 f as a baseline JPEG with libjpeg-turbo, straight from
// its planes (no RGB round trip). *buf is allocated by libjpeg-turbo: free it with tjFree.
static int ls_compress(tjhandle tj, const AVFrame *f, int quality, unsigned char **buf, unsigned long *size) {
	const unsigned char *planes[3] = {f->data[0], f->data[1], f->data[2]};
	int strides[3] = {f->linesize[0], f->linesize[1], f->linesize[2]};
	*buf = NULL;
	*size = 0;
	return tjCompressFromYUVPlanes(tj, planes, f->width, strides, f->height, TJSAMP_420, buf, size, quality, 0);
}

// ls_open_scaler creates a converter to full-range YUV 4:2:0 at the output size. The ranges
// must be known when the context is initialised: set later with sws_setColorspaceDetails,
// libswscale 6 keeps the plain-copy path it chose for same-size, same-format conversions and
// silently skips the range expansion. The YUV matrix is left alone (only YUV<->RGB uses it).
static struct SwsContext *ls_open_scaler(int sw, int sh, int sfmt, int src_range, int dw, int dh) {
	struct SwsContext *s = sws_alloc_context();
	if (!s)
		return NULL;
	av_opt_set_int(s, "srcw", sw, 0);
	av_opt_set_int(s, "srch", sh, 0);
	av_opt_set_int(s, "src_format", sfmt, 0);
	av_opt_set_int(s, "src_range", src_range, 0);
	av_opt_set_int(s, "dstw", dw, 0);
	av_opt_set_int(s, "dsth", dh, 0);
	av_opt_set_int(s, "dst_format", AV_PIX_FMT_YUV420P, 0);
	av_opt_set_int(s, "dst_range", 1, 0);
	av_opt_set_int(s, "sws_flags", SWS_BICUBIC | SWS_ACCURATE_RND, 0);
	if (sws_init_context(s, NULL, NULL) < 0) {
		sws_freeContext(s);
		return NULL;
	}
	return s;
}

// ls_scale converts the whole picture src into the (allocated, writable) picture dst.
static int ls_scale(struct SwsContext *s, const AVFrame *src, AVFrame *dst) {
	return sws_scale(s, (const uint8_t *const *)src->data, src->linesize, 0, src->height,
	                 dst->data, dst->linesize);
}

// ls_frame_prepare (re)allocates picture memory for dst unless it already has writable
// memory of the right shape.
static int ls_frame_prepare(AVFrame *dst, int w, int h) {
	if (dst->buf[0] && dst->width == w && dst->height == h && av_frame_is_writable(dst))
		return 0;
	av_frame_unref(dst);
	dst->format = AV_PIX_FMT_YUV420P;
	dst->width = w;
	dst->height = h;
	return av_frame_get_buffer(dst, 0);
}

// ls_c_heap_in_use reports bytes allocated from the C heap (glibc: arena chunks in use plus
// mmapped blocks), which is where av_malloc'd packets, frames and contexts live.
static long long ls_c_heap_in_use(void) {
	struct mallinfo2 mi = mallinfo2();
	return (long long)mi.uordblks + (long long)mi.hblkhd;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/livesnap/livesnap/internal/media"
)

// avError turns a negative libav return code into a Go error.
func avError(op string, code C.int) error {
	var buf [128]C.char
	C.av_strerror(code, &buf[0], C.size_t(len(buf)))
	return fmt.Errorf("decode: %s: %s (%d)", op, C.GoString(&buf[0]), int(code))
}

// findDecoder picks the libavcodec software decoder for codec.
func findDecoder(codec media.Codec) (*C.AVCodec, error) {
	var c *C.AVCodec
	switch codec {
	case media.CodecH264:
		c = C.avcodec_find_decoder(C.AV_CODEC_ID_H264)
	case media.CodecH265:
		c = C.avcodec_find_decoder(C.AV_CODEC_ID_HEVC)
	case media.CodecAV1:
		// FFmpeg 5.1's native "av1" decoder only drives hardware accelerators; without one it
		// fails on the first frame. Use a software decoder by name.
		for _, name := range []string{"libdav1d", "libaom-av1"} {
			cs := C.CString(name)
			c = C.avcodec_find_decoder_by_name(cs)
			C.free(unsafe.Pointer(cs))
			if c != nil {
				break
			}
		}
		if c == nil {
			return nil, fmt.Errorf("%w: av1 (this libavcodec has no software AV1 decoder: libdav1d or libaom)", ErrUnsupported)
		}
	default:
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, codec)
	}
	if c == nil {
		return nil, fmt.Errorf("%w: %v (no decoder in this libavcodec)", ErrUnsupported, codec)
	}
	return c, nil
}

// errRecognition chooses how touchy the decoder is.
//
// H.264 conceals damaged slices and reports it in decode_error_flags, which Decode checks, so
// the default suffices; "explode" would also refuse pictures over harmless SEI quirks. (It
// conceals a missing reference picture silently; checkH264Chain catches that.)
//
// H.265 (FFmpeg 5.1) reports nothing on a damaged picture: the only signals are slice-parse
// errors, which it swallows unless AV_EF_EXPLODE makes them packet errors, and the optional
// decoded-picture-hash SEI (MD5), verified with AV_EF_CRCCHECK. CABAC can still decode
// damaged data without noticing, so detection is incomplete for H.265 without hash SEI.
//
// AV1: dav1d reports errors itself; explode keeps any error fatal.
func errRecognition(codec media.Codec) C.int {
	if codec == media.CodecH264 {
		return 0
	}
	return C.AV_EF_EXPLODE | C.AV_EF_CRCCHECK
}

// cstate owns every piece of C memory of one Decoder. It is separate from Decoder so a
// runtime cleanup can free it without resurrecting the Decoder.
type cstate struct {
	codec media.Codec
	dec   *C.AVCodecContext
	pkt   *C.AVPacket // input packet, refilled per unit
	frame *C.AVFrame  // scratch for avcodec_receive_frame
	tgt   *C.AVFrame  // the target picture once found

	sws    *C.struct_SwsContext
	swsKey scaleKey
	scaled *C.AVFrame // scaler or range expansion output / encoder input

	tj C.tjhandle // libjpeg-turbo compressor
}

type scaleKey struct {
	sw, sh, sfmt, srange, dw, dh int
}

func newCState(codec media.Codec) (*cstate, error) {
	c, err := findDecoder(codec)
	if err != nil {
		return nil, err
	}
	s := &cstate{codec: codec}
	if ret := C.ls_open_decoder(c, errRecognition(codec), &s.dec); ret < 0 {
		return nil, avError("open "+codec.String()+" decoder", ret)
	}
	s.pkt = C.av_packet_alloc()
	s.frame = C.av_frame_alloc()
	s.tgt = C.av_frame_alloc()
	s.scaled = C.av_frame_alloc()
	s.tj = C.tjInitCompress()
	if s.pkt == nil || s.frame == nil || s.tgt == nil || s.scaled == nil || s.tj == nil {
		s.free()
		return nil, errors.New("decode: out of memory")
	}
	return s, nil
}

// free releases everything; safe to call twice.
func (s *cstate) free() {
	C.avcodec_free_context(&s.dec)
	C.av_packet_free(&s.pkt)
	C.av_frame_free(&s.frame)
	C.av_frame_free(&s.tgt)
	C.av_frame_free(&s.scaled)
	if s.sws != nil {
		C.sws_freeContext(s.sws)
		s.sws = nil
	}
	if s.tj != nil {
		C.tjDestroy(s.tj)
		s.tj = nil
	}
}

// reset returns the decoder to a clean state after a call, whatever happened in it.
func (s *cstate) reset() {
	C.av_packet_unref(s.pkt)
	C.av_frame_unref(s.frame)
	C.av_frame_unref(s.tgt)
	C.avcodec_flush_buffers(s.dec)
}

// run is the bookkeeping of one Decode call.
type run struct {
	target  int64 // pts (= unit index) of the target
	found   bool  // a clean target frame sits in s.tgt
	damaged bool  // the decoder reported an error or a damaged picture somewhere in the chain
	reason  string
	frames  int // frames returned by the decoder
}

func (r *run) damage(reason string) {
	if !r.damaged {
		r.damaged, r.reason = true, reason
	}
}

// send feeds one unit (or drains, when units is nil) and collects the frames that come out.
// Unit i carries pts = i, so the target is recognised exactly even if the source's
// timestamps repeat.
func (s *cstate) send(r *run, idx int, u *media.AccessUnit) error {
	var pkt *C.AVPacket
	if u != nil {
		n, err := packedSize(s.codec, u.NALUs)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // an empty packet would mean "drain"
		}
		if ret := C.av_new_packet(s.pkt, C.int(n)); ret < 0 {
			return avError("allocate packet", ret)
		}
		pack(s.codec, unsafe.Slice((*byte)(unsafe.Pointer(s.pkt.data)), n), u.NALUs)
		s.pkt.pts = C.int64_t(idx)
		if u.Keyframe {
			s.pkt.flags |= C.AV_PKT_FLAG_KEY
		}
		pkt = s.pkt
	}
	defer C.av_packet_unref(s.pkt)
	for attempt := 0; ; attempt++ {
		ret := C.avcodec_send_packet(s.dec, pkt)
		if ret == C.LS_EAGAIN && attempt == 0 {
			// Output is pending: take it, then the packet will be accepted.
			if err := s.receive(r); err != nil {
				return err
			}
			continue
		}
		if ret < 0 && ret != C.LS_EOF {
			// Invalid data in a unit the target may depend on.
			r.damage(avError(fmt.Sprintf("decode unit %d", idx), ret).Error())
		}
		break
	}
	return s.receive(r)
}

// receive takes every frame the decoder has ready, keeps the target and drops the rest.
func (s *cstate) receive(r *run) error {
	for {
		ret := C.avcodec_receive_frame(s.dec, s.frame)
		if ret == C.LS_EAGAIN || ret == C.LS_EOF {
			return nil
		}
		if ret < 0 {
			r.damage(avError("receive frame", ret).Error())
			return nil
		}
		r.frames++
		f := s.frame
		bad := f.flags&C.AV_FRAME_FLAG_CORRUPT != 0 || f.decode_error_flags != 0
		if bad {
			r.damage(fmt.Sprintf("decoder flagged picture %d (decode_error_flags=%#x, flags=%#x)",
				int64(f.pts), int(f.decode_error_flags), int(f.flags)))
		}
		if int64(f.pts) == r.target && !bad {
			C.av_frame_unref(s.tgt)
			C.av_frame_move_ref(s.tgt, f)
			r.found = true
		} else {
			C.av_frame_unref(f)
		}
	}
}

// sourceInfo describes the decoded target picture.
type sourceInfo struct {
	w, h       int
	format     int
	fullRange  bool
	sarN, sarD int
}

func (s *cstate) targetInfo() sourceInfo {
	f := s.tgt
	fmtv := int(f.format)
	full := f.color_range == C.AVCOL_RANGE_JPEG
	// Deprecated "J" formats imply full range; give the scaler the plain format and say so.
	switch C.enum_AVPixelFormat(f.format) {
	case C.AV_PIX_FMT_YUVJ420P:
		fmtv, full = int(C.AV_PIX_FMT_YUV420P), true
	case C.AV_PIX_FMT_YUVJ422P:
		fmtv, full = int(C.AV_PIX_FMT_YUV422P), true
	case C.AV_PIX_FMT_YUVJ444P:
		fmtv, full = int(C.AV_PIX_FMT_YUV444P), true
	case C.AV_PIX_FMT_YUVJ440P:
		fmtv, full = int(C.AV_PIX_FMT_YUV440P), true
	}
	return sourceInfo{
		w: int(f.width), h: int(f.height), format: fmtv, fullRange: full,
		sarN: int(f.sample_aspect_ratio.num), sarD: int(f.sample_aspect_ratio.den),
	}
}

// encodeTarget converts the target picture to w x h full-range 4:2:0 and encodes it as a
// JPEG of the given quality. The common case, an 8-bit 4:2:0 source kept at its size, skips
// the scaler: its planes go to the encoder as they are (full range) or through a range
// expansion (limited range). The result is copied into Go memory.
func (s *cstate) encodeTarget(info sourceInfo, w, h, quality int) ([]byte, error) {
	src := s.tgt
	sameShape := info.format == int(C.AV_PIX_FMT_YUV420P) && info.w == w && info.h == h
	switch {
	case sameShape && info.fullRange:
		// Already what a JPEG holds.
	case sameShape:
		if ret := C.ls_frame_prepare(s.scaled, C.int(w), C.int(h)); ret < 0 {
			return nil, avError("allocate picture", ret)
		}
		C.ls_expand_range(s.tgt, s.scaled)
		src = s.scaled
	default:
		key := scaleKey{info.w, info.h, info.format, b2i(info.fullRange), w, h}
		if s.sws == nil || s.swsKey != key {
			if s.sws != nil {
				C.sws_freeContext(s.sws)
				s.sws = nil
			}
			s.sws = C.ls_open_scaler(C.int(info.w), C.int(info.h), C.int(info.format),
				C.int(key.srange), C.int(w), C.int(h))
			if s.sws == nil {
				return nil, fmt.Errorf("decode: cannot convert %dx%d %s to %dx%d",
					info.w, info.h, pixFmtName(info.format), w, h)
			}
			s.swsKey = key
		}
		if ret := C.ls_frame_prepare(s.scaled, C.int(w), C.int(h)); ret < 0 {
			return nil, avError("allocate picture", ret)
		}
		if ret := C.ls_scale(s.sws, s.tgt, s.scaled); ret < 0 {
			return nil, avError("scale", ret)
		}
		src = s.scaled
	}
	var buf *C.uchar
	var size C.ulong
	if C.ls_compress(s.tj, src, C.int(quality), &buf, &size) != 0 {
		if buf != nil {
			C.tjFree(buf)
		}
		return nil, fmt.Errorf("decode: encode JPEG: %s", C.GoString(C.tjGetErrorStr2(s.tj)))
	}
	defer C.tjFree(buf)
	return C.GoBytes(unsafe.Pointer(buf), C.int(size)), nil
}

func pixFmtName(f int) string {
	n := C.av_get_pix_fmt_name(C.enum_AVPixelFormat(f))
	if n == nil {
		return fmt.Sprintf("pix_fmt(%d)", f)
	}
	return C.GoString(n)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CHeapInUse returns the C heap bytes in use (glibc), where FFmpeg's packets, frames and
// contexts live: for leak checks and the process's metrics.
func CHeapInUse() int64 { return int64(C.ls_c_heap_in_use()) }

// SetLogLevel sets libav*'s process-wide log level using ffmpeg's -loglevel names ("quiet",
// "panic", "fatal", "error", "warning", "info", "verbose", "debug"). The decoder logs every
// damaged slice at "error", which across hundreds of streams is noise; services usually want
// "fatal" or "quiet". It affects every FFmpeg user in the process (libavformat too).
func SetLogLevel(level string) error {
	var l C.int
	switch level {
	case "quiet":
		l = C.AV_LOG_QUIET
	case "panic":
		l = C.AV_LOG_PANIC
	case "fatal":
		l = C.AV_LOG_FATAL
	case "error":
		l = C.AV_LOG_ERROR
	case "warning":
		l = C.AV_LOG_WARNING
	case "info":
		l = C.AV_LOG_INFO
	case "verbose":
		l = C.AV_LOG_VERBOSE
	case "debug":
		l = C.AV_LOG_DEBUG
	default:
		return fmt.Errorf("decode: unknown log level %q", level)
	}
	C.av_log_set_level(l)
	return nil
}
