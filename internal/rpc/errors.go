package rpc

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an ICE error answer: HTTP status, Code, Message.
//
// The package-level *Error values below are shared; treat them as read-only.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("ice error %d %s: %s", e.Status, e.Code, e.Message)
}

// Is reports whether target is an *Error with the same Status and Code, so
// errors.Is(err, ErrForbidden) holds for any Forbidden answer whatever its message.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) || t == nil {
		return false
	}
	return e.Status == t.Status && e.Code == t.Code
}

// NewError returns an *Error with the given HTTP status, Code and Message.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// MissingParameter is 400 MissingParameter naming the absent parameter.
func MissingParameter(name string) *Error {
	return NewError(http.StatusBadRequest, "MissingParameter",
		fmt.Sprintf("The input parameter %q that is mandatory for processing this request is not supplied.", name))
}

// InvalidParameter is 400 InvalidParameter; the message should say which parameter is wrong and why.
func InvalidParameter(format string, args ...any) *Error {
	return NewError(http.StatusBadRequest, "InvalidParameter", fmt.Sprintf(format, args...))
}

// IncompleteSignature is 400 IncompleteSignature for a malformed or insufficient signature
// (bad Authorization header, required headers not signed, unsupported algorithm).
func IncompleteSignature(detail string) *Error {
	msg := "The request signature does not conform to Aliyun standards."
	if detail != "" {
		msg += " " + detail
	}
	return NewError(http.StatusBadRequest, "IncompleteSignature", msg)
}

// InvalidTimestampFormat is 400 InvalidTimeStamp.Format for an unparseable Timestamp or x-acs-date.
func InvalidTimestampFormat(name string) *Error {
	return NewError(http.StatusBadRequest, "InvalidTimeStamp.Format",
		fmt.Sprintf("Specified time stamp or date value is not well formatted: %q must be UTC ISO 8601, e.g. 2024-01-01T00:00:00Z.", name))
}

// BodyTooLarge is 413 RequestEntityTooLarge for a body over the server's MaxBodyBytes.
// 413 keeps it distinct from parameter errors; official SDKs map any 4xx to a client error.
func BodyTooLarge(limit int64) *Error {
	return NewError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
		fmt.Sprintf("The request body exceeds the maximum allowed size of %d bytes.", limit))
}

// Common gateway errors (spec 2.8 / 13.6).
var (
	// ErrInternal is 500 InternalError; it never carries internal details.
	ErrInternal = NewError(http.StatusInternalServerError, "InternalError",
		"The request processing has failed due to some unknown error.")
	// ErrServiceUnavailable is 503 ServiceUnavailable, used when the nonce store is full.
	ErrServiceUnavailable = NewError(http.StatusServiceUnavailable, "ServiceUnavailable",
		"The request has failed due to a temporary failure of the server.")
	// ErrSignatureDoesNotMatch is 400 SignatureDoesNotMatch.
	ErrSignatureDoesNotMatch = NewError(http.StatusBadRequest, "SignatureDoesNotMatch",
		"Specified signature is not matched with our calculation.")
	// ErrIncompleteSignature is 400 IncompleteSignature without further detail.
	ErrIncompleteSignature = IncompleteSignature("")
	// ErrTimestampExpired is 400 InvalidTimeStamp.Expired (outside the window, either direction).
	ErrTimestampExpired = NewError(http.StatusBadRequest, "InvalidTimeStamp.Expired",
		"Specified time stamp or date value is expired.")
	// ErrTimestampFormat is 400 InvalidTimeStamp.Format without naming the parameter.
	ErrTimestampFormat = NewError(http.StatusBadRequest, "InvalidTimeStamp.Format",
		"Specified time stamp or date value is not well formatted.")
	// ErrSignatureNonceUsed is 400 SignatureNonceUsed (replay).
	ErrSignatureNonceUsed = NewError(http.StatusBadRequest, "SignatureNonceUsed",
		"Specified signature nonce was used already.")
	// ErrInvalidVersion is 400 InvalidVersion.
	ErrInvalidVersion = NewError(http.StatusBadRequest, "InvalidVersion",
		"Specified parameter Version is not valid.")
	// ErrActionNotFound is 404 InvalidAction.NotFound (unknown action, path or method).
	ErrActionNotFound = NewError(http.StatusNotFound, "InvalidAction.NotFound",
		"Specified api is not found, please check your url and method.")
	// ErrAccessKeyNotFound is 404 InvalidAccessKeyId.NotFound.
	ErrAccessKeyNotFound = NewError(http.StatusNotFound, "InvalidAccessKeyId.NotFound",
		"Specified access key is not found.")
	// ErrForbidden is 403 Forbidden.
	ErrForbidden = NewError(http.StatusForbidden, "Forbidden",
		"User not authorized to operate on the specified resource.")
	// ErrUserDisable is 403 UserDisable.
	ErrUserDisable = NewError(http.StatusForbidden, "UserDisable", "User is disable.")
	// ErrOperationDenied is 403 OperationDenied.
	ErrOperationDenied = NewError(http.StatusForbidden, "OperationDenied",
		"Your account has not enabled the ICE service.")
	// ErrThrottlingUser is 400 Throttling.User (per-key rate limit); SDKs treat it as retryable.
	ErrThrottlingUser = NewError(http.StatusBadRequest, "Throttling.User",
		"Request was denied due to user flow control.")
)

// ErrKeyNotFound is returned (wrapped is fine) by a KeyLookup for an unknown access key id.
var ErrKeyNotFound = errors.New("rpc: access key not found")

// ErrNonceStoreFull is returned by the in-memory NonceChecker when it holds its maximum of
// unexpired nonces; the server answers 503 rather than forgetting nonces, which would allow replays.
var ErrNonceStoreFull = errors.New("rpc: nonce store full")
