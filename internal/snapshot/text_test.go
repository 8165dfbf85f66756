package snapshot

import (
	"testing"
	"time"
)

// Object names may hold any printable text, but nothing that breaks lines, hides characters
// or makes a name display as another.
func TestObjectNamesRefuseControlsSeparatorsAndBidiControls(t *testing.T) {
	for _, ok := range []string{"a/b.jpg", "日本/スナップ.jpg", "é-ü_~!$&'()*+,;=@.jpg", "a b.jpg", "zwj\u200d.jpg"} {
		if err := CheckObjectName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"a\x00.jpg", "a\n.jpg", "a\x1f.jpg", "a\x7f.jpg", // C0 and DEL
		"a\u0080.jpg", "a\u0085.jpg", "a\u009f.jpg", // C1 (U+0085: next line)
		"a\u2028.jpg", "a\u2029.jpg", // line and paragraph separators
		"gpj.\u202eexe.jpg", "a\u202a.jpg", "a\u202c.jpg", "a\u2066.jpg", "a\u2069.jpg", // embeddings, overrides, isolates
		"a\u200e.jpg", "a\u200f.jpg", "a\u061c.jpg", // bidi marks
	} {
		if err := CheckObjectName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
		// Formats are checked by the same rule, so such a template is refused at once.
		if err := ValidateFormats(bad, ""); err == nil {
			t.Errorf("OverwriteFormat %q accepted", bad)
		}
	}
}

func TestEndpointIsHostAndOptionalPort(t *testing.T) {
	for _, ok := range []string{
		"oss-cn-shanghai.aliyuncs.com", "OSS-CN-Shanghai.Aliyuncs.com", "h", "minio.example:9000",
		"10.0.0.5", "10.0.0.5:1", "s3.example.com:65535", "[::1]", "[2001:db8::5]:9000", "a1-b2.c3",
	} {
		if err := CheckEndpoint(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	long := ""
	for i := 0; i < 50; i++ {
		long += "abcd."
	}
	for _, bad := range []string{
		"", "http://evil", "a:/../x", "e:<b>", "-", ".", "a..b", "a.", ".a", "-a.com", "a-.com",
		"h:0", "h:65536", "h:99999", "h:", "h:+80", "h:080", "h:8o", "h:1:2", "::1", "[::1", "[::1]x",
		"[::1]:0", "[10.0.0.1]", "[fe80::1%eth0]", "a_b.com", "a b", "ü.com", long + "comx", // 254 characters
		"a23456789012345678901234567890123456789012345678901234567890abcd.com", // a 64-character label
	} {
		if err := CheckEndpoint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A window's EndTime in ICE's second layout covers its whole second; with milliseconds it is
// exact.
func TestEndTimeCoversItsSecondUnlessItHasMilliseconds(t *testing.T) {
	base := time.Date(2026, 12, 4, 5, 15, 9, 0, time.UTC)
	for s, want := range map[string]time.Time{
		"2026-12-04T05:15:09Z":     base.Add(999 * time.Millisecond),
		"2026-12-04T05:15:09.188Z": base.Add(188 * time.Millisecond),
		"2026-12-04T05:15:09.000Z": base,
	} {
		at, last, ok := ParseEndTime(s)
		if !ok || !last.Equal(want) {
			t.Errorf("%s: last %v (ok %v), want %v", s, last, ok, want)
		}
		if want, _ := ParseTime(s); !at.Equal(want) {
			t.Errorf("%s: as written %v, want %v", s, at, want)
		}
	}
	if _, _, ok := ParseEndTime("2026-12-04"); ok {
		t.Error("a date without a time accepted")
	}
	// The exact form round-trips, also on a whole second.
	if s := FormatExactTime(base); s != "2026-12-04T05:15:09.000Z" {
		t.Errorf("FormatExactTime = %s", s)
	}
	if _, last, _ := ParseEndTime(FormatExactTime(base)); !last.Equal(base) {
		t.Errorf("exact form read as %v", last)
	}
}
