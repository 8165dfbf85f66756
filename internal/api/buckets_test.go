package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
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

func (f *fixture) submitTo(p Principal, tpl, endpoint, bucket string) error {
	_, err := f.call(p, "SubmitLiveSnapshotJob", "JobName", "j", "TemplateId", tpl,
		"StreamInput", `{"Type":"rtmp","Url":"rtmp://h/live/s"}`,
		"SnapshotOutput", `{"StorageType":"oss","Endpoint":"`+endpoint+`","Bucket":"`+bucket+`"}`)
	return err
}

func isBucketNotAuthorized(err error) bool {
	var e *rpc.Error
	return errors.As(err, &e) && e.Status == 403 && e.Code == "BucketNotAuthorized" && e.Message == "Bucket is not authorised."
}

// A bucket belongs to the first account that submits a job to it; another account's submit
// naming it is 403 BucketNotAuthorized, under any endpoint name that leads to the same
// directory, and creates no job.
func TestBucketsBelongToTheFirstAccountThatSubmits(t *testing.T) {
	f := newFixture(t)
	f.withOutputs(blob.DefaultRouter(t.TempDir())) // oss at any endpoint: one directory per bucket
	tplA, tplB := f.template(f.a), f.template(f.b)
	if err := f.submitTo(f.a, tplA, "oss-cn-shanghai.aliyuncs.com", "shared"); err != nil {
		t.Fatal(err)
	}
	for _, endpoint := range []string{"oss-cn-shanghai.aliyuncs.com", "OSS-CN-SHANGHAI.aliyuncs.com", "other.example"} {
		if err := f.submitTo(f.b, tplB, endpoint, "shared"); !isBucketNotAuthorized(err) {
			t.Fatalf("another account's submit to shared at %s: want 403 BucketNotAuthorized, got %v", endpoint, err)
		}
	}
	if m := f.must(f.b, "ListLiveSnapshotJobs"); m["TotalCount"] != 0.0 {
		t.Fatalf("refused submits created jobs: %v", m["TotalCount"])
	}
	// Its own template comes first: another account's template id is still TemplateNotFound.
	f.wantCode("TemplateNotFound", f.b, "SubmitLiveSnapshotJob", "JobName", "j", "TemplateId", tplA,
		"StreamInput", `{"Type":"rtmp","Url":"rtmp://h/live/s"}`, "SnapshotOutput", `{"StorageType":"oss","Endpoint":"e.example","Bucket":"shared"}`)
	// The owner may use it under any endpoint name, and the other account has buckets of its own.
	if err := f.submitTo(f.a, tplA, "oss-cn-beijing.aliyuncs.com", "shared"); err != nil {
		t.Fatal(err)
	}
	if err := f.submitTo(f.b, tplB, "oss-cn-shanghai.aliyuncs.com", "mine"); err != nil {
		t.Fatal(err)
	}
	if err := f.submitTo(f.a, tplA, "oss-cn-shanghai.aliyuncs.com", "mine"); !isBucketNotAuthorized(err) {
		t.Fatalf("the first account's submit to the other's bucket: %v", err)
	}
	// A refused output is still refused for what it is, before any claim.
	f.withOutputs(mustRouter(t, blob.Route{StorageType: "oss", Endpoint: "*", Buckets: []string{"listed"}, Writer: &blob.Local{Root: t.TempDir()}}))
	if err := f.submitTo(f.b, tplB, "e.example", "unlisted"); !isInvalid(err, "SnapshotOutput.Bucket") {
		t.Fatalf("unlisted bucket: %v", err)
	}
	if _, err := f.db.BucketOwner(context.Background(), store.BucketKey{StorageType: "oss", Endpoint: "*", Bucket: "unlisted"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused submit claimed its bucket: %v", err)
	}
}

func mustRouter(t *testing.T, routes ...blob.Route) *blob.Router {
	t.Helper()
	r, err := blob.NewRouter(routes...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A job of another account that writes to a bucket it does not own (submitted before buckets
// had owners) may delete its records, but never the objects: 403 BucketNotAuthorized, and
// nothing is deleted. The owner may delete its own objects.
func TestDeleteOriginalFileOnlyInTheCallersBucket(t *testing.T) {
	f := newFixture(t)
	root := t.TempDir()
	r := blob.DefaultRouter(root)
	f.withOutputs(r)
	ctx := context.Background()
	f.live["rtmp://h/live/s"] = true
	victim := f.jobTo(f.a, f.template(f.a), "rtmp://h/live/s", "shared")
	// The other account's job was made straight in the store, as jobs from before ownership were.
	intruder := snapshot.Job{AccountID: f.b.Account.ID, ID: "old-job", Name: "old", TemplateID: "t", TemplateName: "t", TimeInterval: 5,
		SequenceFormat: "s/" + victim + "/{Sequence}.jpg", Status: snapshot.StatusStarted, Generation: 1,
		Input:      snapshot.StreamInput{Type: "rtmp", URL: "rtmp://h/live/s"},
		Output:     snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "elsewhere.example", Bucket: "shared"},
		CreateTime: time.Now(), LastModified: time.Now()}
	if err := f.db.CreateJob(ctx, intruder); err != nil {
		t.Fatal(err)
	}
	v, _ := f.db.GetJob(ctx, f.a.Account.ID, victim)
	at := time.Date(2024, 1, 1, 0, 0, 1, 0, time.UTC)
	object := "s/" + victim + "/1.jpg"
	if err := r.Put(ctx, v.Output, object, []byte("jpeg")); err != nil {
		t.Fatal(err)
	}
	for _, j := range []snapshot.Job{v, intruder} {
		file := snapshot.File{AccountID: j.AccountID, JobID: j.ID, Endpoint: j.Output.Endpoint, Bucket: "shared", Object: object, CreateTime: at}
		if err := f.db.RecordCapture(ctx, store.Capture{JobID: j.ID, Generation: j.Generation, Files: []snapshot.File{file}}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(p Principal, job string) int {
		m := f.must(p, "ListLiveSnapshotFiles", "JobId", job, "StartTime", "2024-01-01T00:00:00Z", "EndTime", "2024-01-01T01:00:00Z")
		return len(m["FileList"].([]any))
	}
	stamp := jsonArray([]int64{at.UnixMilli()})
	_, err := f.call(f.b, "DeleteLiveSnapshotFiles", "JobId", intruder.ID, "CreateTimestampList", stamp, "DeleteOriginalFile", "true")
	if !isBucketNotAuthorized(err) {
		t.Fatalf("deleting objects in another account's bucket: want 403 BucketNotAuthorized, got %v", err)
	}
	path := filepath.Join(root, "shared", filepath.FromSlash(object))
	if _, err := os.Stat(path); err != nil || list(f.b, intruder.ID) != 1 {
		t.Fatalf("a refused delete removed something: %v, %d records", err, list(f.b, intruder.ID))
	}
	// Its records alone it may delete; the object stays.
	f.must(f.b, "DeleteLiveSnapshotFiles", "JobId", intruder.ID, "CreateTimestampList", stamp)
	if _, err := os.Stat(path); err != nil || list(f.b, intruder.ID) != 0 {
		t.Fatalf("after deleting the record only: %v, %d records", err, list(f.b, intruder.ID))
	}
	// The owner deletes the object with its record.
	res := f.must(f.a, "DeleteLiveSnapshotFiles", "JobId", victim, "CreateTimestampList", stamp, "DeleteOriginalFile", "true")
	if r := res["DeleteFileResultList"].([]any)[0].(map[string]any)["Result"]; r != "OK" {
		t.Fatalf("the owner's delete: %v", res)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the owner's delete left the object: %v", err)
	}
}

// An operator pins a route's buckets to accounts: only those may submit there or delete
// objects there, whoever came first; other routes keep first-come ownership.
func TestPinnedRouteAdmitsOnlyItsAccounts(t *testing.T) {
	f := newFixture(t)
	f.withOutputs(mustRouter(t,
		blob.Route{StorageType: "oss", Endpoint: "pinned.example", Accounts: []int64{f.b.Account.ID}, Writer: &blob.Local{Root: t.TempDir()}},
		blob.Route{StorageType: "oss", Endpoint: "*", Writer: &blob.Local{Root: t.TempDir()}},
	))
	tplA, tplB := f.template(f.a), f.template(f.b)
	if err := f.submitTo(f.a, tplA, "pinned.example", "cams"); !isBucketNotAuthorized(err) {
		t.Fatalf("an account the route is not pinned to: %v", err)
	}
	if err := f.submitTo(f.b, tplB, "pinned.example", "cams"); err != nil {
		t.Fatal(err)
	}
	if err := f.submitTo(f.a, tplA, "free.example", "cams"); err != nil {
		t.Fatalf("the same bucket name on another backend: %v", err)
	}
	job := f.must(f.b, "ListLiveSnapshotJobs")["JobList"].([]any)[0].(map[string]any)["JobId"].(string)
	f.wantCode("NoValidSnapshot", f.b, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", "[1]", "DeleteOriginalFile", "true")
}

// Jobs submitted before buckets had owners: when serve starts, each bucket goes to the account
// of its oldest job, and an account whose jobs share another's bucket is logged.
func TestExistingJobsGiveTheirBucketsToTheOldestJobsAccount(t *testing.T) {
	f := newFixture(t)
	f.withOutputs(blob.DefaultRouter(t.TempDir()))
	var logs bytes.Buffer
	f.svc.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, j := range []struct {
		p        Principal
		endpoint string
		bucket   string
	}{{f.b, "e1.example", "legacy"}, {f.a, "e2.example", "legacy"}, {f.a, "e1.example", "alone"}} {
		job := snapshot.Job{AccountID: j.p.Account.ID, ID: "legacy-" + string(rune('a'+i)), Name: "old", TemplateID: "t", TemplateName: "t",
			TimeInterval: 5, SequenceFormat: "{Sequence}.jpg", Status: snapshot.StatusInit, Input: snapshot.StreamInput{Type: "rtmp", URL: "rtmp://h/a/b"},
			Output:     snapshot.SnapshotOutput{StorageType: "oss", Endpoint: j.endpoint, Bucket: j.bucket},
			CreateTime: base.Add(time.Duration(i) * time.Hour), LastModified: base}
		if err := f.db.CreateJob(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	for run := 0; run < 2; run++ { // every start runs it; the second changes nothing
		if err := f.svc.ClaimBucketsOfExistingJobs(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.submitTo(f.a, f.template(f.a), "e3.example", "legacy"); !isBucketNotAuthorized(err) {
		t.Fatalf("the younger job's account: %v", err)
	}
	if err := f.submitTo(f.b, f.template(f.b), "e3.example", "legacy"); err != nil {
		t.Fatalf("the oldest job's account: %v", err)
	}
	if err := f.submitTo(f.a, f.template(f.a), "e3.example", "alone"); err != nil {
		t.Fatalf("a bucket only one account used: %v", err)
	}
	if !strings.Contains(logs.String(), "another account owns") || strings.Count(logs.String(), "another account owns") != 2 {
		t.Fatalf("the shared bucket is not logged once per start: %s", logs.String())
	}
}
