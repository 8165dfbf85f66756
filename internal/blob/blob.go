// Package blob writes snapshot objects to their output: a local directory (Local) or an
// S3-compatible service such as Alibaba Cloud OSS, AWS S3, MinIO or versitygw (S3), chosen per
// SnapshotOutput by a Router built from the operator's storage configuration (Config).
package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/livesnap/livesnap/internal/snapshot"
)

// Writer stores and removes objects.
type Writer interface {
	// Put stores data as bucket/object atomically: a reader sees the old object or the whole
	// new one, never a part.
	Put(ctx context.Context, out snapshot.SnapshotOutput, object string, data []byte) error
	// Delete removes bucket/object; a missing object is not an error.
	Delete(ctx context.Context, out snapshot.SnapshotOutput, object string) error
}

// ErrRefused marks a write or delete that can never succeed as asked: the output is not
// configured, its bucket is not allowed, or a name is unsafe. Retrying it is pointless.
var ErrRefused = errors.New("refused")

// StoreError is a failed request to an S3 store. Its Error is the whole story for the
// operator's log (the store's host, the network error); Public is what the job's owner may
// see in GetLiveSnapshotJob's LastError: the object and the store's error code, never the
// operator's hosts and addresses.
type StoreError struct {
	Op, Host, Bucket, Object string
	Code                     string // the store's error code ("AccessDenied"), when it answered
	Err                      error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("%s s3://%s/%s/%s: %v", e.Op, e.Host, e.Bucket, e.Object, e.Err)
}

func (e *StoreError) Unwrap() error { return e.Err }

// Public is the error without the operator's details.
func (e *StoreError) Public() string {
	why := "the object store did not answer"
	if e.Code != "" {
		why = "the object store answered " + e.Code
	}
	return fmt.Sprintf("%s %s/%s: %s", e.Op, e.Bucket, e.Object, why)
}

// PublicMessage is err's message as a job's owner may see it: a StoreError within it is
// replaced by its Public form; anything else is as it is.
func PublicMessage(err error) string {
	msg := err.Error()
	var se *StoreError
	if errors.As(err, &se) {
		msg = strings.Replace(msg, se.Error(), se.Public(), 1)
	}
	return msg
}

// checkNames applies the bucket and object naming rules every backend shares, so no name can
// leave its bucket or confuse a store.
func checkNames(bucket, object string) error {
	if err := snapshot.CheckBucket(bucket); err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if err := snapshot.CheckObjectName(object); err != nil {
		return fmt.Errorf("%w: object name %q %v", ErrRefused, object, err)
	}
	return nil
}

// Local keeps objects under Root/<bucket>/<object>. The endpoint is recorded but not used.
type Local struct {
	Root string
}

// maxFileName is the longest file name (one path segment) Linux file systems take (NAME_MAX),
// in bytes: a longer segment is refused up front rather than failing every write.
const maxFileName = 255

// withoutPath drops the file system path from an os error: errors reach GetLiveSnapshotJob's
// LastError, and API callers must not see the server's directories or temporary names. The
// bucket and object name, which are the caller's own, are added by the caller.
func withoutPath(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	case errors.As(err, &le):
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}

// Path returns where an object lives on disk, refusing names that would leave Root/<bucket>.
func (l *Local) Path(bucket, object string) (string, error) {
	if err := checkNames(bucket, object); err != nil {
		return "", err
	}
	for _, seg := range strings.Split(object, "/") {
		if len(seg) > maxFileName {
			return "", fmt.Errorf("%w: object name %q has a segment of %d bytes, over the %d a local file name may have", ErrRefused, object, len(seg), maxFileName)
		}
	}
	dir := filepath.Join(l.Root, bucket)
	p := filepath.Join(dir, filepath.FromSlash(object))
	if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: object name %q leaves its bucket", ErrRefused, object)
	}
	return p, nil
}

// Put implements Writer: write a temporary file beside the target, sync it, rename it over.
func (l *Local) Put(ctx context.Context, out snapshot.SnapshotOutput, object string, data []byte) error {
	p, err := l.Path(out.Bucket, object)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("put %s/%s: %w", out.Bucket, object, withoutPath(err))
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", out.Bucket, object, withoutPath(err))
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), p)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("put %s/%s: %w", out.Bucket, object, withoutPath(werr))
	}
	return nil
}

// Delete implements Writer; deleting a missing object is not an error.
func (l *Local) Delete(ctx context.Context, out snapshot.SnapshotOutput, object string) error {
	p, err := l.Path(out.Bucket, object)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("delete %s/%s: %w", out.Bucket, object, withoutPath(err))
	}
	return nil
}
