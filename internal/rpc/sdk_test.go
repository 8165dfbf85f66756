package rpc

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
)

// These tests drive the server with the real official client engines (spec 10.2).

func endpoint(ts *httptest.Server) string { return strings.TrimPrefix(ts.URL, "http://") }

func TestDarabonbaClient(t *testing.T) {
	_, ts := newTestServer(t, nil)
	for _, mode := range []struct{ name, alg, scheme string }{
		{"V3 default", "", "V3"},
		{"V1 via SignatureAlgorithm v2", "v2", "V1"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			cfg := &openapiutil.Config{
				AccessKeyId: dara.String(testID), AccessKeySecret: dara.String(testSecret),
				Endpoint: dara.String(endpoint(ts)), Protocol: dara.String("http"), RegionId: dara.String("cn-shanghai"),
			}
			if mode.alg != "" {
				cfg.SignatureAlgorithm = dara.String(mode.alg)
			}
			c, err := openapi.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			call := func(action, method string, m map[string]any) (map[string]any, error) {
				p := &openapiutil.Params{
					Action: dara.String(action), Version: dara.String(testVersion), Protocol: dara.String("HTTPS"),
					Pathname: dara.String("/"), Method: dara.String(method), AuthType: dara.String("AK"),
					Style: dara.String("RPC"), ReqBodyType: dara.String("formData"), BodyType: dara.String("json"),
				}
				req := &openapiutil.OpenApiRequest{}
				if method == "GET" {
					req.Query = openapiutil.Query(m)
				} else {
					req.Body = openapiutil.ParseToMap(m)
				}
				res, err := c.CallApi(p, req, &dara.RuntimeOptions{})
				if err != nil {
					return nil, err
				}
				body, _ := res["body"].(map[string]any)
				return body, nil
			}

			t.Run("GET success", func(t *testing.T) {
				body, err := call("GetLiveSnapshotJob", "GET", map[string]any{"JobId": "****a046-263c-3560-978a-fb287782****"})
				if err != nil {
					t.Fatal(err)
				}
				checkSDKBody(t, body, mode.scheme, "JobId", "****a046-263c-3560-978a-fb287782****")
			})
			t.Run("POST success with JSON-valued field", func(t *testing.T) {
				body, err := call("SubmitLiveSnapshotJob", "POST", map[string]any{
					"JobName": "t 1*~", "StreamInput": `{"Type":"rtmp","Url":"rtmp://127.0.0.1/live/s1"}`,
				})
				if err != nil {
					t.Fatal(err)
				}
				checkSDKBody(t, body, mode.scheme, "StreamInput", `{"Type":"rtmp","Url":"rtmp://127.0.0.1/live/s1"}`)
				checkSDKBody(t, body, mode.scheme, "JobName", "t 1*~")
			})
			t.Run("GET operation error", func(t *testing.T) {
				_, err := call("GetLiveSnapshotJob", "GET", map[string]any{"JobId": "x", "Fail": "JobNotFound"})
				checkDarabonbaError(t, err, 404, "JobNotFound")
			})
			t.Run("POST unknown action", func(t *testing.T) {
				_, err := call("DeleteLiveSnapshotJob", "POST", map[string]any{"JobId": "x"})
				checkDarabonbaError(t, err, 404, "InvalidAction.NotFound")
			})
			t.Run("wrong secret", func(t *testing.T) {
				bad := *cfg
				bad.AccessKeySecret = dara.String("wrong")
				bc, err := openapi.NewClient(&bad)
				if err != nil {
					t.Fatal(err)
				}
				p := &openapiutil.Params{
					Action: dara.String("GetLiveSnapshotJob"), Version: dara.String(testVersion), Protocol: dara.String("HTTPS"),
					Pathname: dara.String("/"), Method: dara.String("GET"), AuthType: dara.String("AK"),
					Style: dara.String("RPC"), ReqBodyType: dara.String("formData"), BodyType: dara.String("json"),
				}
				_, err = bc.CallApi(p, &openapiutil.OpenApiRequest{Query: openapiutil.Query(map[string]any{"JobId": "x"})}, &dara.RuntimeOptions{})
				checkDarabonbaError(t, err, 400, "SignatureDoesNotMatch")
			})
		})
	}
}

func checkSDKBody(t *testing.T, body map[string]any, scheme, param, want string) {
	t.Helper()
	if id, _ := body["RequestId"].(string); !requestIDPattern.MatchString(id) {
		t.Errorf("RequestId = %v", body["RequestId"])
	}
	if body["Scheme"] != scheme || body["AccessKeyId"] != testID {
		t.Errorf("scheme/key = %v/%v, want %s", body["Scheme"], body["AccessKeyId"], scheme)
	}
	p, _ := body["Params"].(map[string]any)
	if p[param] != want {
		t.Errorf("%s = %v, want %q (params %v)", param, p[param], want, p)
	}
}

