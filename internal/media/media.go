// Package media holds the small set of types that flow from a stream source to the capture and
// decode stages: codec identifiers and compressed video access units.
package media

import "time"

// Codec identifies a video codec.
type Codec int

// Video codecs livesnap can snapshot.
const (
	CodecUnknown Codec = iota
	CodecH264
	CodecH265
	CodecAV1
)

// String returns the codec's short lowercase name.
func (c Codec) String() string {
	switch c {
	case CodecH264:
		return "h264"
	case CodecH265:
		return "h265"
	case CodecAV1:
		return "av1"
	}
	return "unknown"
}

// AccessUnit is one compressed video picture as a list of NAL units (H.264/H.265, no start
// codes) or OBUs (AV1, one temporal unit in NALUs[0..]).
//
// Contract between sources and consumers: a unit with Keyframe set is a random access point
// (H.264 IDR or recovery point, H.265 IRAP) and carries the stream's current parameter sets
// (SPS/PPS, plus VPS for H.265) in NALUs, in front of the picture, so decoding can start there.
// With RecoveryFrames 0 its own picture is clean; an H.264 recovery point (the only entry into
// an intra-refresh stream, which has no IDR after the first picture) has RecoveryFrames N:
// the pictures are clean from the unit N units later on.
type AccessUnit struct {
	Codec    Codec
	PTS      time.Duration // presentation time as the source reports it (may jump or reset)
	DTS      time.Duration
	NALUs    [][]byte
	Keyframe bool
	// RecoveryFrames, on a Keyframe, is how many units later the first clean picture comes
	// (0: this one).
	RecoveryFrames int
	// Received is the local wall-clock time the unit arrived; capture ticks compare against it.
	Received time.Time
	// Skipped: the source dropped the unit's data because the consumer asked for keyframes
	// only (source.KeyframesOnly). NALUs is empty; the unit carries its timing, for the clock
	// and the ticks, and must never be decoded. Never set on a keyframe.
	Skipped bool
}

// Size returns the payload size in bytes.
func (u *AccessUnit) Size() int {
	n := 0
	for _, b := range u.NALUs {
		n += len(b)
	}
	return n
}
