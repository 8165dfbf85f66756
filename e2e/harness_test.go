// Package e2e drives livesnap as its users do: the real binary, real ffmpeg streams, and the
// official Alibaba Cloud client engines. Each test reads as a user's story.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	execpkg "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	alisdk "github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"

	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/rtmpserver"
	"github.com/livesnap/livesnap/internal/source/sourcetest"
	"github.com/livesnap/livesnap/internal/store/postgres/pgtest"
	"github.com/livesnap/livesnap/internal/testenv"
)

// binary is the livesnap executable built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	_ = decode.SetLogLevel("quiet") // the tests' own probes through libavformat
	dir, err := os.MkdirTemp("", "livesnap-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "livesnap")
	build := execpkg.Command("go", "build", "-o", binary, "../cmd/livesnap")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building livesnap:", err)
		os.Exit(1)
	}
	code := pgtest.Main(m) // m.Run, then stop a PostgreSQL server the tests started
	os.RemoveAll(dir)
	sourcetest.Cleanup()
	os.Exit(code)
}

// sampleClip is the shared Big Buck Bunny clip (CC BY 3.0, Blender Foundation), or a
// generated stand-in where the shared media is missing.
func sampleClip(t *testing.T) string {
	t.Helper()
	return testenv.Sample(t)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startRelay runs our multi-client RTMP relay in-process and returns its address.
func startRelay(t *testing.T) string {
	t.Helper()
	return startRelayWith(t, func(*rtmpserver.Server) {})
}

// startRelayWith is startRelay with settings changed by set.
func startRelayWith(t *testing.T, set func(*rtmpserver.Server)) string {
	t.Helper()
	srv := &rtmpserver.Server{Addr: "127.0.0.1:0"}
	set(srv)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.ListenAddr()
}

// publish streams the sample clip in a loop, in real time, to url with ffmpeg.
func publish(t *testing.T, url string) *execpkg.Cmd {
	t.Helper()
	return publishWith(t, url, "-map", "0:v", "-map", "0:a", "-c", "copy")
}

// publishWith publishes the sample clip to url with the given ffmpeg output options and
// returns the running ffmpeg (killed when the test ends).
func publishWith(t *testing.T, url string, opts ...string) *execpkg.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	args := append([]string{"-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", sampleClip(t)}, opts...)
	cmd := execpkg.CommandContext(ctx, "ffmpeg", append(args, "-f", "flv", url)...)
	cmd.Stderr = &testLog{t: t, prefix: "ffmpeg: "}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cancel()
		cmd.Wait()
	})
	return cmd
}

// testLog forwards a process's output to the test log (and keeps a copy when keep is set).
type testLog struct {
	t      *testing.T
	prefix string
	keep   *lockedBuffer
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (l *testLog) Write(p []byte) (int, error) {
	if l.keep != nil {
		l.keep.mu.Lock()
		l.keep.buf.Write(p)
		l.keep.mu.Unlock()
	}
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		l.t.Log(l.prefix + line)
	}
	return len(p), nil
}

