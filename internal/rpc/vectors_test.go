package rpc

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// All expected values below are copied from spec sections 2.4 and 2.5, never from our output.

func TestPercentEncode(t *testing.T) {
	for in, want := range map[string]string{
		"tpl 1*~/":             "tpl%201%2A~%2F",
		"AZaz09-_.~":           "AZaz09-_.~",
		"a+b=c&d":              "a%2Bb%3Dc%26d",
		"é":                    "%C3%A9",
		"2016-02-23T12:46:24Z": "2016-02-23T12%3A46%3A24Z",
	} {
		if got := PercentEncode(in); got != want {
			t.Errorf("PercentEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestV1GoldenVectors(t *testing.T) {
	iceCommon := func(extra map[string]string) url.Values {
		v := url.Values{
			"AccessKeyId":      {"testid"},
			"Format":           {"JSON"},
			"SignatureMethod":  {"HMAC-SHA1"},
			"SignatureNonce":   {"0123456789abcdef0123456789abcdef"},
			"SignatureVersion": {"1.0"},
			"Timestamp":        {"2024-01-01T00:00:00Z"},
			"Version":          {"2020-11-09"},
		}
		for k, x := range extra {
			v.Set(k, x)
		}
		return v
	}
	tests := []struct {
		name, method, secret string
		params               url.Values
		stringToSign, sig    string
	}{
		{
			name: "classic ECS DescribeRegions with TimeStamp", method: "GET", secret: "testsecret",
			params: url.Values{
				"AccessKeyId": {"testid"}, "Action": {"DescribeRegions"}, "Format": {"XML"},
				"SignatureMethod": {"HMAC-SHA1"}, "SignatureNonce": {"3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"},
				"SignatureVersion": {"1.0"}, "TimeStamp": {"2016-02-23T12:46:24Z"}, "Version": {"2014-05-26"},
			},
			stringToSign: "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26",
			sig:          "CT9X0VtwR86fNWSnsc6v8YGOjuE=",
		},
		{
			name: "darabonba unit test", method: "", secret: "accessKeySecret",
			params: url.Values{"test": {"ok"}},
			sig:    "jHx/oHoHNrbVfhncHEvPdHXZwHU=",
		},
		{
			name: "ICE GET", method: "GET", secret: "testsecret",
			params: iceCommon(map[string]string{"Action": "GetLiveSnapshotTemplate", "TemplateId": "tpl 1*~/"}),
			sig:    "lYdxARuWPco6t5vsrf/h62gwjzE=",
		},
		{
			name: "ICE POST with body params", method: "POST", secret: "testsecret",
			params: iceCommon(map[string]string{
				"Action": "SendLiveSnapshotJobCommand", "Format": "json", "Command": "start", "JobId": "job-1",
			}),
			stringToSign: "POST&%2F&AccessKeyId%3Dtestid%26Action%3DSendLiveSnapshotJobCommand%26Command%3Dstart%26Format%3Djson%26JobId%3Djob-1%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D0123456789abcdef0123456789abcdef%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T00%253A00%253A00Z%26Version%3D2020-11-09",
			sig:          "ZhH65FAojleSxvUo74YSLg+1RtY=",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stringToSign != "" {
				if got := StringToSignV1(tc.method, tc.params); got != tc.stringToSign {
					t.Errorf("StringToSign\n got %s\nwant %s", got, tc.stringToSign)
				}
			}
			if got := SignV1(tc.method, tc.params, tc.secret); got != tc.sig {
				t.Errorf("SignV1 = %s, want %s", got, tc.sig)
			}
			// A Signature parameter already present must not change the result.
			p := cloneValues(tc.params)
			p.Set("Signature", "whatever")
			if got := SignV1(tc.method, p, tc.secret); got != tc.sig {
				t.Errorf("SignV1 with Signature param = %s, want %s", got, tc.sig)
			}
		})
	}
	if !strings.Contains(PercentEncode("tpl 1*~/"), "tpl%201%2A~%2F") {
		t.Error("ICE GET TemplateId encoding")
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestV3GoldenVectors(t *testing.T) {
	std := []string{"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}
	const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	iceHeaders := func(action, payloadHash string) http.Header {
		h := http.Header{}
		h.Set("Host", "ice.cn-shanghai.aliyuncs.com")
		h.Set("x-acs-action", action)
		h.Set("x-acs-version", "2020-11-09")
		h.Set("x-acs-date", "2024-01-01T00:00:00Z")
		h.Set("x-acs-signature-nonce", "0123456789abcdef0123456789abcdef")
		h.Set("x-acs-content-sha256", payloadHash)
		return h
	}
	const bodyICE = "Command=start&JobId=job-1"
	const bodyHashICE = "bf70c5cd26158eb4ca2a483d42d540b76a93364fabf527f1b32106b856ba7c53"
	postHeaders := iceHeaders("SendLiveSnapshotJobCommand", bodyHashICE)
	postHeaders.Set("Content-Type", "application/x-www-form-urlencoded")

	officialHeaders := http.Header{}
	officialHeaders.Set("Host", "ecs.cn-shanghai.aliyuncs.com")
	officialHeaders.Set("x-acs-action", "RunInstances")
	officialHeaders.Set("x-acs-version", "2014-05-26")
	officialHeaders.Set("x-acs-date", "2023-10-26T10:22:32Z")
	officialHeaders.Set("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d")
	officialHeaders.Set("x-acs-content-sha256", emptyHash)

	tests := []struct {
		name, method, path string
		query              url.Values
		headers            http.Header
		signed             []string
		payloadHash        string
		secret             string
		hashedCR, sig      string
	}{
		{
			name: "official doc vector", method: "POST", path: "/",
			query: url.Values{
				"ImageId":  {"win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"},
				"RegionId": {"cn-shanghai"},
			},
			headers: officialHeaders, signed: std, payloadHash: emptyHash, secret: "YourAccessKeySecret",
			hashedCR: "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259",
			sig:      "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0",
		},
		{
			name: "darabonba merged headers", method: "", path: "",
			query:       url.Values{"test": {"ok"}, "empty": {""}},
			headers:     http.Header{"x-acs-test": {"http"}, "x-acs-TEST": {"https"}},
			signed:      []string{"x-acs-test"},
			payloadHash: "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23",
			secret:      "secret",
			sig:         "4ab59fffe3c5738ff8a2729f90cc04fe18b02a4b15b2102cbaf92f9ff3df2ea3",
		},
		{
			name: "ICE POST", method: "POST", path: "/", query: url.Values{},
			headers: postHeaders, signed: append([]string{"content-type"}, std...),
			payloadHash: bodyHashICE, secret: "testsecret",
			hashedCR: "ab9548108a6efcffbc6cbaed059de02fce6afc7dfadc8c42efeef0b7aaaa840a",
			sig:      "5828abc6c52e24c038bb2afbecb78dd011e4db552abb5f39f10e6bf678bec4d1",
		},
		{
			name: "ICE GET", method: "GET", path: "/",
			query:   url.Values{"JobId": {"****a046-263c-3560-978a-fb287782****"}},
			headers: iceHeaders("GetLiveSnapshotJob", emptyHash), signed: std,
			payloadHash: emptyHash, secret: "testsecret",
			sig: "c075184b0128018c1b25ee962ccc8b9e89060f1a93decc1b47178f2be63af57a",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := CanonicalRequestV3(tc.method, tc.path, tc.query, tc.headers, tc.signed, tc.payloadHash)
			if tc.hashedCR != "" {
				if got := sha256Hex(cr); got != tc.hashedCR {
					t.Errorf("hashed canonical request = %s, want %s\n%s", got, tc.hashedCR, cr)
				}
			}
			if got := hex.EncodeToString(signV3Raw(cr, tc.secret)); got != tc.sig {
				t.Errorf("signature = %s, want %s\n%s", got, tc.sig, cr)
			}
		})
	}

	t.Run("ICE POST body hash", func(t *testing.T) {
		if got := sha256Hex(bodyICE); got != bodyHashICE {
			t.Errorf("sha256(%q) = %s", bodyICE, got)
		}
	})
	t.Run("ICE GET canonical query", func(t *testing.T) {
		got := canonicalQuery(url.Values{"JobId": {"****a046-263c-3560-978a-fb287782****"}}, "")
		if want := "JobId=%2A%2A%2A%2Aa046-263c-3560-978a-fb287782%2A%2A%2A%2A"; got != want {
			t.Errorf("canonical query = %s, want %s", got, want)
		}
	})
	t.Run("body hash example", func(t *testing.T) {
		body := "OverwriteFormat=snapshot%2F%7BJobId%7D.jpg&TemplateName=t+1%2A~&TimeInterval=5"
		if got, want := sha256Hex(body), "ee76e903235e923f11e6fdb2b301fb2b62f55b1aff00c0d85f7cd6319805e247"; got != want {
			t.Errorf("sha256 = %s, want %s", got, want)
		}
	})
	t.Run("SignV3 reproduces ICE POST vector", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://ice.cn-shanghai.aliyuncs.com/", strings.NewReader(bodyICE))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("x-acs-action", "SendLiveSnapshotJobCommand")
		req.Header.Set("x-acs-version", "2020-11-09")
		SignV3(req, []byte(bodyICE), "testid", "testsecret", "0123456789abcdef0123456789abcdef",
			time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
		want := "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=5828abc6c52e24c038bb2afbecb78dd011e4db552abb5f39f10e6bf678bec4d1"
		if got := req.Header.Get("Authorization"); got != want {
			t.Errorf("Authorization\n got %s\nwant %s", got, want)
		}
	})
}
