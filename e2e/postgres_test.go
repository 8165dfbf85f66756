package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	execpkg "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/store/postgres/pgtest"
)

// An operator runs livesnap on PostgreSQL. Two API nodes share one database: a request
// replayed to the other node is refused, and the nodes together allow one key's rate. After a
// restart, one node captures a real RTMP stream and lists the files as on SQLite. The database
// password never shows in the logs.
func TestPostgresStore(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	dbURL := pgtest.Database(t)
	u, _ := url.Parse(dbURL)
	password, _ := u.User.Password()

	// Two nodes started at once on an empty database: both migrate and come up, one bootstraps.
	nodes := startServicesAtOnce(t, 2, "--store", dbURL, "--rate-limit", "0.01", "--rate-burst", "4")
	n1, n2 := nodes[0], nodes[1]
	tpl := n1.client(t, modeV3).must("CreateLiveSnapshotTemplate", map[string]string{
		"TemplateName": "pg", "TimeInterval": "5",
		"OverwriteFormat": "snapshot/{JobId}.jpg", "SequenceFormat": "snapshot/{JobId}/{Sequence}.jpg",
	})["TemplateId"].(string) // token 1 of the shared burst of 4

	// The same signed request, sent to one node and then to the other.
	replay := signedV1(n1.KeyID, n1.Secret, "GetLiveSnapshotTemplate", url.Values{"TemplateId": {tpl}})
	if status, code := get(t, n1.Endpoint, replay); status != 200 {
		t.Fatalf("first send: %d %s", status, code)
	}
	if status, code := get(t, n2.Endpoint, replay); status != 400 || code != "SignatureNonceUsed" {
		t.Fatalf("replayed to the other node: %d %s, want 400 SignatureNonceUsed", status, code)
	}
	// Tokens 3 and 4, one per node (node 2 sees node 1's template); then both refuse.
	for _, n := range []*service{n2, n1} {
		if status, code := get(t, n.Endpoint, signedV1(n.KeyID, n.Secret, "GetLiveSnapshotTemplate", url.Values{"TemplateId": {tpl}})); status != 200 {
			t.Fatalf("within the shared burst, on %s: %d %s", n.Endpoint, status, code)
		}
	}
	for _, n := range []*service{n1, n2} {
		if status, code := get(t, n.Endpoint, signedV1(n.KeyID, n.Secret, "GetLiveSnapshotTemplate", url.Values{"TemplateId": {tpl}})); status != 400 || code != "Throttling.User" {
			t.Fatalf("over the shared burst, on %s: %d %s, want 400 Throttling.User", n.Endpoint, status, code)
		}
	}
	// Administration reaches the same store with --store; there is one account, one root key.
	out, err := execpkg.Command(binary, "keys", "list", "--store", dbURL).Output()
	var keys []map[string]any
	if err != nil || json.Unmarshal(out, &keys) != nil || len(keys) != 1 || keys[0]["AccessKeyId"] != n1.KeyID {
		t.Fatalf("keys list --store: %v %s", err, out)
	}
	n1.Stop()
	n2.Stop()

	// One node again on the same database, with default limits: a real RTMP job.
	relay := startRelay(t)
	streamURL := "rtmp://" + relay + "/live/pg"
	publish(t, streamURL)
	svc := startService(t, "--store", dbURL)
	ice := svc.client(t, modeV3)
	if got := ice.must("GetLiveSnapshotTemplate", map[string]string{"TemplateId": tpl}); got["TemplateName"] != "pg" {
		t.Fatalf("the template after the restart: %v", got)
	}
	waitLive(t, streamURL)
	submitted := time.Now()
	jobID := ice.must("SubmitLiveSnapshotJob", map[string]string{
		"JobName": "pg", "TemplateId": tpl,
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": streamURL}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "pgbucket"}),
	})["JobId"].(string)
	var sequences []string
	waitFor(t, 40*time.Second, "two sequence snapshots listed", func() bool {
		list := svc.client(t, modeCLI).must("ListLiveSnapshotFiles", map[string]string{"JobId": jobID,
			"StartTime": submitted.Add(-time.Minute).UTC().Format("2006-01-02T15:04:05Z"),
			"EndTime":   time.Now().Add(time.Minute).UTC().Format("2006-01-02T15:04:05Z"), "Limit": "100"})
		sequences = nil
		for _, it := range list["FileList"].([]any) {
			if f := it.(map[string]any); f["IsOverlay"] != true {
				sequences = append(sequences, f["OssObject"].(string))
			}
		}
		return len(sequences) >= 2
	})
	for i, obj := range sequences {
		if want := "snapshot/" + jobID + "/" + strconv.Itoa(i+1) + ".jpg"; obj != want {
			t.Fatalf("sequence record %d is %s, want %s", i, obj, want)
		}
		checkJPEG(t, filepath.Join(svc.Data, "objects", "pgbucket", filepath.FromSlash(obj)), 640, 360)
	}
	if got := ice.must("GetLiveSnapshotJob", map[string]string{"JobId": jobID}); got["Status"] != "started" || got["RunState"] != "capturing" {
		t.Fatalf("job while capturing: %v %v", got["Status"], got["RunState"])
	}
	ice.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": jobID, "Command": "stop"})
	if got := ice.must("GetLiveSnapshotJob", map[string]string{"JobId": jobID}); got["Status"] != "paused" {
		t.Fatalf("job after stop: %v", got["Status"])
	}
	svc.Stop()
	for _, n := range []*service{n1, n2, svc} {
		if password != "" && strings.Contains(n.Logs.String(), password) {
			t.Fatal("the database password is in the logs")
		}
	}
}

// signedV1 returns the query of a V1-signed GET (the aliyun CLI's form), with a fresh nonce.
func signedV1(keyID, secret, action string, params url.Values) string {
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	q.Set("AccessKeyId", keyID)
	q.Set("Action", action)
	q.Set("Format", "JSON")
	q.Set("SignatureMethod", "HMAC-SHA1")
	q.Set("SignatureNonce", hex.EncodeToString(nonce))
	q.Set("SignatureVersion", "1.0")
	q.Set("Timestamp", time.Now().UTC().Format("2006-01-02T15:04:05Z"))
	q.Set("Version", "2020-11-09")
	q.Set("Signature", rpc.SignV1("GET", q, secret))
	return q.Encode()
}

// get sends a GET with query to endpoint and returns the status and the error Code, if any.
func get(t *testing.T, endpoint, query string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + endpoint + "/?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct{ Code string }
	json.Unmarshal(body, &e)
	return resp.StatusCode, e.Code
}
