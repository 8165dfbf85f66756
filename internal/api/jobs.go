package api

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

const maxURLLength = 255

func (s *Service) submitJob(ctx context.Context, call *rpc.Call) (any, error) {
	p := params{call.Params}
	name, err := p.required("JobName", maxNameLength)
	if err != nil {
		return nil, err
	}
	templateID, err := p.required("TemplateId", 128)
	if err != nil {
		return nil, err
	}
	var in snapshot.StreamInput
	if err := p.object("StreamInput", &in, "Type", "Url", "Transport"); err != nil {
		return nil, err
	}
	if err := s.validateInput(in); err != nil {
		return nil, err
	}
	var out snapshot.SnapshotOutput
	if err := p.object("SnapshotOutput", &out, "StorageType", "Endpoint", "Bucket"); err != nil {
		return nil, err
	}
	if err := s.validateOutput(out); err != nil {
		return nil, err
	}
	callback, err := p.str("CallbackUrl", maxURLLength)
	if err != nil {
		return nil, err
	}
	if callback != "" {
		u, err := url.Parse(callback)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || strings.ContainsAny(callback, " \t\r\n") {
			return nil, rpc.InvalidParameter("CallbackUrl must be an http:// or https:// URL without user information or spaces")
		}
		if err := checkURLPort(u); err != nil {
			return nil, rpc.InvalidParameter("CallbackUrl: %s", err.Error())
		}
		if err := s.checkHost(u.Hostname()); err != nil {
			return nil, rpc.InvalidParameter("CallbackUrl: %s", err.Error())
		}
	}
	acct := account(call)
	t, err := s.Store.GetTemplate(ctx, acct, templateID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errTemplateNotFound
	}
	if err != nil {
		return nil, err
	}
	// Only now, with everything else valid, may the submit claim the bucket.
	if err := s.claimBucket(ctx, acct, out); err != nil {
		return nil, err
	}
	now := s.now()
	j := snapshot.Job{AccountID: acct, ID: newID(), Name: name, TemplateID: t.ID, TemplateName: t.Name,
		TimeInterval: t.TimeInterval, OverwriteFormat: t.OverwriteFormat, SequenceFormat: t.SequenceFormat, Image: t.Image,
		Status: snapshot.StatusInit, Input: in, Output: out, CallbackURL: callback, CreateTime: now, LastModified: now}
	if err := s.Store.CreateJob(ctx, j); err != nil {
		return nil, err
	}
	// ICE starts a job at once when its stream is live; a dead stream or a full account leaves
	// it in init, and submit still succeeds (spec 13.2).
	if err := s.start(ctx, call, j, snapshot.StatusInit); err != nil {
		s.logger().Info("submitted job not started", "job", j.ID, "reason", err.Error())
	}
	return struct{ JobId string }{j.ID}, nil
}

// validateInput checks StreamInput: a supported type and a URL of that protocol.
func (s *Service) validateInput(in snapshot.StreamInput) error {
	if in.Type == "" {
		return rpc.MissingParameter("StreamInput.Type")
	}
	if !slices.Contains(s.StreamTypes, in.Type) {
		return rpc.InvalidParameter("StreamInput.Type must be one of %s", strings.Join(s.StreamTypes, ", "))
	}
	if in.URL == "" {
		return rpc.MissingParameter("StreamInput.Url")
	}
	if len(in.URL) > maxURLLength {
		return rpc.InvalidParameter("StreamInput.Url is longer than %d characters", maxURLLength)
	}
	u, err := url.Parse(in.URL)
	if err != nil || u.Host == "" || strings.ContainsAny(in.URL, " \t\r\n") {
		return rpc.InvalidParameter("StreamInput.Url is not a valid URL")
	}
	schemes := streamSchemes[in.Type]
	if len(schemes) > 0 && !slices.Contains(schemes, u.Scheme) {
		return rpc.InvalidParameter("StreamInput.Url must start with %s:// for Type %s", schemes[0], in.Type)
	}
	if err := checkURLPort(u); err != nil {
		return rpc.InvalidParameter("StreamInput.Url: %s", err.Error())
	}
	// What the source would refuse when the job starts (rtmp://host without app and stream
	// key, SRT listener mode, ...) is refused now, rather than making a job that never runs.
	if s.CheckStream != nil {
		if err := s.CheckStream(in); err != nil {
			return rpc.InvalidParameter("StreamInput.Url cannot be used: %s", err.Error())
		}
	}
	if err := s.checkHost(u.Hostname()); err != nil {
		return rpc.InvalidParameter("StreamInput.Url: %s", err.Error())
	}
	// Extension: RTSP over TCP (interleaved, the default) or UDP; no other type has a choice.
	switch {
	case in.Transport == "":
	case in.Type != "rtsp":
		return rpc.InvalidParameter("StreamInput.Transport applies to Type rtsp only")
	case in.Transport != "tcp" && in.Transport != "udp":
		return rpc.InvalidParameter("StreamInput.Transport must be tcp or udp")
	}
	return nil
}

