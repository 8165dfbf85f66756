package snapshot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
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

// CheckObjectName refuses names that could escape a bucket or confuse a file system or an
// object store: empty, over-long, leading "/", "\", control characters, and "." or ".."
// segments.
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
		if r < 0x20 || r == 0x7f || r == '\\' || r == utf8.RuneError {
			return fmt.Errorf("contains a control character, backslash or invalid UTF-8")
		}
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("has an empty, \".\" or \"..\" path segment")
		}
	}
	return nil
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
