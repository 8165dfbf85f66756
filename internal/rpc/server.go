package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// defaultWindow is the accepted clock skew in both directions, as the ICE gateway does.
const defaultWindow = 15 * time.Minute

// Credential is what KeyLookup returns for an access key id.
type Credential struct {
	AccessKeyID, Secret string
	Principal           any
}

// KeyLookup finds the credential for an access key id; ErrKeyNotFound (wrapped is fine) means
// unknown, and a returned *Error (e.g. 403 UserDisable) is passed to the client as is.
type KeyLookup func(ctx context.Context, accessKeyID string) (Credential, error)

// Call is one authenticated request handed to an action handler.
type Call struct {
	Action, Version string
	Params          url.Values // query then form body values; includes the common parameters
	AccessKeyID     string
	Principal       any    // from Credential
	Host            string // r.Host
	RequestID       string
	Scheme          string // "V1" or "V3"
}

// Handler runs an action and returns a value whose JSON form is an object (it must not contain
// RequestId, which the server adds first). A *Error becomes the error answer; any other error
// becomes 500 InternalError with the detail only logged.
type Handler func(ctx context.Context, call *Call) (any, error)

// auth is a parsed, not yet verified, signature of either scheme.
type auth struct {
	scheme                       string
	action, version, accessKeyID string
	nonce                        string
	timestamp                    time.Time
	verify                       func(secret string) *Error // constant-time; nil error means valid
}

// Server serves the ICE RPC protocol (V1 and V3 signatures) on path "/".
type Server struct {
	Version         string             // required API version, e.g. "2020-11-09"; any other (or, if empty, every) version → 400 InvalidVersion
	Actions         map[string]Handler // unknown action → 404 InvalidAction.NotFound
	Keys            KeyLookup
	Nonces          NonceChecker     // nil → an in-memory one (NewMemoryNonces defaults) on Now's clock
	Now             func() time.Time // nil → time.Now
	MaxBodyBytes    int64            // 0 → 64 KiB; a larger body → 413 RequestEntityTooLarge
	TimestampWindow time.Duration    // 0 → 15 min, both directions
	// Authorize runs after signature and nonce checks, before the handler; a *Error is sent as is.
	Authorize func(ctx context.Context, call *Call) error
	Logger    *slog.Logger // nil → slog.Default()

	once          sync.Once
	defaultNonces NonceChecker
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) nonces() NonceChecker {
	if s.Nonces != nil {
		return s.Nonces
	}
	s.once.Do(func() { s.defaultNonces = newMemoryNonces(0, s.now) })
	return s.defaultNonces
}

func (s *Server) window() time.Duration {
	if s.TimestampWindow > 0 {
		return s.TimestampWindow
	}
	return defaultWindow
}

