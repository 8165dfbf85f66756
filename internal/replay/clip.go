// Package replay serves one pre-encoded clip as many independent live RTMP streams, paced in
// real time and looped forever, for benchmarks: a multi-stream live source that costs almost
// nothing (the clip's samples are parsed once and sent as they are stored, without remuxing).
package replay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/livesnap/livesnap/internal/media"
)

// Limits on the clip file (every input bounded).
const (
	// MaxClipBytes bounds the clip file read into memory.
	MaxClipBytes = 512 << 20
	// MaxSamples bounds the video samples of one clip (an hour at 60 fps).
	MaxSamples = 216000
)

// Sample is one video access unit of the clip.
type Sample struct {
	DTS, PTS time.Duration // from the clip's start
	Key      bool          // a random access point (IDR / IRAP)
	// Payload is the unit as stored in MP4 and sent over RTMP: NAL units each behind a 4-byte
	// big-endian length (AVCC).
	Payload []byte
}

// NALUs returns the sample's NAL units (views into Payload).
func (s Sample) NALUs() ([][]byte, error) {
	var au h264.AVCC
	if err := au.Unmarshal(s.Payload); err != nil {
		return nil, err
	}
	return au, nil
}

// Clip is a parsed video clip: its codec parameters and its samples in decode order. The
// first sample is a keyframe and the loop length is a whole number of frames, so the clip can
// be repeated seamlessly with timestamps that keep increasing.
type Clip struct {
	Codec         media.Codec
	VPS, SPS, PPS []byte // parameter sets (VPS for H.265 only)
	Samples       []Sample
	// Duration is the loop length: the last sample's DTS plus its duration.
	Duration time.Duration
}

// Keyframes returns the indexes of the keyframe samples.
func (c *Clip) Keyframes() []int {
	var out []int
	for i, s := range c.Samples {
		if s.Key {
			out = append(out, i)
		}
	}
	return out
}

// GOP returns the longest distance between two keyframes (around the loop too).
func (c *Clip) GOP() time.Duration {
	keys := c.Keyframes()
	var gop time.Duration
	for i, k := range keys {
		next := c.Duration // the first keyframe of the next loop
		if i+1 < len(keys) {
			next = c.Samples[keys[i+1]].DTS
		}
		gop = max(gop, next-c.Samples[k].DTS)
	}
	return gop
}

// Bitrate returns the clip's average video bitrate in bits per second.
func (c *Clip) Bitrate() float64 {
	var n int
	for _, s := range c.Samples {
		n += len(s.Payload)
	}
	return float64(n) * 8 / c.Duration.Seconds()
}

// AccessUnit returns sample i as a media.AccessUnit; a keyframe carries the parameter sets in
// front of its picture, as livesnap's sources deliver it.
func (c *Clip) AccessUnit(i int) (media.AccessUnit, error) {
	s := c.Samples[i]
	nalus, err := s.NALUs()
	if err != nil {
		return media.AccessUnit{}, fmt.Errorf("sample %d: %w", i, err)
	}
	if s.Key {
		var ps [][]byte
		if c.Codec == media.CodecH265 {
			ps = append(ps, c.VPS)
		}
		nalus = append(append(ps, c.SPS, c.PPS), nalus...)
	}
	return media.AccessUnit{Codec: c.Codec, PTS: s.PTS, DTS: s.DTS, NALUs: nalus, Keyframe: s.Key}, nil
}

// LoadClip reads a fragmented MP4 file (as `ffmpeg -movflags
// frag_keyframe+empty_moov+default_base_moof` writes it) and returns its first video track,
// H.264 or H.265. Other tracks are ignored.
func LoadClip(path string) (*Clip, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxClipBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxClipBytes {
		return nil, fmt.Errorf("clip %s: larger than %d bytes", path, MaxClipBytes)
	}
	c, err := parseClip(raw)
	if err != nil {
		return nil, fmt.Errorf("clip %s: %w", path, err)
	}
	return c, nil
}

