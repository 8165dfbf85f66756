package blob

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livesnap/livesnap/internal/snapshot"
)

func TestLocalPutIsAtomicAndContained(t *testing.T) {
	root := t.TempDir()
	l := &Local{Root: root}
	out := snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "e", Bucket: "testbucket"}
	ctx := context.Background()
	if err := l.Put(ctx, out, "snapshot/a/1.jpg", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, out, "snapshot/a/1.jpg", []byte("two")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "testbucket", "snapshot", "a", "1.jpg"))
	if err != nil || !bytes.Equal(got, []byte("two")) {
		t.Fatalf("read back %q, %v", got, err)
	}
	left, _ := filepath.Glob(filepath.Join(root, "testbucket", "snapshot", "a", ".tmp-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
	for _, bad := range []struct{ bucket, object string }{
		{"testbucket", "../x.jpg"},
		{"testbucket", "a/../../x.jpg"},
		{"testbucket", "/etc/x.jpg"},
		{"../evil", "x.jpg"},
		{"Bad_Bucket", "x.jpg"},
		{"", "x.jpg"},
	} {
		if err := l.Put(ctx, snapshot.SnapshotOutput{Bucket: bad.bucket}, bad.object, []byte("x")); err == nil {
			t.Errorf("Put(%q, %q) must fail", bad.bucket, bad.object)
		}
	}
	if err := l.Delete(ctx, out, "snapshot/a/1.jpg"); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(ctx, out, "snapshot/a/1.jpg"); err != nil {
		t.Fatalf("deleting a missing object: %v", err)
	}
}

func TestLocalRefusesOverlongFileNamesAndHidesItsPaths(t *testing.T) {
	root := t.TempDir()
	l := &Local{Root: root}
	out := snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "e", Bucket: "testbucket"}
	ctx := context.Background()
	long := strings.Repeat("a", 252) + ".jpg" // 256 bytes: one over NAME_MAX
	err := l.Put(ctx, out, "snapshot/"+long, []byte("x"))
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("a 256-byte file name: %v, want ErrRefused (final, not retried)", err)
	}
	if err := l.Put(ctx, out, "snapshot/"+long[1:], []byte("x")); err != nil {
		t.Fatalf("a 255-byte file name: %v", err)
	}
	// A write the file system refuses: the bucket's directory is a file.
	if err := os.WriteFile(filepath.Join(root, "blocked"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = l.Put(ctx, snapshot.SnapshotOutput{Bucket: "blocked"}, "a/b.jpg", []byte("x"))
	if err == nil {
		t.Fatal("wrote under a file")
	}
	if strings.Contains(err.Error(), root) || strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("the error shows the server's paths: %v", err)
	}
	if !strings.Contains(err.Error(), "blocked/a/b.jpg") {
		t.Errorf("the error does not name the object: %v", err)
	}
}
