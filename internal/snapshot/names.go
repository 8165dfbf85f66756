package snapshot

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxFormatLength bounds OverwriteFormat and SequenceFormat (spec 4.1).
const MaxFormatLength = 255

// maxObjectLength bounds an expanded object name (S3/OSS keys are at most 1024 bytes).
const maxObjectLength = 1024

var placeholders = []string{"{JobId}", "{Date}", "{UnixTimestamp}", "{Sequence}"}

// FieldError is a validation failure that names the offending parameter.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s %s", e.Field, e.Reason) }

// ValidateFormats applies spec 4.1 to a template's name formats: at least one is set, each is at
// most 255 characters, does not start with "/", ends in ".jpg", and uses only the placeholders
// its field allows; a SequenceFormat must contain {UnixTimestamp} or {Sequence} so that no
// capture overwrites another.
func ValidateFormats(overwrite, sequence string) error {
	if overwrite == "" && sequence == "" {
		return &FieldError{"OverwriteFormat", "or SequenceFormat must be set"}
	}
	if overwrite != "" {
		if err := validateFormat("OverwriteFormat", overwrite, map[string]bool{"{JobId}": true}); err != nil {
			return err
		}
	}
	if sequence != "" {
		all := map[string]bool{"{JobId}": true, "{Date}": true, "{UnixTimestamp}": true, "{Sequence}": true}
		if err := validateFormat("SequenceFormat", sequence, all); err != nil {
			return err
		}
		if !strings.Contains(sequence, "{UnixTimestamp}") && !strings.Contains(sequence, "{Sequence}") {
			return &FieldError{"SequenceFormat", "must contain {UnixTimestamp} or {Sequence}"}
		}
	}
	return nil
}

func validateFormat(field, f string, allowed map[string]bool) error {
	switch {
	case utf8.RuneCountInString(f) > MaxFormatLength:
		return &FieldError{field, fmt.Sprintf("is longer than %d characters", MaxFormatLength)}
	case !utf8.ValidString(f):
		return &FieldError{field, "is not valid UTF-8"}
	case strings.HasPrefix(f, "/"):
		return &FieldError{field, "must not start with \"/\""}
	case !strings.HasSuffix(f, ".jpg"):
		return &FieldError{field, "must end with \".jpg\""}
	}
	// Every {...} must be a placeholder this field allows.
	rest := f
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return &FieldError{field, "has an unterminated placeholder"}
		}
		ph := rest[i : i+j+1]
		if !allowed[ph] {
			return &FieldError{field, fmt.Sprintf("must not use placeholder %s", ph)}
		}
		rest = rest[i+j+1:]
	}
	if strings.ContainsRune(f, '}') && strings.Count(f, "}") != strings.Count(f, "{") {
		return &FieldError{field, "has an unbalanced \"}\""}
	}
	// The literal parts must already be a safe object name.
	literal := f
	for _, ph := range placeholders {
		literal = strings.ReplaceAll(literal, ph, "x")
	}
	if err := CheckObjectName(literal); err != nil {
		return &FieldError{field, err.Error()}
	}
	return nil
}

// NameVars are the values substituted into a name format.
type NameVars struct {
	JobID    string
	Sequence int64
	Time     time.Time
}

// Expand substitutes the placeholders of format and checks that the result is a safe object
// name (see CheckObjectName).
func Expand(format string, v NameVars) (string, error) {
	r := strings.NewReplacer(
		"{JobId}", v.JobID,
		"{Date}", v.Time.UTC().Format("2006-01-02"),
		"{UnixTimestamp}", strconv.FormatInt(v.Time.UnixMilli(), 10),
		"{Sequence}", strconv.FormatInt(v.Sequence, 10),
	)
	name := r.Replace(format)
	if err := CheckObjectName(name); err != nil {
		return "", fmt.Errorf("object name %q: %w", name, err)
	}
	return name, nil
}

// CheckObjectName refuses names that could escape a bucket or confuse a file system, an object
// store or a person reading a listing: empty, over-long, leading "/", "\", "." or ".."
// segments, control characters (C0, DEL, C1), line and paragraph separators and bidirectional
// controls (which make a name display as another).
func CheckObjectName(name string) error {
	if name == "" {
		return fmt.Errorf("is empty")
	}
	if len(name) > maxObjectLength {
		return fmt.Errorf("is longer than %d bytes", maxObjectLength)
	}
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("must not start with \"/\"")
	}
	for _, r := range name {
		if r == '\\' || r == utf8.RuneError || unsafeInName(r) {
			return fmt.Errorf("contains a control character, a line or paragraph separator, a bidirectional control, a backslash or invalid UTF-8")
		}
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("has an empty, \".\" or \"..\" path segment")
		}
	}
	return nil
}

// unsafeInName reports runes an object name may not hold although they are valid UTF-8:
// controls (C0, DEL, C1: U+0085 is a line break to many tools), U+2028/U+2029, and the
// bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069).
func unsafeInName(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r)
}

// CheckBucket applies the OSS/S3 bucket naming rules: 3 to 63 characters, lowercase letters,
// digits and hyphens, starting and ending with a letter or digit.
func CheckBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name must be 3 to 63 characters")
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(b)-1
		if !ok {
			return fmt.Errorf("bucket name may hold only lowercase letters, digits and inner hyphens")
		}
	}
	return nil
}

// MaxEndpointLength bounds SnapshotOutput.Endpoint.
const MaxEndpointLength = 255

// CheckEndpoint accepts what SnapshotOutput.Endpoint names: host or host:port, where host is a
// DNS name (labels of 1 to 63 letters, digits and inner hyphens, 253 characters at most), an
// IPv4 address or a bracketed IPv6 address, and port a number from 1 to 65535.
func CheckEndpoint(e string) error {
	if e == "" || len(e) > MaxEndpointLength {
		return fmt.Errorf("must be 1 to %d characters", MaxEndpointLength)
	}
	host, port := e, ""
	if strings.HasPrefix(e, "[") {
		end := strings.IndexByte(e, ']')
		if end < 0 {
			return fmt.Errorf("has an unclosed \"[\"")
		}
		host, port = e[1:end], e[end+1:]
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() || ip.Zone() != "" {
			return fmt.Errorf("must hold an IPv6 address inside [ ]")
		}
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return fmt.Errorf("may hold only \":port\" after \"]\"")
			}
			port = port[1:]
			if err := checkPort(port); err != nil {
				return err
			}
		}
		return nil
	}
	if i := strings.IndexByte(e, ':'); i >= 0 {
		host, port = e[:i], e[i+1:]
		if err := checkPort(port); err != nil {
			return err
		}
	}
	return checkHostName(host)
}

// checkPort accepts a decimal port from 1 to 65535 without sign or leading zeros.
func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p[0] < '1' || p[0] > '9' {
		return fmt.Errorf("port must be a number from 1 to 65535")
	}
	return nil
}

// checkHostName applies the DNS rules for host names (RFC 1123 labels); IPv4 addresses are
// such names too.
func checkHostName(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("host must be 1 to 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host must be dot-separated labels of 1 to 63 characters")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(label)-1
			if !ok {
				return fmt.Errorf("host labels may hold only letters, digits and inner hyphens")
			}
		}
	}
	return nil
}
