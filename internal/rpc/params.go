package rpc

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// defaultMaxBody bounds request bodies when Server.MaxBodyBytes is 0; ICE requests are small forms.
const defaultMaxBody int64 = 64 << 10

// singleValued are the protocol parameters that must not be repeated: a second copy
// (e.g. one in the query and one in the body) would make "which one counts" ambiguous.
var singleValued = []string{
	"Action", "Version", "AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
	"SignatureNonce", "SignatureType", "Timestamp", "TimeStamp", "Format", "SecurityToken", "RegionId",
}

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
	for _, name := range singleValued {
		if len(params[name]) > 1 {
			return nil, InvalidParameter("The parameter %q is specified more than once.", name)
		}
	}
	if len(params["Timestamp"]) > 0 && len(params["TimeStamp"]) > 0 {
		return nil, InvalidParameter("Only one of the parameters \"Timestamp\" and \"TimeStamp\" may be specified.")
	}
	return &request{query: query, params: params, body: body}, nil
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