// ServeHTTP implements http.Handler. It always answers JSON with a fresh RequestId.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("x-acs-request-id", reqID)
	log := s.logger().With("request_id", reqID)
	defer func() {
		if p := recover(); p != nil {
			log.ErrorContext(r.Context(), "rpc: handler panic", "panic", fmt.Sprint(p))
			s.writeError(w, r, reqID, ErrInternal)
		}
	}()
	body, err := s.serve(r, reqID, log)
	if err != nil {
		s.writeError(w, r, reqID, s.toError(r.Context(), log, err))
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// serve runs the pipeline: parse → version → action → key → signature → timestamp → nonce →
// Authorize → handler. It returns the success body or an error for toError.
func (s *Server) serve(r *http.Request, reqID string, log *slog.Logger) ([]byte, error) {
	ctx := r.Context()
	if r.URL.Path != "/" || (r.Method != http.MethodGet && r.Method != http.MethodPost) {
		return nil, ErrActionNotFound
	}
	req, e := readRequest(r, s.MaxBodyBytes)
	if e != nil {
		return nil, e
	}
	// e stays a *Error (never stored in an error variable) so a nil one is a real nil.
	var a *auth
	switch authz := r.Header.Get("Authorization"); {
	case isV3(authz):
		a, e = parseV3(r, req)
	case req.params.Get("Signature") == "" && authz != "":
		return nil, IncompleteSignature("The Authorization header uses an unsupported signature algorithm.")
	default:
		// V1; any other Authorization header (e.g. added by a proxy) is ignored.
		a, e = parseV1(r.Method, req.params)
	}
	if e != nil {
		return nil, e
	}
	if a.version != s.Version {
		return nil, ErrInvalidVersion
	}
	h, ok := s.Actions[a.action]
	if !ok || h == nil {
		return nil, ErrActionNotFound
	}
	if s.Keys == nil {
		return nil, errors.New("rpc: Server.Keys is nil")
	}
	if !usableKeyID(a.accessKeyID) {
		return nil, ErrAccessKeyNotFound // no such key can exist; the store is not asked
	}
	cred, err := s.Keys(ctx, a.accessKeyID)
	if err != nil {
		return nil, err
	}
	if e := a.verify(cred.Secret); e != nil {
		log.InfoContext(ctx, "rpc: signature rejected", "scheme", a.scheme, "access_key_id", a.accessKeyID, "action", a.action, "code", e.Code)
		return nil, e
	}
	if d := s.now().Sub(a.timestamp); d > s.window() || d < -s.window() {
		return nil, ErrTimestampExpired
	}
	// Only now, with the signature verified, may the nonce be consumed: strangers cannot burn it.
	fresh, err := s.nonces().UseNonce(ctx, a.accessKeyID, a.nonce, a.timestamp.Add(s.window()))
	if err != nil {
		return nil, err
	}
	if !fresh {
		return nil, ErrSignatureNonceUsed
	}
	call := &Call{
		Action: a.action, Version: a.version, Params: req.params,
		AccessKeyID: a.accessKeyID, Principal: cred.Principal,
		Host: r.Host, RequestID: reqID, Scheme: a.scheme,
	}
	if s.Authorize != nil {
		if err := s.Authorize(ctx, call); err != nil {
			return nil, err
		}
	}
	res, err := h(ctx, call)
	if err != nil {
		return nil, err
	}
	return successBody(reqID, res)
}

// toError maps any pipeline error to the answer sent, logging what is not sent.
func (s *Server) toError(ctx context.Context, log *slog.Logger, err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e) && e != nil:
		return e
	case errors.Is(err, ErrKeyNotFound):
		return ErrAccessKeyNotFound
	case errors.Is(err, ErrNonceStoreFull):
		log.WarnContext(ctx, "rpc: nonce store full", "err", err)
		return ErrServiceUnavailable
	default:
		log.ErrorContext(ctx, "rpc: internal error", "err", err)
		return ErrInternal
	}
}

// successBody marshals res and inserts "RequestId" as its first field.
func successBody(reqID string, res any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // URLs in results stay readable; the output is JSON, not HTML
	if res == nil {
		res = struct{}{}
	}
	if err := enc.Encode(res); err != nil {
		return nil, fmt.Errorf("rpc: marshal result: %w", err)
	}
	obj := bytes.TrimSpace(buf.Bytes())
	if len(obj) < 2 || obj[0] != '{' {
		return nil, fmt.Errorf("rpc: result %T is not a JSON object", res)
	}
	out := make([]byte, 0, len(obj)+64)
	out = append(out, `{"RequestId":`...)
	out = append(out, quoteJSON(reqID)...)
	if rest := bytes.TrimSpace(obj[1:]); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, obj[1:]...), nil
}

// errorBody is the ICE error envelope (spec 2.7).
type errorBody struct {
	RequestID string `json:"RequestId"`
	HostID    string `json:"HostId"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	Recommend string `json:"Recommend"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, reqID string, e *Error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep "&" literal in Recommend
	_ = enc.Encode(errorBody{
		RequestID: reqID, HostID: r.Host, Code: e.Code, Message: e.Message,
		Recommend: "https://api.alibabacloud.com/troubleshoot?q=" + url.QueryEscape(e.Code) +
			"&product=ICE&requestId=" + url.QueryEscape(reqID),
	})
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func quoteJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// newRequestID returns a random UUID (version 4) in uppercase, as ICE request ids look.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}