// admin runs a livesnap administration command on a data directory and decodes its JSON.
func admin(t *testing.T, data string, args ...string) map[string]any {
	t.Helper()
	out, err := execpkg.Command(binary, append(args, "--data", data)...).Output()
	if err != nil {
		t.Fatalf("livesnap %v: %v", args, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("livesnap %v printed %q", args, out)
	}
	return m
}

// service is a running `livesnap serve`.
type service struct {
	Endpoint string // host:port
	Data     string
	KeyID    string
	Secret   string
	Cmd      *execpkg.Cmd
	Logs     *lockedBuffer // what it wrote to stderr
	stop     func()
}

// Stop shuts the service down (SIGINT) and waits until it has exited.
func (s *service) Stop() { s.stop() }

// startService runs the livesnap binary on a fresh data directory with a known root key.
func startService(t *testing.T, extraArgs ...string) *service {
	t.Helper()
	return startServiceEnv(t, nil, extraArgs...)
}

// startServiceEnv is startService with extra environment variables (NAME=value).
func startServiceEnv(t *testing.T, extraEnv []string, extraArgs ...string) *service {
	t.Helper()
	s, healthy := launchService(t, serviceOptions{env: extraEnv}, extraArgs...)
	healthy()
	return s
}

// startServicesAtOnce starts n services at the same moment (say, nodes on one new database)
// and waits until all are healthy.
func startServicesAtOnce(t *testing.T, n int, extraArgs ...string) []*service {
	t.Helper()
	var all []*service
	var waits []func()
	for i := 0; i < n; i++ {
		s, healthy := launchService(t, serviceOptions{}, extraArgs...)
		all, waits = append(all, s), append(waits, healthy)
	}
	for _, w := range waits {
		w()
	}
	return all
}

// serviceOptions are the less common ways to start a service.
type serviceOptions struct {
	env  []string // extra NAME=value
	data string   // data directory; "" → a fresh one
	// ownGroup runs the service in a process group of its own, so a test can kill it and
	// its runner processes at once, as a machine that dies would.
	ownGroup bool
}

// launchService starts the binary and returns a function that waits until it is healthy.
func launchService(t *testing.T, opt serviceOptions, extraArgs ...string) (*service, func()) {
	t.Helper()
	s := &service{Endpoint: freePort(t), Data: opt.data, KeyID: "LTAIe2eTestKey0000001", Secret: "e2e-test-secret-000000000000001",
		Logs: &lockedBuffer{}}
	if s.Data == "" {
		s.Data = t.TempDir()
	}
	args := append([]string{"serve", "--listen", s.Endpoint, "--data", s.Data}, extraArgs...)
	cmd := execpkg.Command(binary, args...)
	cmd.Env = append(os.Environ(), "LIVESNAP_ROOT_ACCESS_KEY_ID="+s.KeyID, "LIVESNAP_ROOT_ACCESS_KEY_SECRET="+s.Secret)
	cmd.Env = append(cmd.Env, opt.env...)
	cmd.Stderr = &testLog{t: t, prefix: "livesnap: ", keep: s.Logs}
	if opt.ownGroup {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				t.Error("livesnap did not shut down within 15 s of SIGINT")
			}
		})
	}
	t.Cleanup(s.stop)
	return s, func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get("http://" + s.Endpoint + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
			}
			select {
			case err := <-exited:
				t.Fatalf("livesnap exited early: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("livesnap did not become healthy within 20 s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// clientMode is one of the ways official clients talk to ICE.
type clientMode string

const (
	modeV3  clientMode = "darabonba-V3"      // the ICE SDK's default
	modeV1  clientMode = "darabonba-V1"      // SignatureAlgorithm "v2"
	modeCLI clientMode = "alibaba-cloud-sdk" // CommonRequest, what the aliyun CLI uses
)

var allModes = []clientMode{modeV3, modeV1, modeCLI}

// apiError is an error answer as a client decoded it.
type apiError struct {
	Status int
	Code   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d %s", e.Status, e.Code) }

// iceClient calls ICE actions through a real official client engine.
type iceClient struct {
	t    *testing.T
	mode clientMode
	dara *openapi.Client
	old  *alisdk.Client
	// oldEndpoint is where the CommonRequest client sends (it takes the host per request).
	oldEndpoint string
}

func (s *service) client(t *testing.T, mode clientMode) *iceClient {
	return newClient(t, mode, s.Endpoint, s.KeyID, s.Secret)
}

func newClient(t *testing.T, mode clientMode, endpoint, id, secret string) *iceClient {
	t.Helper()
	c := &iceClient{t: t, mode: mode, oldEndpoint: endpoint}
	var err error
	switch mode {
	case modeV3, modeV1:
		cfg := &openapi.Config{AccessKeyId: dara.String(id), AccessKeySecret: dara.String(secret),
			Endpoint: dara.String(endpoint), Protocol: dara.String("http"), RegionId: dara.String("cn-shanghai")}
		if mode == modeV1 {
			cfg.SignatureAlgorithm = dara.String("v2")
		}
		c.dara, err = openapi.NewClient(cfg)
	case modeCLI:
		c.old, err = alisdk.NewClientWithAccessKey("cn-shanghai", id, secret)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// getActions are sent as GET with query parameters, as the ICE SDK does; the rest as POST
// with a form body (DeleteLiveSnapshotFiles: POST with query parameters).
var getActions = map[string]bool{"GetLiveSnapshotTemplate": true, "ListLiveSnapshotTemplates": true,
	"GetLiveSnapshotJob": true, "ListLiveSnapshotJobs": true, "ListLiveSnapshotFiles": true}

// call runs action with params and decodes the JSON answer; an error answer is an *apiError.
func (c *iceClient) call(action string, params map[string]string) (map[string]any, error) {
	c.t.Helper()
	switch c.mode {
	case modeCLI:
		req := requests.NewCommonRequest()
		req.Domain, req.Scheme, req.Version, req.ApiName = c.endpoint(), "http", "2020-11-09", action
		req.Method = "POST"
		if getActions[action] {
			req.Method = "GET"
		}
		for k, v := range params {
			req.QueryParams[k] = v
		}
		resp, err := c.old.ProcessCommonRequest(req)
		var se *sdkerrors.ServerError
		if errors.As(err, &se) {
			return nil, &apiError{Status: se.HttpStatus(), Code: se.ErrorCode()}
		}
		if err != nil {
			return nil, err
		}
		var out map[string]any
		if err := json.Unmarshal(resp.GetHttpContentBytes(), &out); err != nil {
			return nil, err
		}
		return out, nil
	default:
		method, body := "POST", true
		if getActions[action] {
			method, body = "GET", false
		}
		if action == "DeleteLiveSnapshotFiles" {
			body = false // the ICE SDK sends it as a POST with query parameters
		}
		p := &openapi.Params{Action: dara.String(action), Version: dara.String("2020-11-09"), Protocol: dara.String("HTTPS"),
			Pathname: dara.String("/"), Method: dara.String(method), AuthType: dara.String("AK"), Style: dara.String("RPC"),
			ReqBodyType: dara.String("formData"), BodyType: dara.String("json")}
		m := map[string]any{}
		for k, v := range params {
			m[k] = v
		}
		req := &openapi.OpenApiRequest{}
		if body {
			req.Body = openapiutil.ParseToMap(m)
		} else {
			req.Query = openapiutil.Query(m)
		}
		res, err := c.dara.CallApi(p, req, &dara.RuntimeOptions{})
		var se *tea.SDKError
		if errors.As(err, &se) {
			return nil, &apiError{Status: dara.IntValue(se.StatusCode), Code: dara.StringValue(se.Code)}
		}
		var ce interface {
			GetStatusCode() *int
			GetCode() *string
		}
		if errors.As(err, &ce) {
			return nil, &apiError{Status: dara.IntValue(ce.GetStatusCode()), Code: dara.StringValue(ce.GetCode())}
		}
		if err != nil {
			return nil, err
		}
		b, _ := json.Marshal(res["body"])
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
		return out, nil
	}
}

func (c *iceClient) endpoint() string {
	if c.dara != nil {
		return dara.StringValue(c.dara.Endpoint)
	}
	return c.oldEndpoint
}

// must calls action and fails the test on an error answer.
func (c *iceClient) must(action string, params map[string]string) map[string]any {
	c.t.Helper()
	out, err := c.call(action, params)
	if err != nil {
		c.t.Fatalf("%s (%s): %v", action, c.mode, err)
	}
	if id, _ := out["RequestId"].(string); id == "" {
		c.t.Fatalf("%s (%s): answer without RequestId: %v", action, c.mode, out)
	}
	return out
}

// wantError calls action and checks the status and Code of the error answer.
func (c *iceClient) wantError(action string, params map[string]string, status int, code string) {
	c.t.Helper()
	_, err := c.call(action, params)
	var ae *apiError
	if !errors.As(err, &ae) {
		c.t.Fatalf("%s (%s): want %d %s, got %T %v", action, c.mode, status, code, err, err)
	}
	if ae.Status != status || ae.Code != code {
		c.t.Fatalf("%s (%s): want %d %s, got %d %s", action, c.mode, status, code, ae.Status, ae.Code)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
