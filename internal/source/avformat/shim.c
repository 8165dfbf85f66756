// The C half of package avformat (see shim.h). Go functions called from here are the
// //export functions of ffmpeg.go: lsavOpenIO, lsavRead, lsavCloseIO, lsavCheckURL.

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <libavutil/time.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
#include <libavcodec/avcodec.h>

#include "shim.h"
#include "_cgo_export.h"

// Size of the buffer of each Go-backed AVIOContext.
#define LS_IO_BUFFER 32768

struct ls_demux {
	AVFormatContext *fmt;
	AVPacket *pkt;
	uintptr_t handle;
	AVIOContext *input;        // top-level Go-backed input (ours to free: AVFMT_FLAG_CUSTOM_IO)
	atomic_int stop;           // set by Close/cancel from any thread
	_Atomic int64_t deadline;  // av_gettime_relative() microseconds; 0: none
	int check_url;
	char *approved_url;        // the URL Go last approved (touched on the demuxing thread only)
	atomic_int url_refused;
};

// ls_interrupt is libavformat's interrupt_callback: every blocking loop polls it (about every
// 100 ms while waiting on a socket), so stop and the deadline take effect promptly.
static int ls_interrupt(void *opaque) {
	ls_demux *d = opaque;
	if (atomic_load(&d->stop) || atomic_load(&d->url_refused))
		return 1;
	int64_t dl = atomic_load(&d->deadline);
	if (dl && av_gettime_relative() >= dl)
		return 1;
	// A demuxer that follows a redirect (RTSP 3xx) sets a new url and connects to it; the
	// next poll sees it, before any request is sent there.
	if (d->check_url && d->fmt && d->fmt->url &&
	    (!d->approved_url || strcmp(d->fmt->url, d->approved_url) != 0)) {
		if (lsavCheckURL(d->handle, d->fmt->url) != 0) {
			atomic_store(&d->url_refused, 1);
			return 1;
		}
		free(d->approved_url);
		d->approved_url = strdup(d->fmt->url);
	}
	return 0;
}

static int ls_io_read(void *opaque, uint8_t *buf, int size) {
	return lsavRead((uintptr_t)opaque, buf, size);
}

// ls_new_pb wraps a Go reader in an AVIOContext.
static AVIOContext *ls_new_pb(uintptr_t reader) {
	unsigned char *buf = av_malloc(LS_IO_BUFFER);
	if (!buf)
		return NULL;
	AVIOContext *pb = avio_alloc_context(buf, LS_IO_BUFFER, 0, (void *)reader, ls_io_read, NULL, NULL);
	if (!pb) {
		av_free(buf);
		return NULL;
	}
	pb->seekable = 0;
	return pb;
}

// ls_free_pb closes the Go reader and frees the context (the buffer may have been replaced
// by libavformat, so free whatever it holds now).
static void ls_free_pb(AVIOContext **pb) {
	if (!*pb)
		return;
	lsavCloseIO((uintptr_t)(*pb)->opaque);
	av_freep(&(*pb)->buffer);
	avio_context_free(pb);
}

static const char *dict_value(AVDictionary **opts, const char *key) {
	if (!opts || !*opts)
		return NULL;
	AVDictionaryEntry *e = av_dict_get(*opts, key, NULL, 0);
	return e ? e->value : NULL;
}

// ls_io_open replaces libavformat's own opening of nested URLs (HLS playlists, segments,
// keys): Go opens them, or refuses.
static int ls_io_open(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                      AVDictionary **opts) {
	ls_demux *d = s->opaque;
	if (flags & AVIO_FLAG_WRITE)
		return AVERROR(EACCES);
	const char *key = dict_value(opts, "key");
	const char *iv = dict_value(opts, "iv");
	const char *off = dict_value(opts, "offset");
	const char *end = dict_value(opts, "end_offset");
	uintptr_t reader = 0;
	int ret = lsavOpenIO(d->handle, (char *)url, (char *)key, (char *)iv,
	                     off ? strtoll(off, NULL, 10) : 0, end ? strtoll(end, NULL, 10) : -1, &reader);
	if (ret < 0)
		return ret;
	*pb = ls_new_pb(reader);
	if (!*pb) {
		lsavCloseIO(reader);
		return AVERROR(ENOMEM);
	}
	return 0;
}

static int ls_io_close2(AVFormatContext *s, AVIOContext *pb) {
	ls_free_pb(&pb);
	return 0;
}

ls_demux *ls_demux_new(uintptr_t handle, int go_io, int check_url, const char *url) {
	ls_demux *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->handle = handle;
	d->check_url = check_url;
	d->fmt = avformat_alloc_context();
	d->pkt = av_packet_alloc();
	d->approved_url = strdup(url);
	if (!d->fmt || !d->pkt || !d->approved_url) {
		ls_demux_free(d);
		return NULL;
	}
	d->fmt->interrupt_callback.callback = ls_interrupt;
	d->fmt->interrupt_callback.opaque = d;
	d->fmt->opaque = d;
	if (go_io) {
		d->fmt->io_open = ls_io_open;
		d->fmt->io_close2 = ls_io_close2;
	}
	return d;
}

int ls_demux_set_input(ls_demux *d, uintptr_t reader) {
	d->input = ls_new_pb(reader);
	if (!d->input) {
		lsavCloseIO(reader);
		return AVERROR(ENOMEM);
	}
	d->fmt->pb = d->input;
	return 0;
}

