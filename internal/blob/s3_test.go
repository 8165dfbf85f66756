package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/blob/s3test"
	"github.com/livesnap/livesnap/internal/snapshot"
)

// testJPEG encodes a small real JPEG.
func testJPEG(t *testing.T, w, h int, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newS3(t *testing.T, srv *s3test.Server, secret string) *S3 {
	t.Helper()
	w, err := NewS3(S3Options{URL: srv.URL, Region: srv.Region, AccessKeyID: srv.AccessKey, SecretAccessKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestS3PutReadBackOverwriteDelete(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t, "blob")
	w := newS3(t, srv, srv.SecretKey)
	out := snapshot.SnapshotOutput{StorageType: "s3", Endpoint: srv.Host(), Bucket: bucket}
	ctx := context.Background()

	first, second := testJPEG(t, 64, 36, 10), testJPEG(t, 64, 36, 200)
	if err := w.Put(ctx, out, "snapshot/j/1.jpg", first); err != nil {
		t.Fatal(err)
	}
	if err := w.Put(ctx, out, "snapshot/j/1.jpg", second); err != nil {
		t.Fatal(err)
	}
	got, ctype, err := srv.Get(t, bucket, "snapshot/j/1.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, second) || ctype != "image/jpeg" {
		t.Fatalf("read back %d bytes of %q; want the second JPEG (%d bytes) as image/jpeg", len(got), ctype, len(second))
	}
	img, err := jpeg.Decode(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("object is not a JPEG: %v", err)
	}
	if c := color.GrayModel.Convert(img.At(10, 10)).(color.Gray); c.Y < 150 || img.Bounds().Dx() != 64 {
		t.Fatalf("decoded %v with gray %d: not the second picture", img.Bounds(), c.Y)
	}

	if err := w.Delete(ctx, out, "snapshot/j/1.jpg"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Get(t, bucket, "snapshot/j/1.jpg"); !errors.Is(err, s3test.ErrNoObject) {
		t.Fatalf("after Delete: %v, want no such object", err)
	}
	if err := w.Delete(ctx, out, "snapshot/j/1.jpg"); err != nil {
		t.Fatalf("deleting a missing object: %v", err)
	}
	// A bucket that does not exist is an error, not a silent success.
	missing := snapshot.SnapshotOutput{StorageType: "s3", Endpoint: srv.Host(), Bucket: "no-such-bucket-" + strings.ToLower(t.Name()[:4])}
	if err := w.Put(ctx, missing, "x.jpg", first); err == nil || errors.Is(err, ErrRefused) {
		t.Fatalf("put into a missing bucket: %v", err)
	}
}

func TestS3WrongSecretFails(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t, "blob")
	w := newS3(t, srv, srv.SecretKey+"-wrong")
	out := snapshot.SnapshotOutput{StorageType: "s3", Endpoint: "e", Bucket: bucket}
	err := w.Put(context.Background(), out, "a.jpg", testJPEG(t, 8, 8, 1))
	if err == nil {
		t.Fatal("a put with a wrong secret must fail")
	}
	if errors.Is(err, ErrRefused) {
		t.Fatalf("an auth failure is the server's answer, not a refusal by configuration: %v", err)
	}
	if strings.Contains(err.Error(), srv.SecretKey) {
		t.Fatalf("the error shows the secret: %v", err)
	}
	if keys := srv.Objects(t, bucket, ""); len(keys) != 0 {
		t.Fatalf("objects written with a wrong secret: %v", keys)
	}
	if err := w.Delete(context.Background(), out, "a.jpg"); err == nil {
		t.Fatal("a delete with a wrong secret must fail")
	}
}

func TestS3RefusesUnsafeNames(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t, "blob")
	w := newS3(t, srv, srv.SecretKey)
	ctx := context.Background()
	for _, bad := range []struct{ bucket, object string }{
		{bucket, "../x.jpg"},
		{bucket, "a/../../x.jpg"},
		{bucket, "a//x.jpg"},
		{bucket, "/x.jpg"},
		{bucket, "a\\x.jpg"},
		{bucket, "a/\x00.jpg"},
		{"../" + bucket, "x.jpg"},
		{"Upper", "x.jpg"},
		{"", "x.jpg"},
	} {
		out := snapshot.SnapshotOutput{StorageType: "s3", Endpoint: "e", Bucket: bad.bucket}
		if err := w.Put(ctx, out, bad.object, []byte("x")); !errors.Is(err, ErrRefused) {
			t.Errorf("Put(%q, %q) = %v, want ErrRefused", bad.bucket, bad.object, err)
		}
		if err := w.Delete(ctx, out, bad.object); !errors.Is(err, ErrRefused) {
			t.Errorf("Delete(%q, %q) = %v, want ErrRefused", bad.bucket, bad.object, err)
		}
	}
	if keys := srv.Objects(t, bucket, ""); len(keys) != 0 {
		t.Fatalf("unsafe names reached the server: %v", keys)
	}
}

// A server that accepts connections and never answers: each request ends at its timeout, and
// a cancelled context ends it at once.
func TestS3RequestsAreBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never answered
		}
	}()
	defer func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	}()
	w, err := NewS3(S3Options{URL: "http://" + ln.Addr().String(), AccessKeyID: "k", SecretAccessKey: "s", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	out := snapshot.SnapshotOutput{StorageType: "s3", Endpoint: "e", Bucket: "silent"}
	if err := w.Put(context.Background(), out, "a.jpg", []byte("x")); err == nil {
		t.Fatal("a put to a silent server must fail")
	}
	if err := w.Delete(context.Background(), out, "a.jpg"); err == nil {
		t.Fatal("a delete on a silent server must fail")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Put(ctx, out, "a.jpg", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("put with a cancelled context: %v", err)
	}
}

func TestNewS3ChecksOptions(t *testing.T) {
	for _, o := range []S3Options{
		{URL: "ftp://h", AccessKeyID: "k", SecretAccessKey: "s"},
		{URL: "http://", AccessKeyID: "k", SecretAccessKey: "s"},
		{URL: "http://h/path", AccessKeyID: "k", SecretAccessKey: "s"},
		{URL: "http://h?x=1", AccessKeyID: "k", SecretAccessKey: "s"},
		{URL: "http://h", AccessKeyID: "", SecretAccessKey: "s"},
		{URL: "http://h", AccessKeyID: "k", SecretAccessKey: "s", Style: "dns"},
		{URL: "http://h", AccessKeyID: "k", SecretAccessKey: "s", Timeout: time.Hour},
	} {
		if _, err := NewS3(o); err == nil {
			t.Errorf("NewS3(%+v) must fail", o)
		}
	}
	_, err := NewS3(S3Options{URL: "http://me:hunter2@h", AccessKeyID: "k", SecretAccessKey: "s"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a URL with a password: %v (must fail without showing it)", err)
	}
	if _, err := NewS3(S3Options{URL: "https://oss-cn-shanghai.aliyuncs.com", Style: StyleVirtualHost, AccessKeyID: "k", SecretAccessKey: "s"}); err != nil {
		t.Fatal(err)
	}
}

func TestPublicMessageHidesTheStoresAddress(t *testing.T) {
	down := &StoreError{Op: "put", Host: "10.1.2.3:9000", Bucket: "b", Object: "o.jpg",
		Err: errors.New(`Put "http://10.1.2.3:9000/b/o.jpg": dial tcp 10.1.2.3:9000: connect: connection refused`)}
	wrapped := fmt.Errorf("write o.jpg (attempt 4): %w", down)
	if !strings.Contains(wrapped.Error(), "10.1.2.3") {
		t.Fatalf("the operator's log must keep the whole story: %v", wrapped)
	}
	got := PublicMessage(wrapped)
	if got != "write o.jpg (attempt 4): put b/o.jpg: the object store did not answer" {
		t.Errorf("public message %q", got)
	}
	denied := &StoreError{Op: "put", Host: "10.1.2.3:9000", Bucket: "b", Object: "o.jpg", Code: "AccessDenied", Err: errors.New("Access Denied.")}
	if got := PublicMessage(denied); got != "put b/o.jpg: the object store answered AccessDenied" {
		t.Errorf("public message %q", got)
	}
	if got := PublicMessage(errors.New("decode: no picture")); got != "decode: no picture" {
		t.Errorf("other errors must stay as they are: %q", got)
	}
}
