package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Two accounts on one service. The first to submit a job to a bucket owns it: the other
// account's submits naming it, under any endpoint, are 403 BucketNotAuthorized through every
// official client and create nothing, so it can neither write objects under the owner's names
// nor delete them. After a restart with a storage config that assigns a route's buckets to
// the other account, only that account may use them.
func TestAccountsOwnTheirBuckets(t *testing.T) {
	data := t.TempDir()
	svc, healthy := launchService(t, serviceOptions{data: data}, "--runners", "0")
	healthy()
	root := svc.client(t, modeV3)
	acct := admin(t, svc.Data, "accounts", "create")
	otherID := int64(acct["UserId"].(float64))
	key := admin(t, svc.Data, "keys", "create", "--account", fmt.Sprint(otherID))
	stream := jsonText(map[string]string{"Type": "rtmp", "Url": "rtmp://127.0.0.1:1/live/x"}) // refused: stays init
	output := func(endpoint, bucket string) string {
		return jsonText(map[string]string{"StorageType": "oss", "Endpoint": endpoint, "Bucket": bucket})
	}
	rootTpl := root.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "owner", "TimeInterval": "5",
		"SequenceFormat": "s/{JobId}/{Sequence}.jpg"})["TemplateId"].(string)
	root.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "owner", "TemplateId": rootTpl,
		"StreamInput": stream, "SnapshotOutput": output("oss-cn-shanghai.aliyuncs.com", "shared-bucket")})

	for i, mode := range allModes {
		other := newClient(t, mode, svc.Endpoint, key["AccessKeyId"].(string), key["AccessKeySecret"].(string))
		tpl := other.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "aimed", "TimeInterval": "5",
			"SequenceFormat": "s/literal/{Sequence}.jpg"})["TemplateId"].(string)
		for _, endpoint := range []string{"oss-cn-shanghai.aliyuncs.com", "OSS-CN-SHANGHAI.ALIYUNCS.COM", "oss-cn-beijing.aliyuncs.com"} {
			other.wantError("SubmitLiveSnapshotJob", map[string]string{"JobName": "aimed", "TemplateId": tpl,
				"StreamInput": stream, "SnapshotOutput": output(endpoint, "shared-bucket")}, 403, "BucketNotAuthorized")
		}
		other.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "own", "TemplateId": tpl,
			"StreamInput": stream, "SnapshotOutput": output("oss-cn-shanghai.aliyuncs.com", "other-bucket")})
		if m := other.must("ListLiveSnapshotJobs", nil); m["TotalCount"] != float64(i+1) {
			t.Fatalf("%s: the other account has %v jobs, want its own %d", mode, m["TotalCount"], i+1)
		}
	}
	root.wantError("SubmitLiveSnapshotJob", map[string]string{"JobName": "aimed", "TemplateId": rootTpl,
		"StreamInput": stream, "SnapshotOutput": output("oss-cn-shanghai.aliyuncs.com", "other-bucket")}, 403, "BucketNotAuthorized")
	svc.Stop()

	// The operator assigns the buckets of one route to the other account.
	cfg := filepath.Join(t.TempDir(), "storage.json")
	text := fmt.Sprintf(`{"Outputs": [
		{"StorageType": "oss", "Endpoint": "*", "Local": {"Dir": %q}},
		{"StorageType": "oss", "Endpoint": "assigned.example", "Accounts": [%d], "Local": {"Dir": %q}}
	]}`, filepath.Join(data, "objects"), otherID, t.TempDir())
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, healthy = launchService(t, serviceOptions{data: data}, "--runners", "0", "--storage-config", cfg)
	healthy()
	root = svc.client(t, modeV1)
	other := newClient(t, modeV3, svc.Endpoint, key["AccessKeyId"].(string), key["AccessKeySecret"].(string))
	otherTpl := other.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "assigned", "TimeInterval": "5",
		"SequenceFormat": "{Sequence}.jpg"})["TemplateId"].(string)
	root.wantError("SubmitLiveSnapshotJob", map[string]string{"JobName": "x", "TemplateId": rootTpl,
		"StreamInput": stream, "SnapshotOutput": output("assigned.example", "cams")}, 403, "BucketNotAuthorized")
	other.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "assigned", "TemplateId": otherTpl,
		"StreamInput": stream, "SnapshotOutput": output("assigned.example", "cams")})
	// The first-come owners are kept across the restart.
	other.wantError("SubmitLiveSnapshotJob", map[string]string{"JobName": "x", "TemplateId": otherTpl,
		"StreamInput": stream, "SnapshotOutput": output("oss-cn-shanghai.aliyuncs.com", "shared-bucket")}, 403, "BucketNotAuthorized")
	root.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "again", "TemplateId": rootTpl,
		"StreamInput": stream, "SnapshotOutput": output("oss-cn-shanghai.aliyuncs.com", "shared-bucket")})
}
