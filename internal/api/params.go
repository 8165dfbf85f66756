package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/livesnap/livesnap/internal/rpc"
)

// params reads typed action parameters with ICE's error codes. rpc.Server has already
// refused parameters given twice, so each name has one value.
type params struct{ v url.Values }

// has reports whether a parameter is given with a value; given reports whether it is given at
// all (an empty value included, which some actions read as "clear").
func (p params) has(name string) bool   { return p.v.Get(name) != "" }
func (p params) given(name string) bool { _, ok := p.v[name]; return ok }

// str returns an optional string parameter of at most max characters. Names, ids, keywords
// and formats are text: no control characters (PostgreSQL cannot even store NUL).
func (p params) str(name string, max int) (string, error) {
	s := p.v.Get(name)
	if err := checkText(name, s, max); err != nil {
		return "", err
	}
	return s, nil
}

// checkText applies str's rules to value, named name in the message.
func checkText(name, value string, max int) error {
	switch {
	case !utf8.ValidString(value):
		return rpc.InvalidParameter("%s is not valid UTF-8", name)
	case rpc.HasControl(value):
		return rpc.InvalidParameter("%s must not contain control characters", name)
	case utf8.RuneCountInString(value) > max:
		return rpc.InvalidParameter("%s is longer than %d characters", name, max)
	}
	return nil
}

// required returns a mandatory string parameter of at most max characters.
func (p params) required(name string, max int) (string, error) {
	if strings.TrimSpace(p.v.Get(name)) == "" {
		return "", rpc.MissingParameter(name)
	}
	return p.str(name, max)
}

// intIn returns an integer parameter in [min, max], or def when absent or empty.
func (p params) intIn(name string, min, max, def int) (int, error) {
	if p.v.Get(name) == "" {
		return def, nil
	}
	return p.intGiven(name, min, max)
}

// intGiven returns an integer parameter in [min, max]; absent or empty is invalid too. Only
// the plain decimal form counts: no sign but "-", no leading zeros or spaces, so "+5", "05"
// and " 5" are refused like any other text.
func (p params) intGiven(name string, min, max int) (int, error) {
	s := p.v.Get(name)
	n, err := strconv.Atoi(s)
	if err != nil || !plainDecimal(s) || n < min || n > max {
		return 0, rpc.InvalidParameter("%s must be an integer from %d to %d", name, min, max)
	}
	return n, nil
}

// plainDecimal reports whether s is "0" or a decimal without leading zeros, optionally
// negative ("-0" is not).
func plainDecimal(s string) bool {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || digits[0] == '0' && (len(digits) > 1 || digits != s) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// oneOf returns an enumerated parameter (compared case-sensitively as ICE does), or def.
func (p params) oneOf(name, def string, allowed ...string) (string, error) {
	s := p.v.Get(name)
	if s == "" {
		return def, nil
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", rpc.InvalidParameter("%s must be one of %s", name, strings.Join(allowed, ", "))
}

// maxObjectText bounds a JSON object parameter.
const maxObjectText = 4096

// object decodes a JSON-text object parameter (how the SDKs send StreamInput and
// SnapshotOutput), or its flat form (Name.Field=value), into dst. Field names are exactly the
// spec's (fields), each at most once, each a string: "url", "URL" or a second "Url" are
// refused, not read as another field, and so is a typo. Both forms at once are refused.
func (p params) object(name string, dst any, fields ...string) error {
	var flatNames []string
	for k := range p.v {
		if f, ok := strings.CutPrefix(k, name+"."); ok {
			if !slices.Contains(fields, f) {
				return rpc.InvalidParameter("%s has no field %.40q; its fields are %s", name, f, strings.Join(fields, ", "))
			}
			flatNames = append(flatNames, f)
		}
	}
	var values map[string]string
	if s := p.v.Get(name); s != "" {
		if len(flatNames) > 0 {
			return rpc.InvalidParameter("%s is given both as JSON text and as %s.%s", name, name, flatNames[0])
		}
		if len(s) > maxObjectText {
			return rpc.InvalidParameter("%s is too long", name)
		}
		var err error
		if values, err = decodeObject(s, fields); err != nil {
			return rpc.InvalidParameter("%s must be a JSON object with string fields %s: %s", name, strings.Join(fields, ", "), jsonReason(err))
		}
	} else {
		values = map[string]string{}
		for _, f := range flatNames {
			if v := p.v.Get(name + "." + f); v != "" {
				values[f] = v
			}
		}
		if len(values) == 0 {
			return rpc.MissingParameter(name)
		}
	}
	b, _ := json.Marshal(values)
	return json.Unmarshal(b, dst)
}

// decodeObject reads one JSON object of string fields whose names are all in fields, each at
// most once (encoding/json alone would match names without regard to case and let the last
// copy win).
func decodeObject(s string, fields []string) (map[string]string, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	if tok, err := dec.Token(); err != nil {
		return nil, err
	} else if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	out := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string) // inside an object every other token is a name
		if !slices.Contains(fields, key) {
			return nil, fmt.Errorf("unknown field %.40q", key)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("field %s is given twice", key)
		}
		if tok, err = dec.Token(); err != nil {
			return nil, err
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("field %s is not a string", key)
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return out, nil
}

// jsonReason turns a decoding error into a short message without echoing input at length.
func jsonReason(err error) string {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}
