package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livesnap/livesnap/internal/blob/s3test"
	"github.com/livesnap/livesnap/internal/snapshot"
)

// A configuration with an S3 output (one bucket allowed), a local output for any endpoint,
// and the oss mapping of an ICE endpoint: each SnapshotOutput lands where the operator said,
// and nothing else is accepted.
func TestRouterSendsEachOutputToItsBackend(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t, "router")
	dir := t.TempDir()
	cfgText := `{"Outputs": [
		{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Buckets": ["` + bucket + `"],
		 "S3": {"URL": "` + srv.URL + `", "Region": "` + srv.Region + `", "AccessKeyIdEnv": "T_KEY", "SecretAccessKeyEnv": "T_SECRET"}},
		{"StorageType": "local", "Endpoint": "*", "Local": {"Dir": "` + dir + `"}}
	]}`
	cfg, err := ParseConfig([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"T_KEY": srv.AccessKey, "T_SECRET": srv.SecretKey}
	r, err := cfg.Router(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.StorageTypes(), ","); got != "oss,local" {
		t.Fatalf("StorageTypes() = %s", got)
	}
	ctx := context.Background()
	jpg := testJPEG(t, 16, 16, 99)

	oss := snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "OSS-cn-shanghai.aliyuncs.com", Bucket: bucket}
	if err := r.Check(oss); err != nil {
		t.Fatalf("configured output refused: %v", err)
	}
	if err := r.Put(ctx, oss, "snapshot/a.jpg", jpg); err != nil {
		t.Fatal(err)
	}
	if got, _, err := srv.Get(t, bucket, "snapshot/a.jpg"); err != nil || !bytes.Equal(got, jpg) {
		t.Fatalf("the oss output must land in S3: %v", err)
	}
	local := snapshot.SnapshotOutput{StorageType: "local", Endpoint: "anything.example", Bucket: "pics"}
	if err := r.Put(ctx, local, "snapshot/a.jpg", jpg); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "pics", "snapshot", "a.jpg")); err != nil || !bytes.Equal(got, jpg) {
		t.Fatalf("the local output must land in its directory: %v", err)
	}
	if err := r.Delete(ctx, oss, "snapshot/a.jpg"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Get(t, bucket, "snapshot/a.jpg"); !errors.Is(err, s3test.ErrNoObject) {
		t.Fatalf("Delete through the router: %v", err)
	}

	for _, c := range []struct {
		out   snapshot.SnapshotOutput
		field string
	}{
		{snapshot.SnapshotOutput{StorageType: "s3", Endpoint: srv.Host(), Bucket: bucket}, "StorageType"},
		{snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "oss-cn-hangzhou.aliyuncs.com", Bucket: bucket}, "Endpoint"},
		{snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Bucket: "other-bucket"}, "Bucket"},
	} {
		err := r.Check(c.out)
		var re *RouteError
		if !errors.As(err, &re) || re.Field != c.field || !errors.Is(err, ErrRefused) {
			t.Errorf("Check(%+v) = %v, want a RouteError on %s", c.out, err, c.field)
		}
		if err := r.Put(ctx, c.out, "snapshot/b.jpg", jpg); !errors.As(err, &re) {
			t.Errorf("Put(%+v) = %v, want a RouteError", c.out, err)
		}
	}
	// Names are checked before any backend sees them.
	if err := r.Put(ctx, local, "../../escape.jpg", jpg); !errors.Is(err, ErrRefused) {
		t.Fatalf("unsafe name: %v", err)
	}
	if keys := srv.Objects(t, bucket, ""); len(keys) != 0 {
		t.Fatalf("objects left in the bucket: %v", keys)
	}
}

// Without a configuration file, livesnap behaves as before: oss at any endpoint goes to the
// data directory, nothing else is accepted.
func TestDefaultRouterIsTheDataDirectory(t *testing.T) {
	dir := t.TempDir()
	r := DefaultRouter(dir)
	if got := r.StorageTypes(); len(got) != 1 || got[0] != "oss" {
		t.Fatalf("StorageTypes() = %v", got)
	}
	out := snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "oss-cn-beijing.aliyuncs.com", Bucket: "testbucket"}
	if err := r.Put(context.Background(), out, "s/1.jpg", []byte("jpeg")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "testbucket", "s", "1.jpg")); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(snapshot.SnapshotOutput{StorageType: "s3", Endpoint: "h", Bucket: "testbucket"}); err == nil {
		t.Fatal("s3 needs a configuration")
	}
}

// An exact endpoint beats the wildcard, also when its bucket list is narrower.
func TestRouterPrefersTheExactEndpoint(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	r, err := NewRouter(
		Route{StorageType: "oss", Endpoint: AnyEndpoint, Writer: &Local{Root: a}},
		Route{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Buckets: []string{"only"}, Writer: &Local{Root: b}},
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Put(ctx, snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Bucket: "only"}, "x.jpg", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b, "only", "x.jpg")); err != nil {
		t.Fatalf("exact route not used: %v", err)
	}
	if err := r.Check(snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Bucket: "other"}); err == nil {
		t.Fatal("a bucket the exact route does not list must be refused, not sent to the wildcard")
	}
	if err := r.Check(snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "elsewhere", Bucket: "other"}); err != nil {
		t.Fatal(err)
	}
}

