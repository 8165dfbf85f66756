package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A zoned IPv6 literal is the same address as without its zone, so a link-local or metadata
// address is refused with or without one, for stream and callback URLs alike.
func TestZonedIPv6LiteralsAreRefused(t *testing.T) {
	svc := startService(t, "--runners", "0", "--probe-timeout", "1s")
	ice := svc.client(t, modeV3)
	tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "zones", "TimeInterval": "5",
		"SequenceFormat": "{JobId}/{Sequence}.jpg"})["TemplateId"].(string)
	out := jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "testbucket"})
	submit := func(stream, callback string) error {
		p := map[string]string{"JobName": "zone", "TemplateId": tpl, "SnapshotOutput": out,
			"StreamInput": jsonText(map[string]string{"Type": "rtmp", "Url": stream})}
		if callback != "" {
			p["CallbackUrl"] = callback
		}
		_, err := ice.call("SubmitLiveSnapshotJob", p)
		return err
	}
	for _, host := range []string{"fe80::1", "fd00:ec2::254"} {
		// Without a zone: refused, as the README says.
		if err := submit("rtmp://["+host+"]/live/x", ""); !isInvalidParameter(err) {
			t.Fatalf("stream at [%s]: want 400 InvalidParameter, got %v", host, err)
		}
		for _, zoned := range []string{host + "%25lo", host + "%251"} {
			if err := submit("rtmp://["+zoned+"]/live/x", ""); !isInvalidParameter(err) {
				t.Errorf("stream at [%s]: want 400 InvalidParameter like [%s], got %v", zoned, host, err)
			}
			if err := submit("rtmp://127.0.0.1:1/live/x", "http://["+zoned+"]/cb"); !isInvalidParameter(err) {
				t.Errorf("callback at [%s]: want 400 InvalidParameter like [%s], got %v", zoned, host, err)
			}
		}
	}
}

func isInvalidParameter(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == 400 && ae.Code == "InvalidParameter"
}

// `livesnap accounts create` shows the account's callback secret once: the only way a
// receiver can check X-Livesnap-Signature.
func TestAccountsCreatePrintsCallbackSecret(t *testing.T) {
	svc := startService(t, "--runners", "0")
	acct := admin(t, svc.Data, "accounts", "create")
	for k, v := range acct {
		if strings.Contains(strings.ToLower(k), "secret") {
			if s, _ := v.(string); len(s) >= 32 {
				return
			}
		}
	}
	t.Fatalf("accounts create printed %v: no callback secret", acct)
}

// A stream whose host name resolves to an address the operator refuses is not "no such
// stream": start says the network policy refused it.
func TestStartRefusedByTheNetworkPolicySaysSo(t *testing.T) {
	relay := startRelay(t)
	_, port, _ := strings.Cut(relay, ":")
	svc := startService(t, "--runners", "0", "--probe-timeout", "2s", "--deny-net", "127.0.0.0/8,::1/128")
	ice := svc.client(t, modeV3)
	tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "policy", "TimeInterval": "5",
		"SequenceFormat": "{JobId}/{Sequence}.jpg"})["TemplateId"].(string)
	job := ice.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "policy", "TemplateId": tpl,
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": "rtmp://localhost:" + port + "/live/x"}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "testbucket"})})["JobId"].(string)
	ice.wantError("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "start"}, 400, "InvalidParameter")
	if logs := svc.Logs.String(); !strings.Contains(logs, "refused by the network policy") {
		t.Fatalf("the refusal is not logged:\n%s", logs)
	}
}

// Credentials and tokens in a stream URL never reach the logs (they used to, in "pipeline
// started").
func TestStreamURLSecretsAreNotLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time stream test")
	}
	relay := startRelay(t)
	publish(t, "rtmp://"+relay+"/live/secret")
	svc := startService(t, "--min-interval", "1")
	ice := svc.client(t, modeV3)
	waitLive(t, "rtmp://"+relay+"/live/secret")
	tpl := ice.must("CreateLiveSnapshotTemplate", map[string]string{"TemplateName": "secret", "TimeInterval": "1",
		"SequenceFormat": "s/{JobId}/{Sequence}.jpg"})["TemplateId"].(string)
	u := "rtmp://user:pa55word-in-url@" + relay + "/live/secret?token=tok3n-in-url"
	job := ice.must("SubmitLiveSnapshotJob", map[string]string{"JobName": "secret url", "TemplateId": tpl,
		"StreamInput":    jsonText(map[string]string{"Type": "rtmp", "Url": u}),
		"SnapshotOutput": jsonText(map[string]string{"StorageType": "oss", "Endpoint": "oss-cn-shanghai.aliyuncs.com", "Bucket": "secretbucket"})})["JobId"].(string)
	waitFor(t, 30*time.Second, "a snapshot", func() bool {
		got := ice.must("GetLiveSnapshotJob", map[string]string{"JobId": job})
		n, _ := got["SnapshotCount"].(float64)
		return n >= 1
	})
	ice.must("SendLiveSnapshotJobCommand", map[string]string{"JobId": job, "Command": "stop"})
	logs := svc.Logs.String()
	if !strings.Contains(logs, "pipeline started") {
		t.Fatal("no pipeline in the logs: the test saw nothing")
	}
	for _, secret := range []string{"pa55word-in-url", "tok3n-in-url"} {
		if i := strings.Index(logs, secret); i >= 0 {
			t.Errorf("the log holds %q: ...%s...", secret, logs[max(0, i-120):min(len(logs), i+40)])
		}
	}
}
