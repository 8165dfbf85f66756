// Package s3test gives tests a real S3-compatible server: the one CI starts (named by
// LIVESNAP_TEST_S3_ENDPOINT and friends), or else a versitygw of the test's own on loopback,
// stopped when the test ends. Without either, a test is skipped, or fails when
// LIVESNAP_REQUIRE_SERVICES=1.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables that name a running server (set by .ci/run).
const (
	EnvEndpoint  = "LIVESNAP_TEST_S3_ENDPOINT" // http://127.0.0.1:PORT
	EnvAccessKey = "LIVESNAP_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "LIVESNAP_TEST_S3_SECRET_KEY"
	EnvRegion    = "LIVESNAP_TEST_S3_REGION" // optional, default us-east-1
	// EnvVersitygw names the versitygw binary when it is neither on PATH nor in the repo's bin/.
	EnvVersitygw = "LIVESNAP_VERSITYGW"
)

// Server is an S3-compatible server for tests.
type Server struct {
	URL       string // http://host:port
	Region    string
	AccessKey string
	SecretKey string
}

// Start returns the server tests use (see the package comment).
func Start(t testing.TB) *Server {
	t.Helper()
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		s := &Server{URL: ep, Region: os.Getenv(EnvRegion), AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey)}
		if s.Region == "" {
			s.Region = "us-east-1"
		}
		if s.AccessKey == "" || s.SecretKey == "" {
			t.Fatalf("%s is set but %s or %s is not", EnvEndpoint, EnvAccessKey, EnvSecretKey)
		}
		return s
	}
	bin := versitygw()
	if bin == "" {
		if os.Getenv("LIVESNAP_REQUIRE_SERVICES") == "1" {
			t.Fatalf("no S3 server: set %s or install versitygw (scripts/install-deps.sh --with-test-tools)", EnvEndpoint)
		}
		t.Skipf("no S3 server: set %s or install versitygw (scripts/install-deps.sh --with-test-tools)", EnvEndpoint)
	}
	return startVersitygw(t, bin)
}

// versitygw finds the binary: $LIVESNAP_VERSITYGW, PATH, or the repository's bin/.
func versitygw() string {
	if p := os.Getenv(EnvVersitygw); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "bin", "versitygw")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// startVersitygw runs versitygw's posix backend in a temporary directory on a free loopback
// port until the test ends.
func startVersitygw(t testing.TB, bin string) *Server {
	t.Helper()
	s := &Server{Region: "us-east-1", AccessKey: "livesnaptest", SecretKey: "livesnap-test-secret-" + randomHex(8)}
	root := t.TempDir()
	for try := 0; ; try++ {
		addr := freeAddr(t)
		cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region,
			"--port", addr, "--quiet", "posix", root)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start versitygw: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		ready := waitListening(addr, exited, 20*time.Second)
		if ready == nil {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			s.URL = "http://" + addr
			return s
		}
		cmd.Process.Kill()
		<-exited
		if try == 2 { // another process may have taken the port between probe and listen
			t.Fatalf("versitygw did not start: %v\n%s", ready, out.String())
		}
	}
}

func waitListening(addr string, exited <-chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %v", addr, limit)
		}
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Host is the server's host:port.
func (s *Server) Host() string {
	u, _ := url.Parse(s.URL)
	return u.Host
}

// Client is a plain S3 client for the server, to check what livesnap wrote.
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: u.Scheme == "https", Region: s.Region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewBucket creates a bucket with a unique name (tests share CI's server) and removes it, with
// what is left in it, when the test ends.
func (s *Server) NewBucket(t testing.TB, prefix string) string {
	t.Helper()
	c := s.Client(t)
	name := strings.ToLower(prefix) + "-" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for o := range c.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err == nil {
				c.RemoveObject(ctx, name, o.Key, minio.RemoveObjectOptions{})
			}
		}
		c.RemoveBucket(ctx, name)
	})
	return name
}

// Objects lists the keys under prefix in bucket.
func (s *Server) Objects(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	for o := range s.Client(t).ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// ErrNoObject is what Get returns for a missing object.
var ErrNoObject = errors.New("no such object")

// Get reads an object and its Content-Type.
func (s *Server) Get(t testing.TB, bucket, key string) ([]byte, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := s.Client(t).GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, "", err
	}
	defer o.Close()
	st, err := o.Stat()
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return nil, "", ErrNoObject
	}
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(o); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), st.ContentType, nil
}
