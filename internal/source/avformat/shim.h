// The C half of package avformat: what cgo cannot express (callbacks, atomics, error macros).
// Every call into libavformat is made through these functions; the control flow stays in Go.

#ifndef LIVESNAP_AVFORMAT_SHIM_H
#define LIVESNAP_AVFORMAT_SHIM_H

#include <stdint.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>

// Error codes are function-like macros; an enum makes them visible to Go as constants.
enum {
	LS_EOF = AVERROR_EOF,
	LS_EXIT = AVERROR_EXIT,
	LS_EIO = AVERROR(EIO),
	LS_EINVAL = AVERROR(EINVAL),
	LS_ENOMEM = AVERROR(ENOMEM),
	LS_EACCES = AVERROR(EACCES),
	LS_EAGAIN = AVERROR(EAGAIN),
	LS_INVALIDDATA = AVERROR_INVALIDDATA,
	LS_STREAM_NOT_FOUND = AVERROR_STREAM_NOT_FOUND,
	LS_PROTOCOL_NOT_FOUND = AVERROR_PROTOCOL_NOT_FOUND,
	LS_DEMUXER_NOT_FOUND = AVERROR_DEMUXER_NOT_FOUND,
	LS_HTTP_BAD_REQUEST = AVERROR_HTTP_BAD_REQUEST,
	LS_HTTP_UNAUTHORIZED = AVERROR_HTTP_UNAUTHORIZED,
	LS_HTTP_FORBIDDEN = AVERROR_HTTP_FORBIDDEN,
	LS_HTTP_NOT_FOUND = AVERROR_HTTP_NOT_FOUND,
	LS_HTTP_OTHER_4XX = AVERROR_HTTP_OTHER_4XX,
	LS_HTTP_SERVER_ERROR = AVERROR_HTTP_SERVER_ERROR,
};

// ls_demux is one demuxer: the format context, a packet, and the interrupt state that Go
// sets from any goroutine.
typedef struct ls_demux ls_demux;

// ls_stream describes one stream (extradata points into the stream: copy it at once).
typedef struct {
	int media_type;  // AVMediaType
	int codec_id;    // AVCodecID
	const char *codec_name;
	const uint8_t *extradata;
	int extradata_size;
	int tb_num, tb_den;
	int width, height;
	int format;      // pixel format, -1 unknown
	int profile;
} ls_stream;

// ls_packet describes the packet ls_demux_read returned (data valid until the next read).
typedef struct {
	int stream;
	const uint8_t *data;
	int size;
	int64_t pts_us, dts_us; // microseconds; has_pts/has_dts say whether they are set
	int has_pts, has_dts;
	int key;
	const uint8_t *new_extradata;
	int new_extradata_size;
	// failing: the input already failed (a read error, the deadline, stop) and this packet is
	// what libavformat's parsers flushed on the way out.
	int failing;
} ls_packet;

// ls_demux_new allocates a demuxer. handle is the Go demuxer's cgo.Handle, passed back in
// every callback. go_io: every URL is opened by Go (io_open/io_close2 hooks); check_url: Go
// approves every URL the demuxer switches to (RTSP redirects).
ls_demux *ls_demux_new(uintptr_t handle, int go_io, int check_url, const char *url);

// ls_demux_set_input gives the demuxer a top-level input read by Go (reader handle).
int ls_demux_set_input(ls_demux *d, uintptr_t reader);

// ls_demux_open runs avformat_open_input with a forced input format and options (consumed
// entries are removed from *opts); ls_demux_find_info runs avformat_find_stream_info.
int ls_demux_open(ls_demux *d, const char *url, const char *format, AVDictionary **opts);
int ls_demux_find_info(ls_demux *d);

int ls_demux_nb_streams(ls_demux *d);
void ls_demux_stream(ls_demux *d, int i, ls_stream *out);
// ls_demux_keep_only discards every stream but index keep (AVDISCARD_ALL).
void ls_demux_keep_only(ls_demux *d, int keep);

// ls_demux_read reads the next packet (av_read_frame) and describes it in out.
int ls_demux_read(ls_demux *d, ls_packet *out);
void ls_demux_unref(ls_demux *d);

// ls_demux_stop makes every blocking call return AVERROR_EXIT promptly, now and later.
void ls_demux_stop(ls_demux *d);
// ls_demux_set_deadline arms the deadline: us microseconds from now (0 disarms).
void ls_demux_set_deadline(ls_demux *d, int64_t us);
int ls_demux_deadline_passed(ls_demux *d);
int ls_demux_url_refused(ls_demux *d);

// ls_demux_free closes everything and frees d.
void ls_demux_free(ls_demux *d);

// ls_dict_set wraps av_dict_set; ls_dict_keys lists the keys left in a dictionary.
int ls_dict_set(AVDictionary **d, const char *key, const char *value);
char *ls_dict_keys(AVDictionary *d);

long long ls_c_heap_in_use(void);
void ls_set_log_quiet(void);

#endif