func TestNewRouterChecksRoutes(t *testing.T) {
	w := &Local{Root: t.TempDir()}
	for name, routes := range map[string][]Route{
		"unknown type": {{StorageType: "gcs", Endpoint: "*", Writer: w}},
		"bad endpoint": {{StorageType: "s3", Endpoint: "http://h/", Writer: w}},
		"twice":        {{StorageType: "s3", Endpoint: "H", Writer: w}, {StorageType: "s3", Endpoint: "h", Writer: w}},
		"bad bucket":   {{StorageType: "s3", Endpoint: "h", Buckets: []string{"Bad_Bucket"}, Writer: w}},
		"no writer":    {{StorageType: "s3", Endpoint: "h"}},
	} {
		if _, err := NewRouter(routes...); err == nil {
			t.Errorf("%s: NewRouter must fail", name)
		}
	}
}

// Ownership names a bucket by what it is, not by how a user spells its route: any endpoint of
// a wildcard route, and every route onto the same backend, lead to one Bucket.
func TestBucketNamesOneBucketWhicheverRouteLeadsThere(t *testing.T) {
	dir := t.TempDir()
	cfg, err := ParseConfig([]byte(`{"Outputs": [
		{"StorageType": "oss", "Endpoint": "OSS-cn-shanghai.aliyuncs.com",
		 "S3": {"URL": "https://s3.oss-cn-shanghai.aliyuncs.com", "AccessKeyIdEnv": "K", "SecretAccessKeyEnv": "S"}},
		{"StorageType": "oss", "Endpoint": "oss-cn-shanghai-internal.aliyuncs.com",
		 "S3": {"URL": "https://S3.oss-cn-shanghai.aliyuncs.com/", "AccessKeyIdEnv": "K", "SecretAccessKeyEnv": "S"}},
		{"StorageType": "s3", "Endpoint": "minio.example:9000",
		 "S3": {"URL": "http://10.0.0.5:9000", "AccessKeyIdEnv": "K", "SecretAccessKeyEnv": "S"}},
		{"StorageType": "local", "Endpoint": "*", "Local": {"Dir": "` + dir + `"}},
		{"StorageType": "oss", "Endpoint": "*", "Local": {"Dir": "` + dir + `/"}},
		{"StorageType": "s3", "Endpoint": "pinned.example", "Accounts": [1000000000000002, 1000000000000001],
		 "Local": {"Dir": "` + t.TempDir() + `"}}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := cfg.Router(func(string) string { return "x" })
	if err != nil {
		t.Fatal(err)
	}
	bucket := func(typ, endpoint string) Bucket {
		t.Helper()
		b, err := r.Bucket(snapshot.SnapshotOutput{StorageType: typ, Endpoint: endpoint, Bucket: "pics"})
		if err != nil {
			t.Fatalf("%s %s: %v", typ, endpoint, err)
		}
		return b
	}
	same := [][]Bucket{
		{bucket("oss", "oss-cn-shanghai.aliyuncs.com"), bucket("oss", "OSS-CN-SHANGHAI.aliyuncs.com"), bucket("oss", "oss-cn-shanghai-internal.aliyuncs.com"),
			{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Name: "pics"}},
		{bucket("local", "a.example"), bucket("local", "b.example"), bucket("oss", "c.example"), {StorageType: "local", Endpoint: "*", Name: "pics"}},
		{bucket("s3", "minio.example:9000"), {StorageType: "s3", Endpoint: "minio.example:9000", Name: "pics"}},
	}
	for _, group := range same {
		for _, b := range group {
			if fmt.Sprint(b) != fmt.Sprint(group[0]) {
				t.Errorf("%+v and %+v name one bucket", b, group[0])
			}
		}
	}
	if b := bucket("s3", "pinned.example"); fmt.Sprint(b.Accounts) != "[1000000000000002 1000000000000001]" {
		t.Errorf("pinned accounts: %+v", b)
	}
	if _, err := r.Bucket(snapshot.SnapshotOutput{StorageType: "s3", Endpoint: "nowhere.example", Bucket: "pics"}); err == nil {
		t.Error("an output without a route has no bucket")
	}
	// Without a configuration every endpoint of oss is one directory.
	d := DefaultRouter(t.TempDir())
	x, _ := d.Bucket(snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "a.example", Bucket: "pics"})
	y, _ := d.Bucket(snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "oss-cn-beijing.aliyuncs.com", Bucket: "pics"})
	if fmt.Sprint(x) != fmt.Sprint(y) || x.Endpoint != AnyEndpoint {
		t.Errorf("default router: %+v and %+v", x, y)
	}
}

func TestAccountsMustBeDistinctIdsAndAgreeOnASharedBackend(t *testing.T) {
	dir := t.TempDir()
	for name, outputs := range map[string]string{
		"zero id":      `{"StorageType":"oss","Endpoint":"*","Accounts":[0],"Local":{"Dir":"` + dir + `"}}`,
		"negative id":  `{"StorageType":"oss","Endpoint":"*","Accounts":[-5],"Local":{"Dir":"` + dir + `"}}`,
		"repeated id":  `{"StorageType":"oss","Endpoint":"*","Accounts":[7,7],"Local":{"Dir":"` + dir + `"}}`,
		"not a number": `{"StorageType":"oss","Endpoint":"*","Accounts":["7"],"Local":{"Dir":"` + dir + `"}}`,
		"shared backend": `{"StorageType":"oss","Endpoint":"*","Accounts":[7],"Local":{"Dir":"` + dir + `"}},
			{"StorageType":"local","Endpoint":"*","Local":{"Dir":"` + dir + `"}}`,
	} {
		cfg, err := ParseConfig([]byte(`{"Outputs":[` + outputs + `]}`))
		if err == nil {
			_, err = cfg.Router(func(string) string { return "" })
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
