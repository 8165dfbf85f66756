package avformat

// This file is the Go side of the cgo layer: every C call and every callback from C. The C
// side is shim.c; nothing else in the package touches C.

/*
#cgo pkg-config: libavformat libavcodec libavutil
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/cgo"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Demuxer is one open input. ReadPacket is for one goroutine at a time; Close may be called
// from any goroutine, also while ReadPacket blocks.
type Demuxer struct {
	cfg    Config
	ctx    context.Context
	handle cgo.Handle

	ioCtx    context.Context // Go-side reads; cancelled by stop
	ioCancel context.CancelFunc
	stopCtx  func() bool
	deadline atomic.Int64 // UnixNano of the current deadline, 0 none (for Go-side reads)

	mu     sync.Mutex // guards c's lifetime and the fields below
	c      *C.ls_demux
	busy   bool // a C call is running (outside mu)
	closed bool

	opened  atomic.Bool // Open has returned: opens through IO are no longer counted
	opens   atomic.Int32
	errMu   sync.Mutex
	ioErr   error // first error of a Go-side open or read (why the demuxer gave up)
	urlErr  error // why CheckURL refused
	streams []StreamInfo
	keep    int  // the stream Keep chose, -1 for all
	dirty   bool // keep changed: apply before the next read
}

// Open opens cfg.URL with the forced format, probes the streams and returns the Demuxer.
// ctx cancellation aborts Open and, later, closes the Demuxer.
func Open(ctx context.Context, cfg Config) (*Demuxer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.URL == "" || len(cfg.URL) > MaxURLLength || strings.ContainsRune(cfg.URL, 0) {
		return nil, fmt.Errorf("%w: URL empty or longer than %d bytes", ErrURLRefused, MaxURLLength)
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxOpens <= 0 {
		cfg.MaxOpens = DefaultMaxOpens
	}
	if cfg.MaxPacketSize <= 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	d := &Demuxer{cfg: cfg, ctx: ctx, keep: -1}
	d.handle = newHandle(d)
	curl := C.CString(cfg.URL)
	defer C.free(unsafe.Pointer(curl))
	d.c = C.ls_demux_new(C.uintptr_t(d.handle), b2i(cfg.IO != nil), b2i(cfg.CheckURL != nil), curl)
	if d.c == nil {
		deleteHandle(d.handle)
		return nil, errors.New("avformat: out of memory")
	}
	d.ioCtx, d.ioCancel = context.WithCancel(context.Background())
	d.stopCtx = context.AfterFunc(ctx, d.stop)
	d.setDeadline(cfg.Deadline)

	if err := d.open(); err != nil {
		d.Close()
		return nil, err
	}
	d.opened.Store(true)
	return d, nil
}

func (d *Demuxer) open() error {
	url := d.cfg.URL
	if d.cfg.IO != nil {
		// The top-level input is opened here, in Go, like every nested one.
		r, final, err := d.openReader(nested{req: Request{URL: url, End: -1, Main: true}})
		if err != nil {
			return d.goFailure("open", err)
		}
		if final != "" {
			url = final
		}
		if ret := C.ls_demux_set_input(d.c, C.uintptr_t(r.handle)); ret < 0 {
			return d.failure("open", ret)
		}
	}

	var opts *C.AVDictionary
	defer C.av_dict_free(&opts)
	keys := make([]string, 0, len(d.cfg.Options))
	for k := range d.cfg.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ck, cv := C.CString(k), C.CString(d.cfg.Options[k])
		ret := C.ls_dict_set(&opts, ck, cv)
		C.free(unsafe.Pointer(ck))
		C.free(unsafe.Pointer(cv))
		if ret < 0 {
			return d.failure("set option "+k, ret)
		}
	}
	curl, cformat := C.CString(url), C.CString(d.cfg.Format)
	defer C.free(unsafe.Pointer(curl))
	defer C.free(unsafe.Pointer(cformat))

	if ret := d.call(func(c *C.ls_demux) C.int { return C.ls_demux_open(c, curl, cformat, &opts) }); ret < 0 {
		return d.failure("open "+d.cfg.Format, ret)
	}
	if left := C.ls_dict_keys(opts); left != nil {
		s := C.GoString(left)
		C.free(unsafe.Pointer(left))
		return fmt.Errorf("avformat: options not recognised by %s: %s", d.cfg.Format, s)
	}
	if n := int(C.ls_demux_nb_streams(d.c)); n > d.cfg.MaxStreams {
		return fmt.Errorf("%w: %d streams (limit %d)", ErrTooLarge, n, d.cfg.MaxStreams)
	}
	if ret := d.call(func(c *C.ls_demux) C.int { return C.ls_demux_find_info(c) }); ret < 0 {
		return d.failure("find stream info", ret)
	}
	return d.refreshStreams()
}

// refreshStreams copies the stream descriptions (called while no C call runs).
func (d *Demuxer) refreshStreams() error {
	n := int(C.ls_demux_nb_streams(d.c))
	if n > d.cfg.MaxStreams {
		return fmt.Errorf("%w: %d streams (limit %d)", ErrTooLarge, n, d.cfg.MaxStreams)
	}
	for i := len(d.streams); i < n; i++ {
		var s C.ls_stream
		C.ls_demux_stream(d.c, C.int(i), &s)
		info := StreamInfo{Index: i, Codec: C.GoString(s.codec_name), Width: int(s.width), Height: int(s.height),
			PixelFormat: int(s.format), Profile: int(s.profile)}
		switch s.media_type {
		case C.AVMEDIA_TYPE_VIDEO:
			info.Type = MediaVideo
		case C.AVMEDIA_TYPE_AUDIO:
			info.Type = MediaAudio
		}
		if s.extradata != nil && s.extradata_size > 0 {
			info.Extradata = C.GoBytes(unsafe.Pointer(s.extradata), s.extradata_size)
		}
		d.streams = append(d.streams, info)
	}
	return nil
}

// Streams describes the input's streams as probed by Open.
func (d *Demuxer) Streams() []StreamInfo { return append([]StreamInfo(nil), d.streams...) }

// Keep discards every stream but index (libavformat drops their packets early; HLS stops
// fetching playlists that only carry discarded streams). Streams that appear later are
// discarded too.
func (d *Demuxer) Keep(index int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keep, d.dirty = index, true
}

// ReadPacket returns the next packet, of the kept stream once Keep was called. deadline
// (zero: none) bounds the call.
func (d *Demuxer) ReadPacket(deadline time.Time) (Packet, error) {
	if !d.enter() {
		return Packet{}, ErrClosed
	}
	defer d.leave()
	d.setDeadlineLocked(deadline)
	if d.dirty {
		C.ls_demux_keep_only(d.c, C.int(d.keep))
		d.dirty = false
	}
	for {
		var p C.ls_packet
		ret := C.ls_demux_read(d.c, &p)
		if ret < 0 {
			return Packet{}, d.failure("read", ret)
		}
		if p.failing != 0 {
			// Leftovers flushed after the input failed: report the failure now, not after
			// one more timeout.
			C.ls_demux_unref(d.c)
			return Packet{}, d.failure("read", C.LS_EIO)
		}
		if int(p.stream) >= len(d.streams) {
			// A stream that appeared while reading (FLV, MPEG-TS): describe and discard it.
			if err := d.refreshStreams(); err != nil {
				C.ls_demux_unref(d.c)
				return Packet{}, err
			}
			if d.keep >= 0 {
				C.ls_demux_keep_only(d.c, C.int(d.keep))
			}
		}
		if d.keep >= 0 && int(p.stream) != d.keep {
			C.ls_demux_unref(d.c)
			continue
		}
		if int(p.size) > d.cfg.MaxPacketSize || int(p.new_extradata_size) > d.cfg.MaxPacketSize {
			n := int(p.size)
			C.ls_demux_unref(d.c)
			return Packet{}, fmt.Errorf("%w: packet of %d bytes (limit %d)", ErrTooLarge, n, d.cfg.MaxPacketSize)
		}
		pkt := Packet{Stream: int(p.stream), HasPTS: p.has_pts != 0, HasDTS: p.has_dts != 0, Key: p.key != 0,
			PTS: time.Duration(p.pts_us) * time.Microsecond, DTS: time.Duration(p.dts_us) * time.Microsecond}
		if p.size > 0 {
			pkt.Data = C.GoBytes(unsafe.Pointer(p.data), p.size)
		}
		if p.new_extradata_size > 0 {
			pkt.NewExtradata = C.GoBytes(unsafe.Pointer(p.new_extradata), p.new_extradata_size)
		}
		C.ls_demux_unref(d.c)
		return pkt, nil
	}
}

// Close stops every blocking call (a pending ReadPacket returns ErrClosed within about
// 100 ms) and frees everything once no call runs. Idempotent; safe from any goroutine.
func (d *Demuxer) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	d.stopLocked()
	if !d.busy {
		d.freeLocked()
	}
	d.mu.Unlock()
	d.stopCtx()
}

// stop is the context cancellation hook: like Close, but the Demuxer stays to be closed.
func (d *Demuxer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
}

func (d *Demuxer) stopLocked() {
	if d.c != nil {
		C.ls_demux_stop(d.c)
	}
	d.ioCancel()
}

func (d *Demuxer) freeLocked() {
	if d.c == nil {
		return
	}
	C.ls_demux_free(d.c)
	d.c = nil
	deleteHandle(d.handle)
}

// enter marks a C call as running; false when closed.
func (d *Demuxer) enter() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.c == nil {
		return false
	}
	d.busy = true
	return true
}

// leave ends a C call; a Close that came meanwhile frees now.
func (d *Demuxer) leave() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.busy = false
	if d.closed {
		d.freeLocked()
	}
}

// call runs one blocking C call on d.c with the busy protocol.
func (d *Demuxer) call(f func(c *C.ls_demux) C.int) C.int {
	if !d.enter() {
		return C.LS_EXIT
	}
	defer d.leave()
	return f(d.c)
}

func (d *Demuxer) setDeadline(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setDeadlineLocked(t)
}

// setDeadlineLocked arms both halves: the C interrupt callback and Go-side reads. The
// caller holds mu or is the goroutine running the C call.
func (d *Demuxer) setDeadlineLocked(t time.Time) {
	if t.IsZero() {
		d.deadline.Store(0)
		C.ls_demux_set_deadline(d.c, 0)
		return
	}
	d.deadline.Store(t.UnixNano())
	C.ls_demux_set_deadline(d.c, C.int64_t(max(time.Until(t).Microseconds(), 1)))
}

func (d *Demuxer) deadlinePassed() bool {
	dl := d.deadline.Load()
	return dl != 0 && time.Now().UnixNano() >= dl
}

func (d *Demuxer) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// failure explains a negative libavformat return code: closed, cancelled, refused URL and
// deadline come first (libavformat reports them all as some error), then the code itself.
// It runs inside the call (d.c valid). The deadline is checked on both clocks: the C side
// fires on the monotonic clock a few microseconds before the Go-side wall-clock deadline.
func (d *Demuxer) failure(op string, ret C.int) error {
	if d.isClosed() {
		return ErrClosed
	}
	if err := d.ctx.Err(); err != nil {
		return fmt.Errorf("avformat: %s: %w", op, err)
	}
	d.errMu.Lock()
	urlErr, ioErr := d.urlErr, d.ioErr
	d.errMu.Unlock()
	if urlErr != nil {
		return fmt.Errorf("avformat: %s: %w", op, urlErr)
	}
	if d.deadlinePassed() || (d.c != nil && C.ls_demux_deadline_passed(d.c) != 0) {
		if ioErr != nil {
			return fmt.Errorf("%w during %s (last I/O error: %v)", ErrDeadline, op, ioErr)
		}
		return fmt.Errorf("%w during %s", ErrDeadline, op)
	}
	e := &Error{Op: op, Code: int(ret)}
	if ioErr != nil {
		// The Go-side failure is the cause: libavformat only reports some AVERROR for it.
		return fmt.Errorf("%w: %w", e, ioErr)
	}
	return e
}

// goFailure explains a failure of a Go-side open (before libavformat ran).
func (d *Demuxer) goFailure(op string, err error) error {
	if d.isClosed() {
		return ErrClosed
	}
	if cerr := d.ctx.Err(); cerr != nil {
		return fmt.Errorf("avformat: %s: %w", op, cerr)
	}
	if d.deadlinePassed() {
		return fmt.Errorf("%w during %s: %v", ErrDeadline, op, err)
	}
	return fmt.Errorf("avformat: %s: %w", op, err)
}

func (d *Demuxer) noteIOErr(err error) {
	d.errMu.Lock()
	defer d.errMu.Unlock()
	if d.ioErr == nil || (errors.Is(err, ErrURLRefused) && !errors.Is(d.ioErr, ErrURLRefused)) {
		d.ioErr = err
	}
}

// Error is a failed libavformat call.
type Error struct {
	Op   string
	Code int // the AVERROR code
}

// Error names the operation and libavutil's message for the code.
func (e *Error) Error() string {
	var buf [128]C.char
	C.av_strerror(C.int(e.Code), &buf[0], C.size_t(len(buf)))
	return fmt.Sprintf("avformat: %s: %s", e.Op, C.GoString(&buf[0]))
}

// Unwrap maps the code to this package's errors or, for AVERROR(errno), a syscall.Errno.
func (e *Error) Unwrap() error {
	switch C.int(e.Code) {
	case C.LS_EOF:
		return ErrEOF
	case C.LS_INVALIDDATA:
		return ErrInvalidData
	case C.LS_HTTP_BAD_REQUEST, C.LS_HTTP_UNAUTHORIZED, C.LS_HTTP_FORBIDDEN, C.LS_HTTP_NOT_FOUND,
		C.LS_HTTP_OTHER_4XX, C.LS_HTTP_SERVER_ERROR:
		return ErrRemote
	}
	if e.Code < 0 && e.Code > -4096 {
		return syscall.Errno(-e.Code)
	}
	return nil
}

// avCode is the AVERROR a Go-side failure is reported to libavformat as.
func avCode(err error) C.int {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		switch c := se.Code; {
		case c == 400:
			return C.LS_HTTP_BAD_REQUEST
		case c == 401:
			return C.LS_HTTP_UNAUTHORIZED
		case c == 403:
			return C.LS_HTTP_FORBIDDEN
		case c == 404:
			return C.LS_HTTP_NOT_FOUND
		case c >= 500:
			return C.LS_HTTP_SERVER_ERROR
		}
		return C.LS_HTTP_OTHER_4XX
	case errors.Is(err, ErrURLRefused):
		return C.LS_EACCES
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, errReadDeadline):
		return C.LS_EXIT
	}
	return C.LS_EIO
}

var errReadDeadline = errors.New("avformat: read deadline")

// goReader is one URL opened in Go, read by libavformat through an AVIOContext.
type goReader struct {
	d      *Demuxer
	body   io.ReadCloser
	cancel context.CancelFunc
	handle cgo.Handle
	once   sync.Once
}

// openReader opens n through the Opener and registers the reader for C.
func (d *Demuxer) openReader(n nested) (*goReader, string, error) {
	// No lock here: this runs inside libavformat calls, also while Close frees under mu.
	if !d.opened.Load() && int(d.opens.Add(1)) > d.cfg.MaxOpens {
		return nil, "", fmt.Errorf("%w: more than %d URLs opened while probing", ErrTooLarge, d.cfg.MaxOpens)
	}
	ctx, cancel := context.WithCancel(d.ioCtx)
	resp, err := d.cfg.IO(ctx, n.req)
	if err != nil {
		cancel()
		return nil, "", err
	}
	body := resp.Body
	if n.key != nil {
		cr, err := newCBCReader(body, n.key, n.iv)
		if err != nil {
			cancel()
			body.Close()
			return nil, "", err
		}
		body = struct {
			io.Reader
			io.Closer
		}{cr, resp.Body}
	}
	r := &goReader{d: d, body: body, cancel: cancel}
	r.handle = newHandle(r)
	return r, resp.URL, nil
}

// read fills p, cut short by the demuxer's deadline or stop.
func (r *goReader) read(p []byte) (int, error) {
	if dl := r.d.deadline.Load(); dl != 0 {
		left := time.Until(time.Unix(0, dl))
		if left <= 0 {
			return 0, errReadDeadline
		}
		t := time.AfterFunc(left, r.cancel)
		defer t.Stop()
	}
	for {
		n, err := r.body.Read(p)
		if n > 0 {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

func (r *goReader) close() {
	r.once.Do(func() {
		r.cancel()
		r.body.Close()
		deleteHandle(r.handle)
	})
}

//export lsavOpenIO
func lsavOpenIO(dh C.uintptr_t, url, key, iv *C.char, offset, end C.int64_t, out *C.uintptr_t) C.int {
	d := cgo.Handle(dh).Value().(*Demuxer)
	n, err := parseNested(C.GoString(url), cstr(key), cstr(iv), int64(offset), int64(end))
	if err == nil {
		var r *goReader
		if r, _, err = d.openReader(n); err == nil {
			*out = C.uintptr_t(r.handle)
			return 0
		}
	}
	d.noteIOErr(err)
	return avCode(err)
}

//export lsavRead
func lsavRead(rh C.uintptr_t, buf *C.uint8_t, size C.int) C.int {
	r := cgo.Handle(rh).Value().(*goReader)
	n, err := r.read(unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(size)))
	if err == nil {
		return C.int(n)
	}
	if errors.Is(err, io.EOF) {
		return C.LS_EOF
	}
	if r.d.deadlinePassed() {
		err = errReadDeadline
	}
	if !errors.Is(err, context.Canceled) && !errors.Is(err, errReadDeadline) {
		r.d.noteIOErr(err)
	}
	return avCode(err)
}

//export lsavCloseIO
func lsavCloseIO(rh C.uintptr_t) {
	cgo.Handle(rh).Value().(*goReader).close()
}

//export lsavCheckURL
func lsavCheckURL(dh C.uintptr_t, url *C.char) C.int {
	d := cgo.Handle(dh).Value().(*Demuxer)
	u := C.GoString(url)
	var err error
	if len(u) > MaxURLLength {
		err = fmt.Errorf("URL longer than %d bytes", MaxURLLength)
	} else {
		err = d.cfg.CheckURL(u)
	}
	if err == nil {
		return 0
	}
	d.errMu.Lock()
	d.urlErr = fmt.Errorf("%w: %w", ErrURLRefused, err)
	d.errMu.Unlock()
	return 1
}

func cstr(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

func b2i(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func newHandle(v any) cgo.Handle {
	liveHandles.Add(1)
	return cgo.NewHandle(v)
}

func deleteHandle(h cgo.Handle) {
	h.Delete()
	liveHandles.Add(-1)
}

// CHeapInUse returns the C heap bytes in use (glibc), for leak tests.
func CHeapInUse() int64 { return int64(C.ls_c_heap_in_use()) }

// Quiet silences libav*'s log output process-wide (tests; the service sets its level through
// package decode).
func Quiet() { C.ls_set_log_quiet() }
