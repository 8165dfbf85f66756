package rpc

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// v3Algorithm is the only V3 algorithm accepted (SM3 variants are not supported).
const v3Algorithm = "ACS3-HMAC-SHA256"

// acsDateLayout is the x-acs-date / Timestamp form the SDKs send.
const acsDateLayout = "2006-01-02T15:04:05Z"

// requiredSignedV3 must all be covered by a V3 signature: without them a captured request
// could be retargeted (host, action, version) or replayed (date, nonce).
var requiredSignedV3 = []string{"host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}

// hashHex returns the lowercase hex SHA-256 of b.
func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// canonicalURI encodes each path segment per RFC 3986 and keeps "/"; an empty path is "/".
func canonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = PercentEncode(s)
	}
	return strings.Join(segs, "/")
}

// headerValues collects every value of the header named name (case-insensitively, so
// non-canonical keys in a hand-built http.Header are merged too), trimmed and sorted.
func headerValues(headers http.Header, name string) []string {
	var vals []string
	for k, vs := range headers {
		if strings.EqualFold(k, name) {
			for _, v := range vs {
				vals = append(vals, strings.TrimSpace(v))
			}
		}
	}
	sort.Strings(vals)
	return vals
}

// normalizeSignedHeaders lowercases, sorts and de-duplicates header names.
func normalizeSignedHeaders(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.ToLower(strings.TrimSpace(n)))
	}
	sort.Strings(out)
	return compactStrings(out)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// CanonicalRequestV3 builds the ACS3 canonical request (spec 2.5). The host must be present in
// headers under "Host"; signedHeaders are lowercased and sorted here.
func CanonicalRequestV3(method, path string, query url.Values, headers http.Header, signedHeaders []string, payloadHash string) string {
	names := normalizeSignedHeaders(signedHeaders)
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(path))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(query, ""))
	b.WriteByte('\n')
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(strings.Join(headerValues(headers, n), ","))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(names, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// signV3Raw returns HMAC-SHA256(secret, "ACS3-HMAC-SHA256\n" + hex(SHA256(canonicalRequest))).
func signV3Raw(canonicalRequest, secret string) []byte {
	sts := v3Algorithm + "\n" + hashHex([]byte(canonicalRequest))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(sts))
	return m.Sum(nil)
}

// SignV3 signs req in place for body: it sets x-acs-date, x-acs-signature-nonce,
// x-acs-content-sha256 and Authorization, signing host, content-type (if set) and every
// x-acs-* header already present. An empty nonce is replaced by 32 random hex characters.
// The caller sets x-acs-action / x-acs-version (and the body) beforehand.
func SignV3(req *http.Request, body []byte, accessKeyID, secret, nonce string, now time.Time) {
	if nonce == "" {
		nonce = randomHex(16)
	}
	payloadHash := hashHex(body)
	req.Header.Set("x-acs-date", now.UTC().Format(acsDateLayout))
	req.Header.Set("x-acs-signature-nonce", nonce)
	req.Header.Set("x-acs-content-sha256", payloadHash)

	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers := req.Header.Clone()
	headers.Set("Host", host)
	signed := []string{"host"}
	for k := range req.Header {
		lk := strings.ToLower(k)
		if lk == "content-type" || strings.HasPrefix(lk, "x-acs-") {
			signed = append(signed, lk)
		}
	}
	signed = normalizeSignedHeaders(signed)
	cr := CanonicalRequestV3(req.Method, req.URL.Path, req.URL.Query(), headers, signed, payloadHash)
	req.Header.Set("Authorization", v3Algorithm+" Credential="+accessKeyID+
		",SignedHeaders="+strings.Join(signed, ";")+
		",Signature="+hex.EncodeToString(signV3Raw(cr, secret)))
}

// randomHex returns 2n random lowercase hex characters.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// isV3 reports whether an Authorization header selects the V3 scheme.
func isV3(authorization string) bool {
	alg, _, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	return alg == v3Algorithm
}

