package bitstream

import "testing"

func TestUnescape(t *testing.T) {
	got := Unescape([]byte{0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x03, 0x05})
	want := []byte{0x00, 0x00, 0x01, 0x00, 0x00, 0x03, 0x05}
	if string(got) != string(want) {
		t.Fatalf("Unescape = %x, want %x", got, want)
	}
}

func TestBitReader(t *testing.T) {
	// 1 | 010 | 011 | 00100 | 00101: ue 0, 1, 2, 3, then se(4) = -2
	r := NewBitReader([]byte{0b1010_0110, 0b0100_0010, 0b1000_0000})
	for i, want := range []uint32{0, 1, 2, 3} {
		if got := r.UE(); got != want {
			t.Fatalf("ue #%d = %d, want %d", i, got, want)
		}
	}
	if got := r.SE(); got != -2 {
		t.Fatalf("se = %d, want -2", got)
	}
	r.U(32)
	if r.Err != ErrOverrun {
		t.Fatalf("reading past the end: err %v", r.Err)
	}
}

func TestH264RecoveryPoint(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		frames  int
		ok      bool
	}{
		// What x264 writes with intra-refresh=1 keyint=50: recovery_frame_cnt 18.
		{"x264 intra refresh", []byte{0x06, 0x02, 0x09, 0xc4, 0x80}, 18, true},
		{"user data first, then recovery point 0", []byte{0x05, 0x02, 0xaa, 0xbb, 0x06, 0x01, 0xc4, 0x80}, 0, true},
		{"no recovery point", []byte{0x05, 0x02, 0xaa, 0xbb, 0x80}, 0, false},
		{"size past the end", []byte{0x06, 0x09, 0x88}, 0, false},
		{"empty", nil, 0, false},
	}
	for _, c := range cases {
		frames, ok := H264RecoveryPoint(c.payload)
		if frames != c.frames || ok != c.ok {
			t.Errorf("%s: got %d %v, want %d %v", c.name, frames, ok, c.frames, c.ok)
		}
	}
}

func FuzzH264RecoveryPoint(f *testing.F) {
	f.Add([]byte{0x06, 0x02, 0x09, 0xc4, 0x80})
	f.Add([]byte{0xff, 0xff, 0x06, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, ok := H264RecoveryPoint(b); ok && (n < 0 || n > maxRecoveryFrames) {
			t.Fatalf("recovery frames %d out of range", n)
		}
	})
}

func TestReadLEB128(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		v    uint64
		size int
	}{
		{[]byte{0x00}, 0, 1},
		{[]byte{0x7f, 0xff}, 127, 1},
		{[]byte{0x80, 0x01}, 128, 2},
		{[]byte{0xe5, 0x8e, 0x26}, 624485, 3},
		{[]byte{0x80}, 0, 0},     // truncated
		{bytesOf(0x80, 9), 0, 0}, // longer than 8 bytes
		{nil, 0, 0},
	} {
		v, n := ReadLEB128(c.in)
		if v != c.v || n != c.size {
			t.Errorf("ReadLEB128(%x) = %d, %d; want %d, %d", c.in, v, n, c.v, c.size)
		}
	}
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}
