package blob

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
