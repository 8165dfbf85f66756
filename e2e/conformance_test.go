package e2e

import (
	"fmt"
	"testing"
	"time"
)

// Every action and its documented errors, through each official client engine: the ICE SDK's
// default (V3), the same engine with V1 signatures, and the CommonRequest client the aliyun
// CLI uses. Each answer is checked for its HTTP status, Code and decoded fields.
func TestConformanceThroughOfficialClients(t *testing.T) {
	svc := startService(t)
	dead := "rtmp://127.0.0.1:1/live/nobody" // connection refused: StreamNotFound at once
	out := jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "testbucket"})
	for _, mode := range allModes {
		t.Run(string(mode), func(t *testing.T) {
			c := svc.client(t, mode)
			tpl := c.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "T " + string(mode), "TimeInterval": "5",
				"OverwriteFormat": "snapshot/{JobId}.jpg", "SequenceFormat": "snapshot/{JobId}/{UnixTimestamp}.jpg"})["TemplateId"].(string)
			c.wantError("CreateLiveSnapshotTemplate", map[string]string{"TimeInterval": "5", "SequenceFormat": "{Sequence}.jpg"}, 400, "MissingParameter")
			c.wantError("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "x", "TimeInterval": "4", "SequenceFormat": "{Sequence}.jpg"}, 400, "InvalidParameter")
			c.wantError("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "x", "TimeInterval": "5", "SequenceFormat": "/abs/{Sequence}.jpg"}, 400, "InvalidParameter")

			got := c.must("GetLiveSnapshotTemplate", map[string]string{"TemplateId": tpl})
			if got["TemplateName"] != "T "+string(mode) || got["TimeInterval"] != 5.0 || got["Type"] != "custom" ||
				got["OverwriteFormat"] != "snapshot/{JobId}.jpg" || got["SequenceFormat"] != "snapshot/{JobId}/{UnixTimestamp}.jpg" {
				t.Fatalf("template: %v", got)
			}
			c.wantError("GetLiveSnapshotTemplate", map[string]string{"TemplateId": "nope"}, 404, "TemplateNotFound")
			c.wantError("GetLiveSnapshotTemplate", nil, 400, "MissingParameter")
			c.must("UpdateLiveSnapshotTemplate", map[string]string{"TemplateId": tpl, "TemplateName": "T2 " + string(mode), "TimeInterval": "6"})
			c.wantError("UpdateLiveSnapshotTemplate", map[string]string{"TemplateId": "nope", "TemplateName": "x", "TimeInterval": "6"}, 404, "TemplateNotFound")
			list := c.must("ListLiveSnapshotTemplates", map[string]string{"TemplateIds.1": tpl, "TemplateIds.2": "other"})
			if list["TotalCount"] != 1.0 || list["TemplateList"].([]any)[0].(map[string]any)["TemplateName"] != "T2 "+string(mode) {
				t.Fatalf("templates: %v", list)
			}
			c.wantError("ListLiveSnapshotTemplates", map[string]string{"PageSize": "101"}, 400, "InvalidParameter")

			job := c.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "job " + string(mode), "TemplateId": tpl,
				"StreamInput": jsonText(map[string]string{"Type": "rtmp", "Url": dead}), "SnapshotOutput": out,
				"CallbackUrl": "http://127.0.0.1:9/cb"})["JobId"].(string)
			c.wantError("SubmitLiveSnapshotJob", map[string]string{"JobName": "j", "TemplateId": "nope",
				"StreamInput": jsonText(map[string]string{"Type": "rtmp", "Url": dead}), "SnapshotOutput": out}, 404, "TemplateNotFound")
			c.wantError("SubmitLiveSnapshotJob", map[string]string{"JobName": "j", "TemplateId": tpl, "SnapshotOutput": out}, 400, "MissingParameter")
			j := c.must("GetLiveSnapshotJob", map[string]string{"JobId": job})
			if j["Status"] != "init" || j["TimeInterval"] != 6.0 || j["CallbackUrl"] != "http://127.0.0.1:9/cb" ||
				j["StreamInput"].(map[string]any)["Url"] != dead || j["SnapshotOutput"].(map[string]any)["Endpoint"] != "oss-cn-shanghai.aliyuncs.com" {
				t.Fatalf("job: %v", j)
			}
			c.wantError("GetLiveSnapshotJob", map[string]string{"JobId": "nope"}, 404, "JobNotFound")
			jobs := c.must("ListLiveSnapshotJobs", map[string]string{"SearchKeyWord": job})
			if jobs["TotalCount"] != 1.0 || jobs["JobList"].([]any)[0].(map[string]any)["Status"] != "init" {
				t.Fatalf("jobs: %v", jobs)
			}
			c.wantError("ListLiveSnapshotJobs", map[string]string{"StartTime": "2024-01-01"}, 400, "MalformedStartTime")
			c.wantError("ListLiveSnapshotJobs", map[string]string{"EndTime": "soon"}, 400, "MalformedEndTime")
			c.wantError("ListLiveSnapshotJobs", map[string]string{"StartTime": "2024-02-01T00:00:00Z", "EndTime": "2024-01-01T00:00:00Z"}, 400, "EndTimeMismatch")

			c.wantError("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "start"}, 400, "StreamNotFound")
			c.wantError("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "launch"}, 400, "InvalidParameter")
			c.wantError("SendLiveSnapshotJobCommand", map[string]string{"JobId": job}, 400, "MissingParameter")
			c.wantError("SendLiveSnapshotJobCommand", map[string]string{"JobId": "nope", "Command": "stop"}, 404, "JobNotFound")
			c.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "stop"})

			now := time.Now().UTC()
			window := map[string]string{"JobId": job, "StartTime": now.Add(-time.Hour).Format(time.RFC3339), "EndTime": now.Format(time.RFC3339)}
			files := c.must("ListLiveSnapshotFiles", window)
			if fl, ok := files["FileList"].([]any); !ok || len(fl) != 0 {
				t.Fatalf("files: %v", files)
			}
			c.wantError("ListLiveSnapshotFiles", map[string]string{"JobId": job, "StartTime": window["StartTime"], "EndTime": "x"}, 400, "MalformedEndTime")
			c.wantError("ListLiveSnapshotFiles", map[string]string{"JobId": job, "StartTime": now.Add(-48 * time.Hour).Format(time.RFC3339), "EndTime": window["EndTime"]}, 400, "EndTimeMismatch")
			c.wantError("ListLiveSnapshotFiles", map[string]string{"JobId": "nope", "StartTime": window["StartTime"], "EndTime": window["EndTime"]}, 404, "JobNotFound")
			c.wantError("DeleteLiveSnapshotFiles", map[string]string{"JobId": job, "CreateTimestampList": "[1660638613798,1660638618798]", "DeleteOriginalFile": "true"}, 404, "NoValidSnapshot")
			c.wantError("DeleteLiveSnapshotFiles", map[string]string{"JobId": job}, 400, "MissingParameter")

			c.must("DeleteLiveSnapshotTemplate", map[string]string{"TemplateId": tpl})
			c.wantError("DeleteLiveSnapshotTemplate", map[string]string{"TemplateId": tpl}, 404, "TemplateNotFound")
			c.wantError("DescribeLiveSnapshotThings", nil, 404, "InvalidAction.NotFound")

			newClient(t, mode, svc.Endpoint, svc.KeyID, "wrong-secret").wantError("ListLiveSnapshotJobs", nil, 400, "SignatureDoesNotMatch")
			newClient(t, mode, svc.Endpoint, "LTAInobodyHasThisKey", "x").wantError("ListLiveSnapshotJobs", nil, 404, "InvalidAccessKeyId.NotFound")
		})
	}
}

