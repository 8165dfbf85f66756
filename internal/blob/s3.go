package blob

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/livesnap/livesnap/internal/snapshot"
)

// URL styles of an S3 service: where the bucket goes in a request's URL.
const (
	StylePath        = "path"         // http://host/bucket/object (MinIO, versitygw, Ceph...)
	StyleVirtualHost = "virtual-host" // http://bucket.host/object (OSS, AWS S3)
)

// Bounds of an S3 request's timeout.
const (
	DefaultS3Timeout = 10 * time.Second
	maxS3Timeout     = 2 * time.Minute
)

// S3Options says how to reach one S3-compatible service.
type S3Options struct {
	// URL is the service's base URL: http:// or https://, a host and an optional port, no path.
	URL string
	// Region signs requests (SigV4); empty means us-east-1.
	Region string
	// Style is StylePath (default) or StyleVirtualHost.
	Style           string
	AccessKeyID     string
	SecretAccessKey string
	// Timeout bounds each request, connecting included; 0 means DefaultS3Timeout.
	Timeout time.Duration
}

// S3 writes objects to one S3-compatible service with single PUTs (atomic: readers see the
// old object or the whole new one) and never retries by itself: the runner owns retries.
type S3 struct {
	client  *minio.Client
	host    string
	timeout time.Duration
}

// NewS3 checks o and returns a writer for it; it does not contact the service.
func NewS3(o S3Options) (*S3, error) {
	u, err := parseS3URL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.AccessKeyID == "" || o.SecretAccessKey == "" {
		return nil, errors.New("an S3 output needs an access key id and a secret")
	}
	lookup := minio.BucketLookupPath
	switch o.Style {
	case "", StylePath:
	case StyleVirtualHost:
		lookup = minio.BucketLookupDNS
	default:
		return nil, fmt.Errorf("URL style %q: want %q or %q", o.Style, StylePath, StyleVirtualHost)
	}
	region := o.Region
	if region == "" {
		region = "us-east-1" // a set region also spares a GetBucketLocation round trip
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultS3Timeout
	}
	if timeout < 0 || timeout > maxS3Timeout {
		return nil, fmt.Errorf("timeout %v: want at most %v", timeout, maxS3Timeout)
	}
	secure := u.Scheme == "https"
	dialer := &net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   min(timeout, 5*time.Second),
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		DisableCompression:    true, // bodies are JPEGs; let the signature cover the bytes sent
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(o.AccessKeyID, o.SecretAccessKey, ""),
		Secure:       secure,
		Transport:    transport,
		Region:       region,
		BucketLookup: lookup,
		MaxRetries:   1, // one attempt per call: retries with backoff live in the runner
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", u.Host, err)
	}
	return &S3{client: client, host: u.Host, timeout: timeout}, nil
}

// parseS3URL accepts http(s)://host[:port] with nothing else: credentials belong in their own
// fields (so they are never printed with the URL), and a path would be ignored.
func parseS3URL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("URL is not a valid URL") // the text may hold a password: not echoed
	case u.User != nil:
		return nil, errors.New("URL must not contain user information; use AccessKeyId and SecretAccessKey")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("URL %q: want http:// or https://", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("URL %q has no host", raw)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("URL %q: want only scheme, host and port", raw)
	}
	return u, nil
}

// Put implements Writer with one PUT carrying Content-Type image/jpeg and Content-MD5.
func (s *S3) Put(ctx context.Context, out snapshot.SnapshotOutput, object string, data []byte) error {
	if err := checkNames(out.Bucket, object); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// UNSIGNED-PAYLOAD with a signed Content-MD5 on http and https alike: the store checks the
	// bytes, and no aws-chunked upload, which not every S3-compatible store accepts.
	_, err := s.client.PutObject(ctx, out.Bucket, object, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:          "image/jpeg",
		SendContentMd5:       true,
		DisableContentSha256: true,
		DisableMultipart:     true,
	})
	if err != nil {
		return &StoreError{Op: "put", Host: s.host, Bucket: out.Bucket, Object: object, Code: minio.ToErrorResponse(err).Code, Err: err}
	}
	return nil
}

// Delete implements Writer; S3 answers a delete of a missing object with success.
func (s *S3) Delete(ctx context.Context, out snapshot.SnapshotOutput, object string) error {
	if err := checkNames(out.Bucket, object); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.RemoveObject(ctx, out.Bucket, object, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil
		}
		return &StoreError{Op: "delete", Host: s.host, Bucket: out.Bucket, Object: object, Code: minio.ToErrorResponse(err).Code, Err: err}
	}
	return nil
}
