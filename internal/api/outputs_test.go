package api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// withOutputs makes the fixture's service use a router as its storage configuration.
func (f *fixture) withOutputs(r *blob.Router) {
	f.svc.Outputs, f.svc.Blobs, f.svc.StorageTypes = r, r, r.StorageTypes()
}

// With a storage configuration, Submit accepts only the outputs it lists, and says which
// field is wrong.
func TestSubmitAcceptsOnlyConfiguredOutputs(t *testing.T) {
	f := newFixture(t)
	r, err := blob.NewRouter(
		blob.Route{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Buckets: []string{"testbucket"}, Writer: &blob.Local{Root: t.TempDir()}},
		blob.Route{StorageType: "local", Endpoint: blob.AnyEndpoint, Writer: &blob.Local{Root: t.TempDir()}},
	)
	if err != nil {
		t.Fatal(err)
	}
	f.withOutputs(r)
	tpl := f.template(f.a)
	submit := func(out string) error {
		_, err := f.call(f.a, "SubmitLiveSnapshotJob", "JobName", "j", "TemplateId", tpl,
			"StreamInput", `{"Type":"rtmp","Url":"rtmp://127.0.0.1/live/s"}`, "SnapshotOutput", out)
		return err
	}
	for _, ok := range []string{
		`{"StorageType":"oss","Endpoint":"oss-cn-shanghai.aliyuncs.com","Bucket":"testbucket"}`,
		`{"StorageType":"local","Endpoint":"anything","Bucket":"pics"}`,
	} {
		if err := submit(ok); err != nil {
			t.Fatalf("%s: %v", ok, err)
		}
	}
	for out, field := range map[string]string{
		`{"StorageType":"s3","Endpoint":"169.254.169.254","Bucket":"testbucket"}`:              "SnapshotOutput.StorageType",
		`{"StorageType":"oss","Endpoint":"127.0.0.1:9000","Bucket":"testbucket"}`:              "SnapshotOutput.Endpoint",
		`{"StorageType":"oss","Endpoint":"oss-cn-shanghai.aliyuncs.com","Bucket":"elsewhere"}`: "SnapshotOutput.Bucket",
	} {
		err := submit(out)
		var e *rpc.Error
		if !errors.As(err, &e) || e.Status != 400 || e.Code != "InvalidParameter" || !strings.Contains(e.Message, field) {
			t.Errorf("%s: want 400 InvalidParameter naming %s, got %v", out, field, err)
		}
	}
	if m := f.must(f.a, "ListLiveSnapshotJobs"); m["TotalCount"] != 2.0 {
		t.Fatalf("refused submits must not create jobs: %v", m["TotalCount"])
	}
}

// A job whose bucket the configuration no longer allows: deleting its records alone still
// works, deleting its objects too is 403 BucketNotAuthorized and changes nothing.
func TestDeleteOriginalFileNeedsAnAllowedBucket(t *testing.T) {
	f := newFixture(t)
	root := t.TempDir()
	before, err := blob.NewRouter(blob.Route{StorageType: "oss", Endpoint: blob.AnyEndpoint, Writer: &blob.Local{Root: root}})
	if err != nil {
		t.Fatal(err)
	}
	f.withOutputs(before)
	tpl := f.template(f.a)
	f.live["rtmp://h/live/s"] = true
	job := f.job(f.a, tpl, "rtmp://h/live/s")
	j, _ := f.db.GetJob(context.Background(), f.a.Account.ID, job)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var stamps []int64
	for i := 0; i < 2; i++ {
		at := base.Add(time.Duration(i) * 5 * time.Second)
		file := snapshot.File{AccountID: f.a.Account.ID, JobID: job, Endpoint: j.Output.Endpoint, Bucket: j.Output.Bucket,
			Object: fmt.Sprintf("s/%d.jpg", i), CreateTime: at}
		if err := before.Put(context.Background(), j.Output, file.Object, []byte("jpeg")); err != nil {
			t.Fatal(err)
		}
		if err := f.db.RecordCapture(context.Background(), store.Capture{JobID: job, Generation: j.Generation, Files: []snapshot.File{file}}); err != nil {
			t.Fatal(err)
		}
		stamps = append(stamps, at.UnixMilli())
	}

	// The operator narrows the configuration to another bucket and restarts.
	after, err := blob.NewRouter(blob.Route{StorageType: "oss", Endpoint: blob.AnyEndpoint, Buckets: []string{"newbucket"}, Writer: &blob.Local{Root: root}})
	if err != nil {
		t.Fatal(err)
	}
	f.withOutputs(after)
	_, err = f.call(f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", jsonArray(stamps[:1]), "DeleteOriginalFile", "true")
	if e := (*rpc.Error)(nil); !errors.As(err, &e) || e.Status != 403 || e.Code != "BucketNotAuthorized" {
		t.Fatalf("want 403 BucketNotAuthorized, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "testbucket", "s", "0.jpg")); err != nil {
		t.Fatalf("a refused delete must leave the object: %v", err)
	}
	m := f.must(f.a, "ListLiveSnapshotFiles", "JobId", job, "StartTime", "2024-01-01T00:00:00Z", "EndTime", "2024-01-01T01:00:00Z")
	if n := len(m["FileList"].([]any)); n != 2 {
		t.Fatalf("a refused delete must leave the records: %d listed", n)
	}
	// Records only: no storage access needed, so it is allowed.
	res := f.must(f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", jsonArray(stamps[:1]))
	if r := res["DeleteFileResultList"].([]any)[0].(map[string]any)["Result"]; r != "OK" {
		t.Fatalf("record delete: %v", res)
	}
	if _, err := os.Stat(filepath.Join(root, "testbucket", "s", "0.jpg")); err != nil {
		t.Fatalf("DeleteOriginalFile=false must leave the object: %v", err)
	}
}
