package rpc

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// defaultMaxBody bounds request bodies when Server.MaxBodyBytes is 0; ICE requests are small forms.
const defaultMaxBody int64 = 64 << 10

// protocolParams are the common parameters of the RPC protocol (spec 2.3). Like every
// parameter they may be given once only; their values must also be plain text (no control
// characters), since some of them reach the store (SignatureNonce) before any action runs.
// AccessKeyId is checked apart: an unusable key id is answered like an unknown one.
var protocolParams = []string{
	"Action", "Version", "AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
	"SignatureNonce", "SignatureType", "Timestamp", "TimeStamp", "Format", "SecurityToken", "RegionId",
}

// HasControl reports whether s holds a control character (C0, DEL or C1): never part of a
// name, id or protocol value, and NUL cannot even be stored in PostgreSQL text.
func HasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// usableKeyID reports whether an access key id can be looked up at all; any other id is
// answered 404 InvalidAccessKeyId.NotFound without asking the store.
func usableKeyID(id string) bool { return utf8.ValidString(id) && !HasControl(id) }

// request is the parsed, not yet authenticated, form of an HTTP request.
type request struct {
	query  url.Values // decoded query string only (V3 canonical query)
	params url.Values // query then form body values
	body   []byte     // raw body bytes, as received (V3 payload hash)
}

// readRequest reads at most limit body bytes and merges query and form parameters.
// The raw body is kept so that V3 hashes exactly the bytes that were sent.
func readRequest(r *http.Request, limit int64) (*request, *Error) {
	if limit <= 0 {
		limit = defaultMaxBody
	}
	if r.ContentLength > limit {
		return nil, BodyTooLarge(limit)
	}
	var body []byte
	if r.Body != nil {
		var err error
		// Read one byte more than allowed to detect an oversized body without trusting Content-Length.
		body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, BodyTooLarge(limit)
			}
			return nil, InvalidParameter("The request body could not be read.")
		}
		if int64(len(body)) > limit {
			return nil, BodyTooLarge(limit)
		}
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		// Reject rather than silently drop pairs, so what is signed is what is used.
		return nil, InvalidParameter("The query string is malformed.")
	}
	params := make(url.Values, len(query))
	for k, vs := range query {
		params[k] = append([]string(nil), vs...)
	}
	if len(body) > 0 && isForm(r.Header.Get("Content-Type")) {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, InvalidParameter("The form body is malformed.")
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	if e := checkParams(params); e != nil {
		return nil, e
	}
	if len(params["Timestamp"]) > 0 && len(params["TimeStamp"]) > 0 {
		return nil, InvalidParameter("Only one of the parameters \"Timestamp\" and \"TimeStamp\" may be specified.")
	}
	return &request{query: query, params: params, body: body}, nil
}

// checkParams refuses what no handler could use unambiguously or store safely: a parameter
// given more than once (in the query and the body, or twice in one: a proxy that reads the
// first copy would see another value than livesnap), names and values that are not UTF-8 or
// hold NUL, and control characters in the protocol parameters. Repeat lists use Name.N, so
// they never repeat a name.
func checkParams(params url.Values) *Error {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names) // the same request always gets the same answer
	for _, k := range names {
		if len(params[k]) > 1 {
			return InvalidParameter("The parameter %q is specified more than once.", k)
		}
	}
	for _, k := range names {
		v := params[k][0]
		if !utf8.ValidString(k) || strings.ContainsRune(k, 0) {
			return InvalidParameter("A parameter name is not valid UTF-8 text.")
		}
		if k == "AccessKeyId" {
			continue // an unusable key id is an unknown one (404), checked after Version and Action
		}
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return InvalidParameter("The parameter %q is not valid UTF-8 text.", k)
		}
	}
	for _, k := range protocolParams {
		if k != "AccessKeyId" && HasControl(params.Get(k)) {
			return InvalidParameter("The parameter %q contains a control character.", k)
		}
	}
	return nil
}

// isForm reports whether a Content-Type is application/x-www-form-urlencoded (any parameters).
// Other bodies are not parameters: they are still hashed for V3 but never parsed.
func isForm(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		// Tolerate odd parameter syntax after a correct media type.
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	}
	return mt == "application/x-www-form-urlencoded"
}