// Two accounts made with the admin commands while serve runs: neither sees the other's
// resources, and key policies and account states are enforced.
func TestAccountsKeysAndIsolation(t *testing.T) {
	svc := startService(t)
	root := svc.client(t, modeV3)
	tpl := root.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "root's", "TimeInterval": "5", "SequenceFormat": "{Sequence}.jpg"})["TemplateId"].(string)
	job := root.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "root job", "TemplateId": tpl,
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": "rtmp://127.0.0.1:1/live/x"}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "testbucket"})})["JobId"].(string)

	acct := admin(t, svc.Data, "accounts", "create")
	other := fmt.Sprint(int64(acct["UserId"].(float64)))
	key := admin(t, svc.Data, "keys", "create", "--account", other)
	if key["AccessKeyId"] == "" || len(key["AccessKeySecret"].(string)) < 20 || key["Policy"].([]any)[0] != "ice:*" {
		t.Fatalf("keys create: %v", key)
	}
	for _, mode := range allModes {
		c := newClient(t, mode, svc.Endpoint, key["AccessKeyId"].(string), key["AccessKeySecret"].(string))
		now := time.Now().UTC()
		for action, params := range map[string]map[string]string{
			"GetLiveSnapshotTemplate":    {"TemplateId": tpl},
			"UpdateLiveSnapshotTemplate": {"TemplateId": tpl, "TemplateName": "mine", "TimeInterval": "5"},
			"DeleteLiveSnapshotTemplate": {"TemplateId": tpl},
			"SubmitLiveSnapshotJob": {"JobName": "j", "TemplateId": tpl, "StreamInput": jsonText(map[string]string{"Type": "rtmp", "Url": "rtmp://127.0.0.1:1/a/b"}),
				"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "e.example.com", "Bucket": "testbucket"})},
		} {
			c.wantError(action, params, 404, "TemplateNotFound")
		}
		for action, params := range map[string]map[string]string{
			"GetLiveSnapshotJob":         {"JobId": job},
			"SendLiveSnapshotJobCommand": {"JobId": job, "Command": "stop"},
			"ListLiveSnapshotFiles":      {"JobId": job, "StartTime": now.Add(-time.Hour).Format(time.RFC3339), "EndTime": now.Format(time.RFC3339)},
			"DeleteLiveSnapshotFiles":    {"JobId": job, "CreateTimestampList": "[1]"},
		} {
			c.wantError(action, params, 404, "JobNotFound")
		}
		if m := c.must("ListLiveSnapshotJobs", nil); m["TotalCount"] != 0.0 {
			t.Fatalf("another account's jobs are listed: %v", m)
		}
		if m := c.must("ListLiveSnapshotTemplates", nil); m["TotalCount"] != 0.0 {
			t.Fatalf("another account's templates are listed: %v", m)
		}
	}
	// The root account still has its template (nobody else could delete it).
	root.must("GetLiveSnapshotTemplate", map[string]string{"TemplateId": tpl})

	readOnly := admin(t, svc.Data, "keys", "create", "--account", other, "--policy", "ice:Get*,ice:List*")
	ro := newClient(t, modeV1, svc.Endpoint, readOnly["AccessKeyId"].(string), readOnly["AccessKeySecret"].(string))
	ro.must("ListLiveSnapshotJobs", nil)
	ro.wantError("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "x", "TimeInterval": "5", "SequenceFormat": "{Sequence}.jpg"}, 403, "Forbidden")

	admin(t, svc.Data, "keys", "disable", "--key", readOnly["AccessKeyId"].(string))
	ro.wantError("ListLiveSnapshotJobs", nil, 403, "UserDisable")
	admin(t, svc.Data, "keys", "enable", "--key", readOnly["AccessKeyId"].(string))
	ro.must("ListLiveSnapshotJobs", nil)
	admin(t, svc.Data, "accounts", "disable-service", "--account", other)
	ro.wantError("ListLiveSnapshotJobs", nil, 403, "OperationDenied")
	admin(t, svc.Data, "accounts", "enable-service", "--account", other)
	admin(t, svc.Data, "accounts", "disable", "--account", other)
	ro.wantError("ListLiveSnapshotJobs", nil, 403, "UserDisable")
	admin(t, svc.Data, "accounts", "enable", "--account", other)
	ro.must("ListLiveSnapshotJobs", nil)
	admin(t, svc.Data, "keys", "delete", "--key", readOnly["AccessKeyId"].(string))
	ro.wantError("ListLiveSnapshotJobs", nil, 404, "InvalidAccessKeyId.NotFound")
}