// checkHost refuses a literal IP address the network policy forbids, so the user learns at
// once; host names are checked on their resolved addresses when livesnap connects.
func (s *Service) checkHost(host string) error {
	if s.NetPolicy == nil {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return s.NetPolicy.Check(ip)
	}
	return nil
}

// streamSchemes lists the URL schemes of each StreamInput.Type.
var streamSchemes = map[string][]string{
	"rtmp":     {"rtmp", "rtmps"},
	"rtsp":     {"rtsp", "rtsps"},
	"hls":      {"http", "https"},
	"http-flv": {"http", "https"},
	"srt":      {"srt"},
}

// validateOutput checks SnapshotOutput: a supported storage type, an endpoint host, a bucket.
func (s *Service) validateOutput(out snapshot.SnapshotOutput) error {
	switch {
	case out.StorageType == "":
		return rpc.MissingParameter("SnapshotOutput.StorageType")
	case !slices.Contains(s.StorageTypes, out.StorageType):
		return rpc.InvalidParameter("SnapshotOutput.StorageType must be one of %s", strings.Join(s.StorageTypes, ", "))
	case out.Endpoint == "":
		return rpc.MissingParameter("SnapshotOutput.Endpoint")
	case out.Bucket == "":
		return rpc.MissingParameter("SnapshotOutput.Bucket")
	}
	if err := snapshot.CheckEndpoint(out.Endpoint); err != nil {
		return rpc.InvalidParameter("SnapshotOutput.Endpoint must be a host name or host:port such as oss-cn-shanghai.aliyuncs.com: %s", err.Error())
	}
	if err := snapshot.CheckBucket(out.Bucket); err != nil {
		return rpc.InvalidParameter("SnapshotOutput.Bucket: %s", err.Error())
	}
	if _, err := s.bucketOf(out); err != nil {
		return outputError(err)
	}
	return nil
}

// outputError maps a refused SnapshotOutput to 400 InvalidParameter naming the field.
func outputError(err error) error {
	var re *blob.RouteError
	if errors.As(err, &re) {
		return rpc.InvalidParameter("SnapshotOutput.%s %q %s", re.Field, re.Value, re.Reason)
	}
	return err
}

// checkURLPort refuses a URL whose port is empty ("host:") or outside 1-65535; url.Parse
// only checks that a port is digits.
func checkURLPort(u *url.URL) error {
	port := u.Port()
	if port == "" && !strings.HasSuffix(u.Host, ":") {
		return nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
		return errors.New("the port must be a number from 1 to 65535")
	}
	return nil
}

// jobResponse is GetLiveSnapshotJob's body.
type jobResponse struct {
	JobId           string
	JobName         string
	TemplateId      string
	TemplateName    string
	Status          string
	StreamInput     snapshot.StreamInput
	SnapshotOutput  snapshot.SnapshotOutput
	OverwriteFormat string
	SequenceFormat  string
	TimeInterval    int
	CallbackUrl     string
	CreateTime      string
	LastModified    string
	// Extensions (official clients ignore them): image settings, and what the pipeline of a
	// started job is doing.
	CapturePolicy    string
	Width            int
	Height           int
	Quality          int
	RunState         string `json:",omitempty"`
	LastSnapshotTime string `json:",omitempty"`
	LastError        string `json:",omitempty"`
	SnapshotCount    *int64 `json:",omitempty"`
	MissCount        *int64 `json:",omitempty"`
}

