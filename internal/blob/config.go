package blob

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxConfigBytes and maxOutputs bound a storage configuration file.
const (
	maxConfigBytes = 1 << 20
	maxOutputs     = 1000
)

// Config is the operator's storage configuration (livesnap serve --storage-config FILE): which
// SnapshotOutputs the service accepts and where each one's objects go. Without one,
// DefaultRouter applies.
type Config struct {
	Outputs []OutputConfig
}

// OutputConfig is one route: a StorageType and Endpoint as users write them in
// SnapshotOutput, optionally the buckets allowed there, and exactly one backend.
type OutputConfig struct {
	StorageType string   // oss, s3 or local
	Endpoint    string   // host[:port] as in SnapshotOutput.Endpoint, or "*" for any
	Buckets     []string // allowed buckets; empty: any
	// Accounts pins the route's buckets to these accounts (UserIds): only they may use them.
	// Empty: each bucket belongs to the first account that submits a job to it.
	Accounts []int64      `json:",omitempty"`
	S3       *S3Config    `json:",omitempty"`
	Local    *LocalConfig `json:",omitempty"`
}

// S3Config is an S3-compatible backend. Each credential is given inline or, better, by the
// name of an environment variable that holds it (…Env).
type S3Config struct {
	URL                string // http(s)://host[:port]
	Region             string // default us-east-1
	Style              string // path (default) or virtual-host
	AccessKeyId        string
	AccessKeyIdEnv     string
	SecretAccessKey    string
	SecretAccessKeyEnv string
	TimeoutSeconds     int // per request; default 10, at most 120
}

// LocalConfig is a directory backend: objects live at Dir/<bucket>/<object>.
type LocalConfig struct {
	Dir string // relative paths are relative to the configuration file
}

// DefaultRouter is the configuration without a file: StorageType oss at any endpoint, objects
// under dir/<bucket>/<object>.
func DefaultRouter(dir string) *Router {
	r, err := NewRouter(Route{StorageType: "oss", Endpoint: AnyEndpoint, Writer: &Local{Root: dir}, Backend: dir, BackendID: localBackendID(dir)})
	if err != nil {
		panic(err) // a constant configuration
	}
	return r
}

// localBackendID identifies a directory backend: the same directory is the same buckets.
func localBackendID(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return "dir " + filepath.Clean(dir)
}

// LoadConfig reads a JSON storage configuration; relative Local.Dir values are taken relative
// to the file's directory.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("storage config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("storage config %s: %w", path, err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("storage config %s: %w", path, err)
	}
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("storage config %s: %w", path, err)
	}
	for i := range c.Outputs {
		if l := c.Outputs[i].Local; l != nil && l.Dir != "" && !filepath.IsAbs(l.Dir) {
			l.Dir = filepath.Join(base, l.Dir)
		}
	}
	return c, nil
}

// ParseConfig decodes a JSON storage configuration strictly: unknown fields and trailing data
// are errors, so a typo cannot silently drop a restriction.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxConfigBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("not valid JSON for a storage config: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	switch n := len(c.Outputs); {
	case n == 0:
		return nil, errors.New("Outputs is empty")
	case n > maxOutputs:
		return nil, fmt.Errorf("more than %d Outputs", maxOutputs)
	}
	return &c, nil
}

// InlineSecrets reports whether a secret is written in the configuration itself rather than
// named by an environment variable.
func (c *Config) InlineSecrets() bool {
	for _, o := range c.Outputs {
		if o.S3 != nil && o.S3.SecretAccessKey != "" {
			return true
		}
	}
	return false
}

// Router builds the configured backends, taking secrets named by …Env from getenv, and
// checks the routes. Errors never contain a secret.
func (c *Config) Router(getenv func(string) string) (*Router, error) {
	routes := make([]Route, 0, len(c.Outputs))
	for i, o := range c.Outputs {
		name := fmt.Sprintf("output %d (%s %s)", i+1, o.StorageType, o.Endpoint)
		rt := Route{StorageType: o.StorageType, Endpoint: o.Endpoint, Buckets: o.Buckets, Accounts: o.Accounts}
		switch {
		case (o.S3 == nil) == (o.Local == nil):
			return nil, fmt.Errorf("%s: set exactly one of S3 and Local", name)
		case o.Local != nil:
			if o.Local.Dir == "" || !filepath.IsAbs(o.Local.Dir) {
				return nil, fmt.Errorf("%s: Local.Dir must be an absolute directory", name)
			}
			rt.Writer, rt.Backend = &Local{Root: filepath.Clean(o.Local.Dir)}, filepath.Clean(o.Local.Dir)
			rt.BackendID = localBackendID(rt.Backend)
		default:
			w, err := o.S3.writer(getenv)
			if err != nil {
				return nil, fmt.Errorf("%s: S3: %w", name, err)
			}
			// The bucket becomes part of the host name in virtual-host style: only buckets the
			// operator listed may choose where livesnap connects.
			if o.S3.Style == StyleVirtualHost && len(o.Buckets) == 0 {
				return nil, fmt.Errorf("%s: S3.Style %s needs a Buckets list", name, StyleVirtualHost)
			}
			rt.Writer, rt.Backend = w, o.S3.URL
			rt.BackendID = "s3 " + strings.ToLower(strings.TrimRight(o.S3.URL, "/"))
		}
		routes = append(routes, rt)
	}
	return NewRouter(routes...)
}

func (s *S3Config) writer(getenv func(string) string) (*S3, error) {
	id, err := credential("AccessKeyId", s.AccessKeyId, s.AccessKeyIdEnv, getenv)
	if err != nil {
		return nil, err
	}
	secret, err := credential("SecretAccessKey", s.SecretAccessKey, s.SecretAccessKeyEnv, getenv)
	if err != nil {
		return nil, err
	}
	if s.TimeoutSeconds < 0 || time.Duration(s.TimeoutSeconds)*time.Second > maxS3Timeout {
		return nil, fmt.Errorf("TimeoutSeconds must be from 1 to %d (0: %d)", int(maxS3Timeout.Seconds()), int(DefaultS3Timeout.Seconds()))
	}
	w, err := NewS3(S3Options{URL: s.URL, Region: s.Region, Style: s.Style, AccessKeyID: id, SecretAccessKey: secret,
		Timeout: time.Duration(s.TimeoutSeconds) * time.Second})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// credential takes a value inline or from the environment variable named by env, never both.
func credential(field, inline, env string, getenv func(string) string) (string, error) {
	switch {
	case inline != "" && env != "":
		return "", fmt.Errorf("set %s or %sEnv, not both", field, field)
	case env != "":
		v := getenv(env)
		if v == "" {
			return "", fmt.Errorf("%sEnv: environment variable %s is not set", field, env)
		}
		return v, nil
	case inline == "":
		return "", fmt.Errorf("%s or %sEnv is required", field, field)
	}
	return inline, nil
}