// checkDarabonbaError asserts the SDK surfaced our status, Code and RequestId
// (darabonba CallApi wraps every API error into *tea.SDKError, spec 2.7).
func checkDarabonbaError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var se *tea.SDKError
	if !errors.As(err, &se) {
		t.Fatalf("error %T %v is not a *tea.SDKError", err, err)
	}
	if got := tea.IntValue(se.StatusCode); got != status {
		t.Errorf("status = %d, want %d", got, status)
	}
	if got := tea.StringValue(se.Code); got != code {
		t.Errorf("code = %s, want %s", got, code)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(tea.StringValue(se.Data)), &data); err != nil {
		t.Fatalf("Data %q: %v", tea.StringValue(se.Data), err)
	}
	id, _ := data["RequestId"].(string)
	if !requestIDPattern.MatchString(id) || !strings.HasSuffix(tea.StringValue(se.Message), "request id: "+id) {
		t.Errorf("request id %q, message %q", id, tea.StringValue(se.Message))
	}
}

func TestOldSDKClient(t *testing.T) {
	_, ts := newTestServer(t, nil)
	client, err := sdk.NewClientWithAccessKey("cn-shanghai", testID, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	newReq := func(method, action string, query, form map[string]string) *requests.CommonRequest {
		r := requests.NewCommonRequest()
		r.Method = method
		r.Scheme = "http"
		r.Domain = endpoint(ts)
		r.Version = testVersion
		r.ApiName = action
		for k, v := range query {
			r.QueryParams[k] = v
		}
		for k, v := range form {
			r.FormParams[k] = v
		}
		return r
	}
	decode := func(t *testing.T, s string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Run("GET success", func(t *testing.T) {
		resp, err := client.ProcessCommonRequest(newReq("GET", "GetLiveSnapshotJob", map[string]string{"JobId": "job 1*~/"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetHttpStatus() != http.StatusOK || resp.GetHttpHeaders()["X-Acs-Request-Id"] == nil {
			t.Errorf("status %d headers %v", resp.GetHttpStatus(), resp.GetHttpHeaders())
		}
		b := decode(t, resp.GetHttpContentString())
		checkSDKBody(t, b, "V1", "JobId", "job 1*~/")
		checkSDKBody(t, b, "V1", "RegionId", "cn-shanghai")
	})
	t.Run("POST success, params in query (CLI style)", func(t *testing.T) {
		resp, err := client.ProcessCommonRequest(newReq("POST", "SendLiveSnapshotJobCommand",
			map[string]string{"Command": "stop", "JobId": "job 1"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		checkSDKBody(t, decode(t, resp.GetHttpContentString()), "V1", "JobId", "job 1")
	})
	t.Run("POST success, params in form body", func(t *testing.T) {
		resp, err := client.ProcessCommonRequest(newReq("POST", "CreateLiveSnapshotTemplate", nil,
			map[string]string{"TemplateName": "t 1*~", "OverwriteFormat": "snapshot/{JobId}.jpg", "TimeInterval": "5"}))
		if err != nil {
			t.Fatal(err)
		}
		checkSDKBody(t, decode(t, resp.GetHttpContentString()), "V1", "OverwriteFormat", "snapshot/{JobId}.jpg")
	})
	for _, tc := range []struct {
		name, method, action string
		query                map[string]string
		status               int
		code                 string
	}{
		{"GET operation error", "GET", "GetLiveSnapshotJob", map[string]string{"JobId": "x", "Fail": "JobNotFound"}, 404, "JobNotFound"},
		{"POST unknown action", "POST", "DeleteLiveSnapshotJob", map[string]string{"JobId": "x"}, 404, "InvalidAction.NotFound"},
		{"POST wrong version", "POST", "SendLiveSnapshotJobCommand", map[string]string{"Version": "x"}, 400, "InvalidVersion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReq(tc.method, tc.action, tc.query, nil)
			if v, ok := tc.query["Version"]; ok {
				r.Version = v
			}
			_, err := client.ProcessCommonRequest(r)
			var se *sdkerrors.ServerError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a ServerError", err, err)
			}
			if se.HttpStatus() != tc.status || se.ErrorCode() != tc.code || !requestIDPattern.MatchString(se.RequestId()) {
				t.Errorf("got %d %s %q, want %d %s", se.HttpStatus(), se.ErrorCode(), se.RequestId(), tc.status, tc.code)
			}
			if !strings.Contains(se.Recommend(), "q="+tc.code) {
				t.Errorf("Recommend = %q", se.Recommend())
			}
		})
	}
}
