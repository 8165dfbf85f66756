package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/livesnap/livesnap/internal/api"
	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/netpolicy"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/source"
)

// Probes of streams that libavformat demuxes run in a child process (`livesnap probe`): its
// stream analysis may open decoders, and the API process never runs codecs, so a crash in
// one costs a probe, not the API. RTMP is probed in process (pure Go, no codec).

// probeResult is what `livesnap probe` prints on stdout.
type probeResult struct {
	Kind    string // "" (live), "not_found", "refused", "no_video", "invalid"
	Message string
}

// probe checks in as Submit and start do: live (nil), or an error wrapping
// api.ErrStreamNotFound, netpolicy.ErrRefused, or another unusable-stream error.
func (c serveConfig) probe(ctx context.Context, in snapshot.StreamInput) error {
	if in.Type == "rtmp" {
		return probeResultError(c.probeHere(ctx, in))
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg, err := json.Marshal(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.ProbeTimeout+5*time.Second) // the child bounds itself too
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "probe", "--type", in.Type, "--url", in.URL, "--transport", in.Transport)
	cmd.Env = append(os.Environ(), runnerConfigEnv+"="+string(cfg))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.Output()
	var r probeResult
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: probe timed out", api.ErrStreamNotFound)
		}
		return fmt.Errorf("probe process failed: %v", err) // a crash: the stream cannot be used
	}
	return probeResultError(r)
}

// probeHere probes in this process.
func (c serveConfig) probeHere(ctx context.Context, in snapshot.StreamInput) probeResult {
	policy, err := c.netPolicy()
	if err != nil {
		return probeResult{Kind: "invalid", Message: err.Error()}
	}
	err = source.ProbeWith(ctx, in.Type, in.URL, source.Options{ConnectTimeout: c.ProbeTimeout, DialContext: policy.DialContext(c.ProbeTimeout),
		CheckAddr: policy.Check, RTSPTransport: in.Transport})
	switch {
	case err == nil:
		return probeResult{}
	case errors.Is(err, netpolicy.ErrRefused):
		return probeResult{Kind: "refused", Message: err.Error()}
	case errors.Is(err, source.ErrStreamNotFound), errors.Is(err, source.ErrStalled), errors.Is(err, source.ErrEnded):
		return probeResult{Kind: "not_found", Message: err.Error()}
	case errors.Is(err, source.ErrNoVideo):
		return probeResult{Kind: "no_video", Message: err.Error()}
	}
	return probeResult{Kind: "invalid", Message: err.Error()}
}

// probeResultError turns a result into what api.Service.Probe returns.
func probeResultError(r probeResult) error {
	switch r.Kind {
	case "":
		return nil
	case "not_found":
		return fmt.Errorf("%w: %s", api.ErrStreamNotFound, r.Message)
	case "refused":
		return fmt.Errorf("%w: %s", netpolicy.ErrRefused, r.Message)
	}
	return errors.New(r.Message)
}

// probeChild is `livesnap probe`: one probe, its result as JSON on stdout (started by serve).
func probeChild(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	typ := fs.String("type", "", "StreamInput.Type")
	url := fs.String("url", "", "StreamInput.Url")
	transport := fs.String("transport", "", "StreamInput.Transport")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg serveConfig
	raw := os.Getenv(runnerConfigEnv)
	if raw == "" {
		return errors.New("probe is started by `livesnap serve`, not by hand")
	}
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return fmt.Errorf("%s: %w", runnerConfigEnv, err)
	}
	if err := decode.SetLogLevel(cfg.FFmpegLogLevel); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ProbeTimeout+time.Second)
	defer cancel()
	r := cfg.probeHere(ctx, snapshot.StreamInput{Type: *typ, URL: *url, Transport: *transport})
	return json.NewEncoder(stdout).Encode(r)
}
