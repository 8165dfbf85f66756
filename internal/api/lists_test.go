package api

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

func TestUpdateAndDeleteTemplate(t *testing.T) {
	f := newFixture(t)
	id := f.template(f.a)
	f.live["rtmp://h/live/s"] = true
	job := f.job(f.a, id, "rtmp://h/live/s")

	f.must(f.a, "UpdateLiveSnapshotTemplate", "TemplateId", id, "TemplateName", "renamed", "TimeInterval", "10")
	got := f.must(f.a, "GetLiveSnapshotTemplate", "TemplateId", id)
	if got["TemplateName"] != "renamed" || got["TimeInterval"] != 10.0 || got["SequenceFormat"] != "snapshot/{JobId}/{UnixTimestamp}.jpg" {
		t.Fatalf("after update: %v", got)
	}
	// A job keeps the values it was submitted with.
	if j := f.must(f.a, "GetLiveSnapshotJob", "JobId", job); j["TimeInterval"] != 5.0 || j["TemplateName"] != "t" {
		t.Fatalf("job changed with its template: %v", j)
	}
	f.wantCode("InvalidParameter", f.a, "UpdateLiveSnapshotTemplate", "TemplateId", id, "SequenceFormat", "{JobId}.jpg")
	f.wantCode("InvalidParameter", f.a, "UpdateLiveSnapshotTemplate", "TemplateId", id, "TimeInterval", "2")
	f.wantCode("MissingParameter", f.a, "UpdateLiveSnapshotTemplate", "TemplateName", "x")
	f.wantCode("TemplateNotFound", f.b, "UpdateLiveSnapshotTemplate", "TemplateId", id, "TemplateName", "stolen")
	f.wantCode("TemplateNotFound", f.b, "DeleteLiveSnapshotTemplate", "TemplateId", id)
	f.must(f.a, "DeleteLiveSnapshotTemplate", "TemplateId", id)
	f.wantCode("TemplateNotFound", f.a, "DeleteLiveSnapshotTemplate", "TemplateId", id)
	f.wantCode("TemplateNotFound", f.a, "GetLiveSnapshotTemplate", "TemplateId", id)
	if j := f.must(f.a, "GetLiveSnapshotJob", "JobId", job); j["TemplateId"] != id {
		t.Fatalf("a job outlives its template: %v", j)
	}
}

func TestListTemplates(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := 0; i < 12; i++ {
		ids = append(ids, f.must(f.a, "CreateLiveSnapshotTemplate", "TemplateName", fmt.Sprintf("cam %02d", i), "TimeInterval", "5",
			"SequenceFormat", "{Sequence}.jpg")["TemplateId"].(string))
		time.Sleep(2 * time.Millisecond) // distinct creation times order the list
	}
	f.template(f.b)
	m := f.must(f.a, "ListLiveSnapshotTemplates")
	list := m["TemplateList"].([]any)
	if m["TotalCount"] != 12.0 || m["PageNo"] != 1.0 || m["PageSize"] != 10.0 || m["SortBy"] != "desc" || len(list) != 10 {
		t.Fatalf("defaults: %v", m)
	}
	if first := list[0].(map[string]any); first["TemplateId"] != ids[11] || first["Type"] != "custom" || first["TimeInterval"] != 5.0 {
		t.Fatalf("newest first: %v", first)
	}
	if _, ok := list[0].(map[string]any)["SequenceFormat"]; ok {
		t.Fatal("list items carry no formats")
	}
	m = f.must(f.a, "ListLiveSnapshotTemplates", "PageNo", "2", "PageSize", "10", "SortBy", "asc")
	if list := m["TemplateList"].([]any); len(list) != 2 || list[0].(map[string]any)["TemplateId"] != ids[10] {
		t.Fatalf("page 2 asc: %v", m)
	}
	m = f.must(f.a, "ListLiveSnapshotTemplates", "SearchKeyWord", "cam 07")
	if m["TotalCount"] != 1.0 {
		t.Fatalf("keyword by name: %v", m)
	}
	m = f.must(f.a, "ListLiveSnapshotTemplates", "SearchKeyWord", ids[3])
	if m["TotalCount"] != 1.0 {
		t.Fatalf("keyword by id: %v", m)
	}
	m = f.must(f.a, "ListLiveSnapshotTemplates", "TemplateIds.1", ids[0], "TemplateIds.2", ids[1])
	if m["TotalCount"] != 2.0 {
		t.Fatalf("TemplateIds: %v", m)
	}
	if m := f.must(f.a, "ListLiveSnapshotTemplates", "Type", "system"); m["TotalCount"] != 0.0 {
		t.Fatalf("no system templates: %v", m)
	}
	f.wantCode("InvalidParameter", f.a, "ListLiveSnapshotTemplates", "PageSize", "101")
	f.wantCode("InvalidParameter", f.a, "ListLiveSnapshotTemplates", "PageNo", "0")
	f.wantCode("InvalidParameter", f.a, "ListLiveSnapshotTemplates", "Type", "other")
	f.wantCode("InvalidParameter", f.a, "ListLiveSnapshotTemplates", "SortBy", "newest")
	if m := f.must(f.b, "ListLiveSnapshotTemplates"); m["TotalCount"] != 1.0 {
		t.Fatalf("tenant isolation: %v", m)
	}
}

