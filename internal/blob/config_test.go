package blob

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigRejectsMistakes(t *testing.T) {
	const secret = "s3cr3t-value-never-shown"
	env := map[string]string{"KEY": "id", "SECRET": secret}
	getenv := func(k string) string { return env[k] }
	s3 := func(extra string) string {
		return `{"Outputs":[{"StorageType":"s3","Endpoint":"minio:9000","S3":{"URL":"http://127.0.0.1:9000","AccessKeyId":"id","SecretAccessKey":"` + secret + `"` + extra + `}}]}`
	}
	for name, text := range map[string]string{
		"not JSON":              `{"Outputs":`,
		"unknown field":         `{"Outputs":[{"StorageType":"oss","Endpoint":"*","Local":{"Dir":"/tmp"},"Bucket":["x"]}]}`,
		"trailing data":         `{"Outputs":[{"StorageType":"oss","Endpoint":"*","Local":{"Dir":"/tmp"}}]} {}`,
		"no outputs":            `{"Outputs":[]}`,
		"no backend":            `{"Outputs":[{"StorageType":"oss","Endpoint":"*"}]}`,
		"two backends":          `{"Outputs":[{"StorageType":"oss","Endpoint":"*","Local":{"Dir":"/tmp"},"S3":{"URL":"http://h"}}]}`,
		"relative dir":          `{"Outputs":[{"StorageType":"oss","Endpoint":"*","Local":{"Dir":"objects"}}]}`,
		"unknown type":          `{"Outputs":[{"StorageType":"nfs","Endpoint":"*","Local":{"Dir":"/tmp"}}]}`,
		"bad endpoint":          `{"Outputs":[{"StorageType":"oss","Endpoint":"a/b","Local":{"Dir":"/tmp"}}]}`,
		"bad bucket":            `{"Outputs":[{"StorageType":"oss","Endpoint":"*","Buckets":["../x"],"Local":{"Dir":"/tmp"}}]}`,
		"duplicate":             `{"Outputs":[{"StorageType":"oss","Endpoint":"*","Local":{"Dir":"/a"}},{"StorageType":"oss","Endpoint":"*","Local":{"Dir":"/b"}}]}`,
		"both secret forms":     s3(`,"SecretAccessKeyEnv":"SECRET"`),
		"missing env":           `{"Outputs":[{"StorageType":"s3","Endpoint":"h","S3":{"URL":"http://h","AccessKeyIdEnv":"KEY","SecretAccessKeyEnv":"UNSET"}}]}`,
		"no key":                `{"Outputs":[{"StorageType":"s3","Endpoint":"h","S3":{"URL":"http://h","SecretAccessKeyEnv":"SECRET"}}]}`,
		"bad scheme":            `{"Outputs":[{"StorageType":"s3","Endpoint":"h","S3":{"URL":"ftp://h","AccessKeyId":"id","SecretAccessKey":"` + secret + `"}}]}`,
		"bad style":             s3(`,"Style":"dns"`),
		"timeout too long":      s3(`,"TimeoutSeconds":3600`),
		"virtual-host, no list": s3(`,"Style":"virtual-host"`),
	} {
		cfg, err := ParseConfig([]byte(text))
		if err == nil {
			_, err = cfg.Router(getenv)
		}
		if err == nil {
			t.Errorf("%s: the configuration must be refused", name)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}

func TestLoadConfigResolvesRelativeDirectories(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "storage.json")
	text := `{"Outputs":[
		{"StorageType":"oss","Endpoint":"*","Local":{"Dir":"objects"}},
		{"StorageType":"s3","Endpoint":"store.example:9000","Buckets":["snaps"],
		 "S3":{"URL":"https://store.example:9000","Style":"virtual-host","AccessKeyIdEnv":"K","SecretAccessKeyEnv":"S","TimeoutSeconds":5}}]}`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cfg.Router(func(k string) string { return map[string]string{"K": "id", "S": "secret"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	routes := r.Routes()
	if len(routes) != 2 || routes[0].Backend != filepath.Join(dir, "objects") || routes[1].Backend != "https://store.example:9000" {
		t.Fatalf("routes: %+v", routes)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("a missing file must be an error")
	}
	big := make([]byte, maxConfigBytes+10)
	for i := range big {
		big[i] = ' '
	}
	os.WriteFile(path, big, 0o600)
	if _, err := LoadConfig(path); err == nil {
		t.Fatal("an oversized file must be refused")
	}
}

// Any input: no panic, a secret from the environment never shows in an error, and an accepted
// configuration routes only known storage types.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"Outputs":[{"StorageType":"oss","Endpoint":"*","Local":{"Dir":"/tmp/x"}}]}`))
	f.Add([]byte(`{"Outputs":[{"StorageType":"s3","Endpoint":"h:9000","Buckets":["b-1"],"S3":{"URL":"http://127.0.0.1:9000","Style":"virtual-host","AccessKeyIdEnv":"K","SecretAccessKeyEnv":"S","TimeoutSeconds":3}}]}`))
	f.Add([]byte(`{"Outputs":[{"StorageType":"local","Endpoint":"a.b","S3":{"URL":"https://u:p@h"}}]}`))
	const secret = "fuzz-env-secret-5f1e"
	getenv := func(k string) string { return map[string]string{"K": "id", "S": secret}[k] }
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		r, err := c.Router(getenv)
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows the secret: %v", err)
			}
			return
		}
		for _, st := range r.StorageTypes() {
			if st != "oss" && st != "s3" && st != "local" {
				t.Fatalf("routes storage type %q", st)
			}
		}
	})
}
