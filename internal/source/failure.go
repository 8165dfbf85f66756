package source

import (
	"context"
	"fmt"
	"time"
)

// failure classifies why a protocol client gave up, so every protocol maps its own errors
// onto the package's errors through the same two functions (openFailure, readFailure).
type failure int

const (
	failOther    failure = iota
	failClosed           // Close was called
	failCanceled         // the caller's context ended
	failTimeout          // a deadline passed: connect → not found, read → stalled
	failRejected         // the server refused: play rejected, HTTP/RTSP 4xx/5xx, connection refused, policy
	failGone             // the connection ended: EOF, reset, publisher left
	failNoVideo          // the stream is up but has no usable video (err wraps ErrNoVideo)
)

// openFailure maps a failure while connecting (before any video unit was returned).
func openFailure(ctx context.Context, proto, where string, kind failure, err error, connectTimeout time.Duration) error {
	switch kind {
	case failClosed, failCanceled:
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", proto, where, ctx.Err())
		}
		return fmt.Errorf("%s %s: %w", proto, where, ErrClosed)
	case failNoVideo:
		return fmt.Errorf("%s %s: %w", proto, where, err)
	case failTimeout:
		return fmt.Errorf("%w: %s %s: no media within %v", ErrStreamNotFound, proto, where, connectTimeout)
	case failRejected:
		return fmt.Errorf("%w: %s %s: %w", ErrStreamNotFound, proto, where, err)
	case failGone:
		return fmt.Errorf("%w: %s %s: connection closed before any media: %w", ErrStreamNotFound, proto, where, err)
	}
	return fmt.Errorf("%s %s: %w", proto, where, err)
}

// readFailure maps a failure of Read on an open stream.
func readFailure(ctx context.Context, proto, where string, kind failure, err error, readTimeout time.Duration) error {
	switch kind {
	case failClosed:
		return ErrClosed
	case failCanceled:
		return fmt.Errorf("%s %s: %w", proto, where, ctx.Err())
	case failTimeout:
		return fmt.Errorf("%w: %s %s: no video for %v", ErrStalled, proto, where, readTimeout)
	case failRejected, failGone:
		return fmt.Errorf("%w: %s %s: %w", ErrEnded, proto, where, err)
	case failNoVideo:
		return fmt.Errorf("%s %s: %w", proto, where, err)
	}
	return fmt.Errorf("%s %s: read: %w", proto, where, err)
}