func TestListJobs(t *testing.T) {
	f := newFixture(t)
	tpl := f.template(f.a)
	f.live["rtmp://h/live/on"] = true
	on := f.job(f.a, tpl, "rtmp://h/live/on")
	time.Sleep(2 * time.Millisecond) // distinct creation times order the list
	off := f.job(f.a, tpl, "rtmp://h/live/off")
	m := f.must(f.a, "ListLiveSnapshotJobs")
	if m["TotalCount"] != 2.0 {
		t.Fatalf("jobs: %v", m)
	}
	item := m["JobList"].([]any)[0].(map[string]any)
	if item["JobId"] != off || item["SnapshotOutput"].(map[string]any)["Bucket"] != "testbucket" {
		t.Fatalf("newest first with its output: %v", item)
	}
	if _, ok := item["StreamInput"]; ok {
		t.Fatal("list items carry no StreamInput")
	}
	if m := f.must(f.a, "ListLiveSnapshotJobs", "Status", "started"); m["TotalCount"] != 1.0 || m["JobList"].([]any)[0].(map[string]any)["JobId"] != on {
		t.Fatalf("status filter: %v", m)
	}
	if m := f.must(f.a, "ListLiveSnapshotJobs", "SearchKeyWord", on); m["TotalCount"] != 1.0 {
		t.Fatalf("keyword: %v", m)
	}
	old := time.Now().Add(-48 * time.Hour).UTC().Format(snapshot.TimeLayout)
	if m := f.must(f.a, "ListLiveSnapshotJobs", "StartTime", old, "EndTime", time.Now().Add(-24*time.Hour).UTC().Format(snapshot.TimeLayout)); m["TotalCount"] != 0.0 {
		t.Fatalf("window: %v", m)
	}
	f.wantCode("MalformedStartTime", f.a, "ListLiveSnapshotJobs", "StartTime", "2024-01-01")
	f.wantCode("MalformedEndTime", f.a, "ListLiveSnapshotJobs", "EndTime", "tomorrow")
	f.wantCode("EndTimeMismatch", f.a, "ListLiveSnapshotJobs", "StartTime", "2024-03-01T00:00:00Z", "EndTime", "2024-01-01T00:00:00Z")
	f.wantCode("EndTimeMismatch", f.a, "ListLiveSnapshotJobs", "StartTime", "2024-01-01T00:00:00Z", "EndTime", "2024-03-01T00:00:00Z")
	f.wantCode("InvalidParameter", f.a, "ListLiveSnapshotJobs", "Status", "running")
	if m := f.must(f.b, "ListLiveSnapshotJobs"); m["TotalCount"] != 0.0 {
		t.Fatalf("tenant isolation: %v", m)
	}
}

func TestDeleteFiles(t *testing.T) {
	f := newFixture(t)
	root := t.TempDir()
	f.svc.Blobs = &blob.Local{Root: root}
	tpl := f.template(f.a)
	f.live["rtmp://h/live/s"] = true
	job := f.job(f.a, tpl, "rtmp://h/live/s")
	j, _ := f.db.GetJob(context.Background(), f.a.Account.ID, job)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var stamps []int64
	for i := 0; i < 3; i++ {
		at := base.Add(time.Duration(i) * 5 * time.Second)
		files := []snapshot.File{
			{AccountID: f.a.Account.ID, JobID: job, Endpoint: "e", Bucket: "testbucket", Object: fmt.Sprintf("s/%d.jpg", i), CreateTime: at},
			{AccountID: f.a.Account.ID, JobID: job, Endpoint: "e", Bucket: "testbucket", Object: "o.jpg", CreateTime: at, IsOverlay: true},
		}
		for _, fl := range files {
			f.svc.Blobs.Put(context.Background(), j.Output, fl.Object, []byte("jpeg"))
		}
		if err := f.db.RecordCapture(context.Background(), store.Capture{JobID: job, Generation: j.Generation, Files: files}); err != nil {
			t.Fatal(err)
		}
		stamps = append(stamps, at.UnixMilli())
	}
	list := func(ts ...int64) string { return fmt.Sprint(jsonArray(ts)) }

	f.wantCode("MissingParameter", f.a, "DeleteLiveSnapshotFiles", "JobId", job)
	f.wantCode("InvalidParameter", f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", "[1,")
	f.wantCode("InvalidParameter", f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", list(1), "DeleteOriginalFile", "yes")
	f.wantCode("JobNotFound", f.b, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", list(stamps[0]))
	f.wantCode("NoValidSnapshot", f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", list(1, 2))

	m := f.must(f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", list(stamps[0], 42), "DeleteOriginalFile", "true")
	res := m["DeleteFileResultList"].([]any)
	if len(res) != 2 || res[0].(map[string]any)["Result"] != "OK" || res[1].(map[string]any)["Result"] != "NotFound" ||
		res[0].(map[string]any)["CreateTimestamp"] != float64(stamps[0]) {
		t.Fatalf("results: %v", m)
	}
	if _, err := os.Stat(filepath.Join(root, "testbucket", "s", "0.jpg")); !os.IsNotExist(err) {
		t.Fatalf("DeleteOriginalFile=true must remove the object: %v", err)
	}
	// Without DeleteOriginalFile the object stays.
	f.must(f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList.1", fmt.Sprint(stamps[1]))
	if _, err := os.Stat(filepath.Join(root, "testbucket", "s", "1.jpg")); err != nil {
		t.Fatalf("object removed without DeleteOriginalFile: %v", err)
	}
	// The last instant: delete its sequence record, then only the overwrite record matches.
	f.must(f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", list(stamps[2]))
	f.wantCode("OverlayNotSupported", f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", list(stamps[2]))
	if _, err := os.Stat(filepath.Join(root, "testbucket", "o.jpg")); err != nil {
		t.Fatalf("the overwrite object must stay: %v", err)
	}
	many := make([]int64, 201)
	for i := range many {
		many[i] = int64(i + 1)
	}
	f.wantCode("InvalidParameter", f.a, "DeleteLiveSnapshotFiles", "JobId", job, "CreateTimestampList", list(many...))
}

func jsonArray(ts []int64) string {
	s := "["
	for i, v := range ts {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(v)
	}
	return s + "]"
}