func (s *Service) getJob(ctx context.Context, call *rpc.Call) (any, error) {
	id, err := params{call.Params}.required("JobId", 128)
	if err != nil {
		return nil, err
	}
	j, err := s.Store.GetJob(ctx, account(call), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errJobNotFound
	}
	if err != nil {
		return nil, err
	}
	resp := jobResponse{JobId: j.ID, JobName: j.Name, TemplateId: j.TemplateID, TemplateName: j.TemplateName, Status: j.Status,
		StreamInput: j.Input, SnapshotOutput: j.Output, OverwriteFormat: j.OverwriteFormat, SequenceFormat: j.SequenceFormat,
		TimeInterval: j.TimeInterval, CallbackUrl: j.CallbackURL,
		CreateTime: snapshot.FormatTime(j.CreateTime), LastModified: snapshot.FormatTime(j.LastModified),
		CapturePolicy: j.Image.Policy, Width: j.Image.Width, Height: j.Image.Height, Quality: j.Image.Quality}
	if j.Status == snapshot.StatusStarted {
		resp.RunState = "connecting" // until the runner reports
		if rt, err := s.Store.GetJobRuntime(ctx, j.ID); err == nil && rt.Generation == j.Generation {
			resp.RunState, resp.LastError = rt.RunState, rt.LastError
			resp.SnapshotCount, resp.MissCount = &rt.Snapshots, &rt.Misses
			if !rt.LastSnapshot.IsZero() {
				resp.LastSnapshotTime = snapshot.FormatCursorTime(rt.LastSnapshot)
			}
		}
	}
	return resp, nil
}

func (s *Service) sendCommand(ctx context.Context, call *rpc.Call) (any, error) {
	p := params{call.Params}
	id, err := p.required("JobId", 128)
	if err != nil {
		return nil, err
	}
	cmd, err := p.required("Command", 16)
	if err != nil {
		return nil, err
	}
	if _, err := snapshot.Plan(snapshot.StatusInit, cmd); errors.Is(err, snapshot.ErrUnknownCommand) {
		return nil, rpc.InvalidParameter("Command must be one of start, stop, restart")
	}
	j, err := s.Store.GetJob(ctx, account(call), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errJobNotFound
	}
	if err != nil {
		return nil, err
	}
	tr, err := snapshot.Plan(j.Status, cmd)
	if errors.Is(err, snapshot.ErrAlreadyStarted) {
		return nil, errJobAlreadyStarted
	}
	if err != nil {
		return nil, err
	}
	switch {
	case tr.NeedsChecks:
		err = s.start(ctx, call, j, j.Status)
	case tr.To != j.Status:
		_, err = s.Store.SetJobStatus(ctx, j.AccountID, j.ID, j.Status, tr.To, false, 0, s.now())
		s.jobsChanged()
	}
	if errors.Is(err, store.ErrConflict) {
		// Another command changed the job meanwhile; report what a client can act on.
		if cur, gerr := s.Store.GetJob(ctx, j.AccountID, j.ID); gerr == nil && cur.Status == snapshot.StatusStarted && cmd == snapshot.CommandStart {
			return nil, errJobAlreadyStarted
		}
		return nil, rpc.NewError(409, "IncorrectJobStatus", "The job status changed while the command ran; retry.")
	}
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// start moves a job from status from to started (a new pipeline generation) after checking
// the account's job limit and probing the stream.
func (s *Service) start(ctx context.Context, call *rpc.Call, j snapshot.Job, from string) error {
	limit := call.Principal.(Principal).Account.JobLimit
	if limit <= 0 {
		limit = 100
	}
	if s.Probe != nil {
		if err := s.Probe(ctx, j.Input); err != nil {
			if errors.Is(err, ErrStreamNotFound) {
				return errStreamNotFound
			}
			return rpc.InvalidParameter("StreamInput cannot be used: %s", err.Error())
		}
	}
	_, err := s.Store.SetJobStatus(ctx, j.AccountID, j.ID, from, snapshot.StatusStarted, true, limit, s.now())
	if errors.Is(err, store.ErrLimitExceeded) {
		return errJobLimitExceeded
	}
	if err == nil {
		s.jobsChanged()
	}
	return err
}
