package rpc

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// maxNonceLen bounds SignatureNonce / x-acs-signature-nonce; SDKs send 32 hex chars or a UUID,
// and the bound keeps nonce-store memory per entry small.
const maxNonceLen = 128

// PercentEncode encodes s per RFC 3986 as in spec 2.4: A-Z a-z 0-9 - _ . ~ stay, every other
// byte of the UTF-8 form becomes %XY with uppercase hex.
func PercentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

// canonicalQuery percent-encodes every name=value pair except skip, sorts by encoded name
// (then encoded value, so repeated names are deterministic) and joins them with "&".
func canonicalQuery(params url.Values, skip string) string {
	pairs := make([][2]string, 0, len(params))
	for k, vs := range params {
		if k == skip {
			continue
		}
		ek := PercentEncode(k)
		for _, v := range vs {
			pairs = append(pairs, [2]string{ek, PercentEncode(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][0] != pairs[j][0] {
			return pairs[i][0] < pairs[j][0]
		}
		return pairs[i][1] < pairs[j][1]
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p[0])
		b.WriteByte('=')
		b.WriteString(p[1])
	}
	return b.String()
}

// StringToSignV1 returns METHOD&%2F&enc(canonicalized query) over all params except Signature (spec 2.4).
func StringToSignV1(method string, params url.Values) string {
	return method + "&" + PercentEncode("/") + "&" + PercentEncode(canonicalQuery(params, "Signature"))
}

// SignV1 returns the base64 HMAC-SHA1 V1 signature keyed with secret+"&"; params exclude Signature.
func SignV1(method string, params url.Values, secret string) string {
	return base64.StdEncoding.EncodeToString(signV1Raw(method, params, secret))
}

func signV1Raw(method string, params url.Values, secret string) []byte {
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(StringToSignV1(method, params)))
	return m.Sum(nil)
}

// parseTimestamp accepts UTC ISO 8601 as the SDKs send it (2006-01-02T15:04:05Z); RFC 3339
// fractions and offsets are tolerated because the window check, not the format, is what matters.
func parseTimestamp(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// checkNonce validates a nonce's size before it can reach the nonce store.
func checkNonce(name, nonce string) *Error {
	if nonce == "" {
		return MissingParameter(name)
	}
	if len(nonce) > maxNonceLen {
		return InvalidParameter("The parameter %q must be at most %d characters.", name, maxNonceLen)
	}
	if !utf8.ValidString(nonce) || HasControl(nonce) {
		return InvalidParameter("The parameter %q must be text without control characters.", name)
	}
	return nil
}

// parseV1 extracts the V1 (HMAC-SHA1 Signature parameter) credentials from params.
// Nothing is verified yet; verify needs the secret found by AccessKeyId.
func parseV1(method string, params url.Values) (*auth, *Error) {
	get := func(name string) (string, *Error) {
		v := params.Get(name)
		if v == "" {
			return "", MissingParameter(name)
		}
		return v, nil
	}
	a := &auth{scheme: "V1"}
	var e *Error
	if a.action, e = get("Action"); e != nil {
		return nil, e
	}
	if a.version, e = get("Version"); e != nil {
		return nil, e
	}
	if a.accessKeyID, e = get("AccessKeyId"); e != nil {
		return nil, e
	}
	sig, e := get("Signature")
	if e != nil {
		return nil, e
	}
	sm, e := get("SignatureMethod")
	if e != nil {
		return nil, e
	}
	if sm != "HMAC-SHA1" {
		return nil, InvalidParameter("The SignatureMethod %q is not supported; use HMAC-SHA1.", sm)
	}
	sv, e := get("SignatureVersion")
	if e != nil {
		return nil, e
	}
	if sv != "1.0" {
		return nil, InvalidParameter("The SignatureVersion %q is not supported; use 1.0.", sv)
	}
	// The old SDK always sends an empty SignatureType; bearer tokens are not supported.
	if st := params.Get("SignatureType"); st != "" {
		return nil, InvalidParameter("The SignatureType %q is not supported.", st)
	}
	a.nonce = params.Get("SignatureNonce")
	if e := checkNonce("SignatureNonce", a.nonce); e != nil {
		return nil, e
	}
	tsName := "Timestamp"
	ts := params.Get(tsName)
	if ts == "" {
		// Old documentation spells it TimeStamp; readRequest rejects both being present.
		tsName = "TimeStamp"
		ts = params.Get(tsName)
	}
	if ts == "" {
		return nil, MissingParameter("Timestamp")
	}
	var ok bool
	if a.timestamp, ok = parseTimestamp(ts); !ok {
		return nil, InvalidTimestampFormat(tsName)
	}
	a.verify = func(secret string) *Error {
		got, err := base64.StdEncoding.DecodeString(sig)
		want := signV1Raw(method, params, secret)
		if err != nil || !hmac.Equal(got, want) {
			return ErrSignatureDoesNotMatch
		}
		return nil
	}
	return a, nil
}