int ls_demux_open(ls_demux *d, const char *url, const char *format, AVDictionary **opts) {
	const AVInputFormat *f = av_find_input_format(format);
	if (!f)
		return AVERROR_DEMUXER_NOT_FOUND;
	// On failure avformat_open_input frees the context and sets d->fmt to NULL; the custom
	// input stays ours.
	return avformat_open_input(&d->fmt, url, f, opts);
}

int ls_demux_find_info(ls_demux *d) {
	return avformat_find_stream_info(d->fmt, NULL);
}

int ls_demux_nb_streams(ls_demux *d) {
	return d->fmt ? (int)d->fmt->nb_streams : 0;
}

void ls_demux_stream(ls_demux *d, int i, ls_stream *out) {
	memset(out, 0, sizeof(*out));
	if (!d->fmt || i < 0 || (unsigned)i >= d->fmt->nb_streams)
		return;
	AVStream *st = d->fmt->streams[i];
	AVCodecParameters *p = st->codecpar;
	out->media_type = p->codec_type;
	out->codec_id = p->codec_id;
	out->codec_name = avcodec_get_name(p->codec_id);
	out->extradata = p->extradata;
	out->extradata_size = p->extradata_size;
	out->tb_num = st->time_base.num;
	out->tb_den = st->time_base.den;
	out->width = p->width;
	out->height = p->height;
	out->format = p->format;
	out->profile = p->profile;
}

void ls_demux_keep_only(ls_demux *d, int keep) {
	if (!d->fmt)
		return;
	for (unsigned i = 0; i < d->fmt->nb_streams; i++)
		d->fmt->streams[i]->discard = (int)i == keep ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
}

int ls_demux_read(ls_demux *d, ls_packet *out) {
	memset(out, 0, sizeof(*out));
	av_packet_unref(d->pkt);
	int ret = av_read_frame(d->fmt, d->pkt);
	if (ret < 0)
		return ret;
	AVPacket *p = d->pkt;
	AVRational tb = d->fmt->streams[p->stream_index]->time_base;
	out->stream = p->stream_index;
	out->data = p->data;
	out->size = p->size;
	out->has_pts = p->pts != AV_NOPTS_VALUE;
	out->has_dts = p->dts != AV_NOPTS_VALUE;
	if (out->has_pts)
		out->pts_us = av_rescale_q(p->pts, tb, AV_TIME_BASE_Q);
	if (out->has_dts)
		out->dts_us = av_rescale_q(p->dts, tb, AV_TIME_BASE_Q);
	out->key = (p->flags & AV_PKT_FLAG_KEY) != 0;
	out->failing = atomic_load(&d->stop) || ls_demux_deadline_passed(d) ||
	               (d->fmt->pb && d->fmt->pb->error < 0);
	size_t n = 0;
	uint8_t *ed = av_packet_get_side_data(p, AV_PKT_DATA_NEW_EXTRADATA, &n);
	if (ed && n > 0 && n < INT32_MAX) {
		out->new_extradata = ed;
		out->new_extradata_size = (int)n;
	}
	return 0;
}

void ls_demux_unref(ls_demux *d) {
	av_packet_unref(d->pkt);
}

void ls_demux_stop(ls_demux *d) {
	atomic_store(&d->stop, 1);
}

void ls_demux_set_deadline(ls_demux *d, int64_t us) {
	atomic_store(&d->deadline, us > 0 ? av_gettime_relative() + us : 0);
}

int ls_demux_deadline_passed(ls_demux *d) {
	int64_t dl = atomic_load(&d->deadline);
	return dl && av_gettime_relative() >= dl;
}

int ls_demux_url_refused(ls_demux *d) {
	return atomic_load(&d->url_refused);
}

void ls_demux_free(ls_demux *d) {
	if (!d)
		return;
	// Closing must not block: stop every poll loop first (RTSP sends TEARDOWN on close).
	atomic_store(&d->stop, 1);
	avformat_close_input(&d->fmt);
	ls_free_pb(&d->input);
	av_packet_free(&d->pkt);
	free(d->approved_url);
	free(d);
}

int ls_dict_set(AVDictionary **d, const char *key, const char *value) {
	return av_dict_set(d, key, value, 0);
}

// ls_dict_keys returns the keys of d joined by commas (malloc'd; NULL when empty).
char *ls_dict_keys(AVDictionary *d) {
	size_t n = 0;
	const AVDictionaryEntry *e = NULL;
	while ((e = av_dict_get(d, "", e, AV_DICT_IGNORE_SUFFIX)))
		n += strlen(e->key) + 1;
	if (n == 0)
		return NULL;
	char *out = calloc(1, n + 1);
	if (!out)
		return NULL;
	e = NULL;
	while ((e = av_dict_get(d, "", e, AV_DICT_IGNORE_SUFFIX))) {
		if (out[0])
			strcat(out, ",");
		strcat(out, e->key);
	}
	return out;
}

// ls_c_heap_in_use reports bytes allocated from the C heap (glibc), where libavformat's
// contexts, buffers and packets live.
long long ls_c_heap_in_use(void) {
	struct mallinfo2 mi = mallinfo2();
	return (long long)mi.uordblks + (long long)mi.hblkhd;
}

void ls_set_log_quiet(void) {
	av_log_set_level(AV_LOG_QUIET);
}
