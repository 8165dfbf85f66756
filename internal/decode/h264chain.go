package decode

import (
	"errors"
	"fmt"

	"github.com/livesnap/livesnap/internal/media"
)

// checkH264Chain verifies that no reference picture is missing between units[0] and the
// target, using frame_num: each picture's frame_num equals the previous reference picture's,
// or is one more (modulo MaxFrameNum). libavcodec's H.264 decoder fills such a gap with
// copies of an older picture and reports nothing, which would produce a plausible but wrong
// snapshot. Streams that declare gaps_in_frame_num_value_allowed_flag are not checked, nor
// are pictures after a memory_management_control_operation 5 (rare in live encoders; a false
// alarm there costs one miss, never a wrong picture).
func checkH264Chain(units []media.AccessUnit) error {
	type spsInfo struct {
		log2MaxFrameNum int
		gapsAllowed     bool
		separatePlanes  bool
	}
	spss := map[uint32]spsInfo{}
	ppsToSPS := map[uint32]uint32{}
	prevRef, havePrev := uint32(0), false
	for i := range units {
		first := true
		for _, n := range units[i].NALUs {
			if len(n) < 2 {
				continue
			}
			switch typ := n[0] & 0x1f; typ {
			case 7:
				r := newBitReader(unescape(n[1:]))
				id, info, err := parseSPS(r)
				if err != nil {
					return fmt.Errorf("%w: unit %d: SPS: %v", ErrCorrupt, i, err)
				}
				spss[id] = spsInfo{info.log2MaxFrameNum, info.gapsAllowed, info.separatePlanes}
			case 8:
				r := newBitReader(unescape(n[1:]))
				ppsID, spsID := r.ue(), r.ue()
				if r.err != nil {
					return fmt.Errorf("%w: unit %d: PPS: %v", ErrCorrupt, i, r.err)
				}
				ppsToSPS[ppsID] = spsID
			case 1, 5:
				if !first { // later slices of the same picture repeat frame_num
					continue
				}
				first = false
				r := newBitReader(unescape(n[1:min(len(n), 64)]))
				r.ue() // first_mb_in_slice
				r.ue() // slice_type
				ppsID := r.ue()
				spsID, ok := ppsToSPS[ppsID]
				sps, ok2 := spss[spsID]
				if r.err != nil || !ok || !ok2 {
					return fmt.Errorf("%w: unit %d: slice refers to unknown parameter sets", ErrCorrupt, i)
				}
				if sps.separatePlanes {
					r.u(2)
				}
				fn := r.u(sps.log2MaxFrameNum)
				if r.err != nil {
					return fmt.Errorf("%w: unit %d: slice header: %v", ErrCorrupt, i, r.err)
				}
				isRef := n[0]&0x60 != 0
				switch {
				case typ == 5:
					if fn != 0 {
						return fmt.Errorf("%w: unit %d: IDR with frame_num %d", ErrCorrupt, i, fn)
					}
				case !havePrev || sps.gapsAllowed:
					// Recovery-point entry, or gaps are legal: nothing to compare with.
				default:
					next := (prevRef + 1) & (1<<sps.log2MaxFrameNum - 1)
					if fn != prevRef && fn != next {
						return fmt.Errorf("%w: unit %d: frame_num %d after reference frame_num %d: a reference picture is missing",
							ErrCorrupt, i, fn, prevRef)
					}
				}
				if isRef || typ == 5 {
					prevRef, havePrev = fn, true
				}
			}
		}
	}
	return nil
}

type spsFields struct {
	log2MaxFrameNum int
	gapsAllowed     bool
	separatePlanes  bool
}

// parseSPS reads an H.264 SPS (RBSP after the NAL header) up to
// gaps_in_frame_num_value_allowed_flag.
func parseSPS(r *bitReader) (uint32, spsFields, error) {
	var f spsFields
	profile := r.u(8)
	r.u(16) // constraint flags, level_idc
	id := r.ue()
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma := r.ue()
		if chroma == 3 {
			f.separatePlanes = r.u(1) == 1
		}
		r.ue()           // bit_depth_luma_minus8
		r.ue()           // bit_depth_chroma_minus8
		r.u(1)           // qpprime_y_zero_transform_bypass_flag
		if r.u(1) == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := 0; i < lists; i++ {
				if r.u(1) == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					last, next := int32(8), int32(8)
					for j := 0; j < size && r.err == nil; j++ {
						if next != 0 {
							next = (last + r.se() + 256) % 256
						}
						if next != 0 {
							last = next
						}
					}
				}
			}
		}
	}
	l := r.ue() + 4
	if l > 16 {
		return 0, f, errors.New("log2_max_frame_num out of range")
	}
	f.log2MaxFrameNum = int(l)
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue()
	case 1:
		r.u(1)
		r.se()
		r.se()
		n := r.ue()
		if n > 255 {
			return 0, f, errors.New("num_ref_frames_in_pic_order_cnt_cycle out of range")
		}
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.se()
		}
	}
	r.ue() // max_num_ref_frames
	f.gapsAllowed = r.u(1) == 1
	return id, f, r.err
}

// bitReader reads an RBSP MSB first; the first overrun sets err.
type bitReader struct {
	b   []byte
	pos int
	err error
}

var errOverrun = errors.New("header runs past the end of its NAL unit")

func newBitReader(b []byte) *bitReader { return &bitReader{b: b} }

func (r *bitReader) u(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		if r.pos >= len(r.b)*8 {
			r.err = errOverrun
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos/8]>>(7-r.pos%8))&1
		r.pos++
	}
	return v
}

func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.u(1) == 0 {
		if r.err != nil || zeros == 31 {
			r.err = errOverrun
			return 0
		}
		zeros++
	}
	return (1<<zeros - 1) + r.u(zeros)
}

func (r *bitReader) se() int32 {
	v := r.ue()
	if v&1 == 1 {
		return int32((v + 1) / 2)
	}
	return -int32(v / 2)
}
