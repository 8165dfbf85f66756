package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/livesnap/livesnap/internal/rpc"
)

// params reads typed action parameters with ICE's error codes.
type params struct{ v url.Values }

func (p params) has(name string) bool { return p.v.Get(name) != "" }

// str returns an optional string parameter of at most max characters.
func (p params) str(name string, max int) (string, error) {
	s := p.v.Get(name)
	if !utf8.ValidString(s) {
		return "", rpc.InvalidParameter("%s is not valid UTF-8", name)
	}
	if utf8.RuneCountInString(s) > max {
		return "", rpc.InvalidParameter("%s is longer than %d characters", name, max)
	}
	return s, nil
}

// required returns a mandatory string parameter of at most max characters.
func (p params) required(name string, max int) (string, error) {
	if strings.TrimSpace(p.v.Get(name)) == "" {
		return "", rpc.MissingParameter(name)
	}
	return p.str(name, max)
}

// intIn returns an integer parameter in [min, max], or def when absent.
func (p params) intIn(name string, min, max, def int) (int, error) {
	s := p.v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, rpc.InvalidParameter("%s must be an integer from %d to %d", name, min, max)
	}
	return n, nil
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

// object decodes a JSON-text object parameter (how the SDKs send StreamInput and
// SnapshotOutput), or its flat form (Name.Field=value), into dst. Unknown fields are refused so
// a typo does not pass silently.
func (p params) object(name string, dst any, fields ...string) error {
	if s := p.v.Get(name); s != "" {
		if len(s) > 4096 {
			return rpc.InvalidParameter("%s is too long", name)
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			return rpc.InvalidParameter("%s must be a JSON object with fields %s: %s", name, strings.Join(fields, ", "), jsonReason(err))
		}
		if dec.More() {
			return rpc.InvalidParameter("%s has trailing data after the JSON object", name)
		}
		return nil
	}
	flat := map[string]string{}
	for _, f := range fields {
		if v := p.v.Get(name + "." + f); v != "" {
			flat[f] = v
		}
	}
	if len(flat) == 0 {
		return rpc.MissingParameter(name)
	}
	b, _ := json.Marshal(flat)
	return json.Unmarshal(b, dst)
}

// jsonReason turns a decoding error into a short message without echoing input at length.
func jsonReason(err error) string {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return fmt.Sprint(msg)
}