// parseAuthorizationV3 splits "ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..".
func parseAuthorizationV3(h string) (cred string, signed []string, sig []byte, e *Error) {
	_, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", nil, nil, IncompleteSignature("The Authorization header is malformed.")
		}
		if _, dup := fields[k]; dup {
			return "", nil, nil, IncompleteSignature("The Authorization header repeats " + k + ".")
		}
		fields[k] = strings.TrimSpace(v)
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return "", nil, nil, IncompleteSignature("The Authorization header lacks " + k + ".")
		}
	}
	for _, n := range strings.Split(fields["SignedHeaders"], ";") {
		if strings.TrimSpace(n) == "" {
			return "", nil, nil, IncompleteSignature("The SignedHeaders list contains an empty name.")
		}
		signed = append(signed, n)
	}
	sig, err := hex.DecodeString(fields["Signature"])
	if err != nil || len(sig) != sha256.Size {
		return "", nil, nil, IncompleteSignature("The Signature is not a hex SHA-256 HMAC.")
	}
	return fields["Credential"], normalizeSignedHeaders(signed), sig, nil
}

// parseV3 extracts ACS3-HMAC-SHA256 credentials from r and checks which headers are signed.
// Nothing is verified yet; verify needs the secret found by the Credential key id.
func parseV3(r *http.Request, req *request) (*auth, *Error) {
	cred, signed, sig, e := parseAuthorizationV3(r.Header.Get("Authorization"))
	if e != nil {
		return nil, e
	}
	a := &auth{scheme: "V3", accessKeyID: cred}
	required := map[string]string{}
	for _, name := range []string{"x-acs-action", "x-acs-version", "x-acs-signature-nonce", "x-acs-date"} {
		vs := headerValues(r.Header, name)
		if len(vs) == 0 || vs[0] == "" {
			return nil, MissingParameter(name)
		}
		if len(vs) > 1 {
			return nil, InvalidParameter("The header %q is specified more than once.", name)
		}
		required[name] = vs[0]
	}
	a.action, a.version, a.nonce = required["x-acs-action"], required["x-acs-version"], required["x-acs-signature-nonce"]
	if e := checkNonce("x-acs-signature-nonce", a.nonce); e != nil {
		return nil, e
	}
	var ok bool
	if a.timestamp, ok = parseTimestamp(required["x-acs-date"]); !ok {
		return nil, InvalidTimestampFormat("x-acs-date")
	}

	isSigned := make(map[string]bool, len(signed))
	for _, n := range signed {
		isSigned[n] = true
	}
	for _, n := range requiredSignedV3 {
		if !isSigned[n] {
			return nil, IncompleteSignature("The header " + n + " must be signed.")
		}
	}
	// Every x-acs-* header is signed by the SDKs; an unsigned one could have been injected.
	for k := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-acs-") && !isSigned[lk] {
			return nil, IncompleteSignature("The header " + lk + " must be signed.")
		}
	}
	// The Content-Type decides whether the body is read as parameters, so it must be signed.
	if len(req.body) > 0 && r.Header.Get("Content-Type") != "" && !isSigned["content-type"] {
		return nil, IncompleteSignature("The header content-type must be signed.")
	}

	payloadHash := hashHex(req.body)
	claimed := r.Header.Get("x-acs-content-sha256")
	headers := r.Header.Clone()
	headers.Set("Host", r.Host) // net/http moves Host out of the header map
	method, path, query := r.Method, r.URL.Path, req.query
	a.verify = func(secret string) *Error {
		if claimed != "" && !strings.EqualFold(claimed, payloadHash) {
			return NewError(http.StatusBadRequest, "SignatureDoesNotMatch",
				"The x-acs-content-sha256 header does not match the request body.")
		}
		cr := CanonicalRequestV3(method, path, query, headers, signed, payloadHash)
		if !hmac.Equal(sig, signV3Raw(cr, secret)) {
			return ErrSignatureDoesNotMatch
		}
		return nil
	}
	return a, nil
}
