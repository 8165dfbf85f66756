package decode

import (
	"errors"
	"fmt"

	"github.com/livesnap/livesnap/internal/bitstream"
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
				r := bitstream.NewBitReader(bitstream.Unescape(n[1:]))
				id, info, err := parseSPS(r)
				if err != nil {
					return fmt.Errorf("%w: unit %d: SPS: %v", ErrCorrupt, i, err)
				}
				spss[id] = spsInfo{info.log2MaxFrameNum, info.gapsAllowed, info.separatePlanes}
			case 8:
				r := bitstream.NewBitReader(bitstream.Unescape(n[1:]))
				ppsID, spsID := r.UE(), r.UE()
				if r.Err != nil {
					return fmt.Errorf("%w: unit %d: PPS: %v", ErrCorrupt, i, r.Err)
				}
				ppsToSPS[ppsID] = spsID
			case 1, 5:
				if !first { // later slices of the same picture repeat frame_num
					continue
				}
				first = false
				r := bitstream.NewBitReader(bitstream.Unescape(n[1:min(len(n), 64)]))
				r.UE() // first_mb_in_slice
				r.UE() // slice_type
				ppsID := r.UE()
				spsID, ok := ppsToSPS[ppsID]
				sps, ok2 := spss[spsID]
				if r.Err != nil || !ok || !ok2 {
					return fmt.Errorf("%w: unit %d: slice refers to unknown parameter sets", ErrCorrupt, i)
				}
				if sps.separatePlanes {
					r.U(2)
				}
				fn := r.U(sps.log2MaxFrameNum)
				if r.Err != nil {
					return fmt.Errorf("%w: unit %d: slice header: %v", ErrCorrupt, i, r.Err)
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
func parseSPS(r *bitstream.BitReader) (uint32, spsFields, error) {
	var f spsFields
	profile := r.U(8)
	r.U(16) // constraint flags, level_idc
	id := r.UE()
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma := r.UE()
		if chroma == 3 {
			f.separatePlanes = r.U(1) == 1
		}
		r.UE()           // bit_depth_luma_minus8
		r.UE()           // bit_depth_chroma_minus8
		r.U(1)           // qpprime_y_zero_transform_bypass_flag
		if r.U(1) == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := 0; i < lists; i++ {
				if r.U(1) == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					last, next := int32(8), int32(8)
					for j := 0; j < size && r.Err == nil; j++ {
						if next != 0 {
							next = (last + r.SE() + 256) % 256
						}
						if next != 0 {
							last = next
						}
					}
				}
			}
		}
	}
	l := r.UE() + 4
	if l > 16 {
		return 0, f, errors.New("log2_max_frame_num out of range")
	}
	f.log2MaxFrameNum = int(l)
	switch r.UE() { // pic_order_cnt_type
	case 0:
		r.UE()
	case 1:
		r.U(1)
		r.SE()
		r.SE()
		n := r.UE()
		if n > 255 {
			return 0, f, errors.New("num_ref_frames_in_pic_order_cnt_cycle out of range")
		}
		for i := uint32(0); i < n && r.Err == nil; i++ {
			r.SE()
		}
	}
	r.UE() // max_num_ref_frames
	f.gapsAllowed = r.U(1) == 1
	return id, f, r.Err
}