// parseClip splits the file into its initialization block (ftyp, moov) and its fragments
// (moof, mdat), and reads both with mediacommon's fMP4 parser.
func parseClip(raw []byte) (*Clip, error) {
	split, err := firstFragment(raw)
	if err != nil {
		return nil, err
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(raw[:split])); err != nil {
		return nil, fmt.Errorf("init block: %w", err)
	}
	c := &Clip{}
	var track *fmp4.InitTrack
	for _, t := range init.Tracks {
		switch codec := t.Codec.(type) {
		case *mp4codecs.H264:
			c.Codec, c.SPS, c.PPS = media.CodecH264, codec.SPS, codec.PPS
		case *mp4codecs.H265:
			c.Codec, c.VPS, c.SPS, c.PPS = media.CodecH265, codec.VPS, codec.SPS, codec.PPS
		default:
			continue
		}
		track = t
		break
	}
	if track == nil {
		return nil, errors.New("no H.264 or H.265 video track")
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(raw[split:]); err != nil {
		return nil, fmt.Errorf("fragments: %w", err)
	}
	scale := time.Duration(track.TimeScale)
	toDur := func(v int64) time.Duration { return time.Duration(v) * time.Second / scale }
	var base0 int64 = -1
	var end int64
	for _, p := range parts {
		for _, pt := range p.Tracks {
			if pt.ID != track.ID {
				continue
			}
			dts := int64(pt.BaseTime)
			if base0 < 0 {
				base0 = dts
			}
			for _, s := range pt.Samples {
				if len(c.Samples) >= MaxSamples {
					return nil, fmt.Errorf("more than %d video samples", MaxSamples)
				}
				// Keyframes are told by their NAL units, as a player sees them (ffmpeg flags
				// a fragment's first sample in trun's first_sample_flags, which the parser
				// does not report).
				var au h264.AVCC
				if err := au.Unmarshal(s.Payload); err != nil {
					// A damaged sample (a truncated file): the loop ends before its GOP.
					return c.cutBeforeLastKeyframe(fmt.Errorf("sample %d: %w", len(c.Samples), err))
				}
				key := h264.IsRandomAccess(au)
				if c.Codec == media.CodecH265 {
					key = h265.IsRandomAccess(au)
				}
				c.Samples = append(c.Samples, Sample{
					DTS:     toDur(dts - base0),
					PTS:     toDur(dts - base0 + int64(s.PTSOffset)),
					Key:     key,
					Payload: s.Payload,
				})
				dts += int64(s.Duration)
			}
			end = dts - base0
		}
	}
	c.Duration = toDur(end)
	return c, c.check()
}

// check validates the parsed clip.
func (c *Clip) check() error {
	switch {
	case len(c.Samples) == 0:
		return errors.New("no video samples")
	case !c.Samples[0].Key:
		return errors.New("first video sample is not a keyframe")
	case c.Duration <= c.Samples[len(c.Samples)-1].DTS:
		return errors.New("last sample has no duration")
	}
	return nil
}

// cutBeforeLastKeyframe drops the last (incomplete) GOP; the loop then ends where it began.
// cause is the damage found; it is returned when nothing usable is left.
func (c *Clip) cutBeforeLastKeyframe(cause error) (*Clip, error) {
	keys := c.Keyframes()
	if len(keys) < 2 {
		return nil, cause
	}
	last := keys[len(keys)-1]
	c.Duration = c.Samples[last].DTS
	c.Samples = c.Samples[:last]
	return c, c.check()
}

// firstFragment returns the offset of the first top-level moof box.
func firstFragment(raw []byte) (int, error) {
	for off := 0; off+8 <= len(raw); {
		size := int(binary.BigEndian.Uint32(raw[off:]))
		typ := string(raw[off+4 : off+8])
		if size == 1 && off+16 <= len(raw) { // 64-bit size
			size64 := binary.BigEndian.Uint64(raw[off+8:])
			if size64 > uint64(len(raw)) {
				return 0, errors.New("truncated box")
			}
			size = int(size64)
		}
		if typ == "moof" {
			return off, nil
		}
		if size < 8 || off+size > len(raw) {
			return 0, fmt.Errorf("bad or truncated %q box", typ)
		}
		off += size
	}
	return 0, errors.New("not a fragmented MP4 (no moof box)")
}
