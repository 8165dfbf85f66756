package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/livesnap/livesnap/internal/blob"
	"github.com/livesnap/livesnap/internal/callback"
	"github.com/livesnap/livesnap/internal/capture"
	"github.com/livesnap/livesnap/internal/decode"
	"github.com/livesnap/livesnap/internal/media"
	"github.com/livesnap/livesnap/internal/redact"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/store"
)

// Reconnect backoff bounds.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// Run states reported in GetLiveSnapshotJob's RunState.
const (
	StateConnecting = "connecting"
	StateCapturing  = "capturing"
	StateWaiting    = "waiting_for_stream"
	StateStalled    = "stalled"
	StateNoVideo    = "no_video"
)

// errLeaseLost: the holder could not renew its leases in time, so it may no longer write.
var errLeaseLost = errors.New("lease not renewed in time; not writing")

// errStoppedDuringCapture: the job was stopped, restarted or taken over while a snapshot was
// being made; it is dropped.
var errStoppedDuringCapture = errors.New("job stopped, restarted or taken over during capture")

// Miss reasons (metrics label and log field).
const (
	missBusy   = "previous_capture_still_running"
	missDecode = "decode_failed"
	missWrite  = "object_write_failed"
	missRecord = "record_failed"
	missLease  = "lease_lost"
)

// supervisor runs one job's pipeline: connect, pick a keyframe per tick, capture, reconnect.
type supervisor struct {
	m      *Manager
	job    snapshot.Job
	token  int64 // the lease's fencing token, sent with every record
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	runtime store.JobRuntime
}

func newSupervisor(parent context.Context, m *Manager, j snapshot.Job, token int64) *supervisor {
	ctx, cancel := context.WithCancel(parent)
	s := &supervisor{m: m, job: j, token: token, cancel: cancel, done: make(chan struct{}),
		log:     m.logger().With("job", j.ID, "generation", j.Generation),
		runtime: store.JobRuntime{JobID: j.ID, Generation: j.Generation}}
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
	return s
}

// stop cancels the pipeline and waits until it has exited.
func (s *supervisor) stop() {
	s.cancel()
	<-s.done
}

// setState records a run state change (and the error behind it) in the store.
func (s *supervisor) setState(state string, err error) {
	s.mu.Lock()
	prev := s.runtime.RunState
	s.runtime.RunState = state
	if err != nil {
		s.runtime.LastError = err.Error()
	}
	s.mu.Unlock()
	if prev != state {
		s.m.gauge(prev, -1)
		s.m.gauge(state, +1)
		s.log.Info("run state", "state", state, "err", err)
	}
	s.publish()
}

// publish writes the runtime status to the store (best effort: it is informational).
func (s *supervisor) publish() {
	s.mu.Lock()
	r := s.runtime
	r.Updated = time.Now()
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.m.Store.SetJobRuntime(ctx, r); err != nil {
		s.log.Warn("record runtime status", "err", err)
	}
}

func (s *supervisor) miss(reason string, tick time.Time, err error) {
	s.mu.Lock()
	s.runtime.Misses++
	if err != nil {
		s.runtime.LastError = blob.PublicMessage(err) // the log below keeps the whole error
	}
	s.mu.Unlock()
	if s.m.Metrics != nil {
		s.m.Metrics.Misses.WithLabelValues(reason).Inc()
	}
	// A source's misses are the stream's business; a failed write or record is the
	// operator's (storage or store trouble), so it is a warning.
	level := slog.LevelInfo
	if reason == missWrite || reason == missRecord {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "snapshot missed", "reason", reason, "tick", tick.UTC().Format(time.RFC3339Nano), "err", err)
	s.publish()
}

func (s *supervisor) captured(at time.Time) {
	s.mu.Lock()
	s.runtime.Snapshots++
	s.runtime.LastSnapshot = at
	s.runtime.LastError = ""
	s.mu.Unlock()
	if s.m.Metrics != nil {
		s.m.Metrics.Snapshots.Inc()
	}
	s.publish()
}

func (s *supervisor) run(ctx context.Context) {
	s.log.Info("pipeline started", "url", redact.URL(s.job.Input.URL), "interval", s.job.TimeInterval)
	defer func() {
		s.mu.Lock()
		state := s.runtime.RunState
		s.mu.Unlock()
		s.m.gauge(state, -1)
		s.log.Info("pipeline stopped")
	}()
	c := &capturer{sup: s, job: s.job}
	backoff := minBackoff
	failure := "" // the state of the last failed session, kept while reconnecting
	for ctx.Err() == nil {
		if failure == "" {
			s.setState(StateConnecting, nil)
		}
		connected, err := s.session(ctx, c)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff, failure = minBackoff, ""
		}
		if s.m.Metrics != nil {
			s.m.Metrics.Reconnects.Inc()
		}
		switch {
		case errors.Is(err, source.ErrStalled):
			failure = StateStalled
		case errors.Is(err, source.ErrNoVideo):
			failure = StateNoVideo
		case failure == StateStalled && errors.Is(err, source.ErrStreamNotFound):
			// A stalled publisher often still holds its stream name: a relay lets us in
			// and sends nothing. It is the same stall.
		default:
			failure = StateWaiting
		}
		s.setState(failure, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// session pulls the stream once until it fails. Ticks run on the wall clock from the moment
// the stream is open; the capture policy (package capture) turns units and ticks into decode
// requests and misses. A missed tick is never made up later.
func (s *supervisor) session(ctx context.Context, c *capturer) (connected bool, err error) {
	interval := time.Duration(s.job.TimeInterval) * time.Second
	st, err := s.m.Open(ctx, s.job.Input, max(10*time.Second, 2*interval))
	if err != nil {
		return false, err
	}
	s.m.sessionStarted(s.job.ID)
	defer s.m.sessionEnded(s.job.ID)
	defer st.Close()

	policy := capture.Keyframe
	if s.job.Image.Policy == snapshot.PolicyExact {
		policy = capture.Exact
	}
	picker := &capture.Picker{Policy: policy, Interval: interval}
	clock := &capture.Clock{} // stamps units with when they were live, not when they arrived
	// While the picker only takes keyframes, the source need not copy the other pictures; it
	// asks again at every keyframe (the source turns it off there: see KeyframesOnly).
	keysOnly, _ := st.(source.KeyframesOnly)

	// The reader never waits on captures: decoding runs in its own goroutine, and a tick whose
	// picture comes while the previous capture is still running is a miss.
	units := make(chan media.AccessUnit, 64)
	readErr := make(chan error, 1)
	go func() {
		defer close(units)
		for {
			u, err := st.Read()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case units <- u:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
		}
	}()

	captures := make(chan *capture.Request, 1)
	retries := make(chan failedCapture, 1)
	captureDone := make(chan struct{})
	go func() {
		defer close(captureDone)
		for r := range captures {
			c.capture(ctx, r, retries)
		}
	}()
	defer func() {
		close(captures)
		<-captureDone
	}()
	submit := func(r *capture.Request) {
		if r == nil {
			return
		}
		select {
		case captures <- r:
		default:
			s.miss(missBusy, r.Tick, nil)
		}
	}

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var retryErr error       // why the last retried tick's picture was refused
	picker.Start(time.Now()) // the first tick is the moment the stream opened
	// Ticks wait until a late stream (HLS) has delivered the pictures of their moment.
	ticks := &capture.Ticks{}
	tick := func(t time.Time) {
		r, m := picker.Tick(t)
		if m != nil {
			var err error
			if m.Reason == missDecode {
				err = retryErr // the retried tick found no clean picture in time
			}
			s.miss(m.Reason, m.Tick, err)
		}
		submit(r)
	}
	for {
		select {
		case <-ctx.Done():
			st.Close()
			return connected, ctx.Err()
		case now := <-ticker.C:
			ticks.Add(now)
			for _, t := range ticks.Due(now, time.Time{}) {
				tick(t)
			}
		case f := <-retries:
			retryErr = f.err
			if m := picker.Retry(f.req, missDecode); m != nil {
				s.miss(m.Reason, m.Tick, f.err)
			}
		case u, ok := <-units:
			if !ok {
				return connected, <-readErr
			}
			if !connected {
				connected = true
				s.setState(StateCapturing, nil)
			}
			arrival := u.Received
			for _, v := range clock.Push(u) {
				ticks.Observe(arrival, v.Received)
				for _, t := range ticks.Due(time.Now(), v.Received) {
					tick(t)
				}
				submit(picker.Unit(v))
				if keysOnly != nil && v.Keyframe {
					keysOnly.SetKeyframesOnly(!picker.NeedsAllUnits())
				}
			}
		}
	}
}

// failedCapture is a request whose picture the decoder refused.
type failedCapture struct {
	req *capture.Request
	err error
}

// capturer turns one keyframe into stored objects and records.
type capturer struct {
	sup *supervisor
	job snapshot.Job
}

// capture decodes the request's picture, writes the sequence object then the overwrite
// object, and records both in one transaction fenced by the job's generation.
//
// A picture the decoder finds damaged (or does not give) goes back to retry: the session
// re-arms its tick so the next clean picture serves it.
func (c *capturer) capture(ctx context.Context, r *capture.Request, retry chan<- failedCapture) {
	u := r.Picture()
	reason, err := c.captureErr(ctx, r)
	if ctx.Err() != nil {
		return
	}
	if err != nil && reason == missDecode && (errors.Is(err, decode.ErrCorrupt) || errors.Is(err, decode.ErrNoPicture)) {
		c.sup.log.Info("picture not clean; the tick waits for the next one", "tick", r.Tick.UTC().Format(time.RFC3339Nano), "err", err)
		select {
		case retry <- failedCapture{r, err}:
			return
		default:
		}
	}
	if err != nil {
		c.sup.miss(reason, r.Tick, err)
		return
	}
	if m := c.sup.m.Metrics; m != nil {
		m.TickLateness.Observe(time.Since(r.Tick).Seconds())
	}
	c.sup.captured(u.Received)
}

func (c *capturer) captureErr(ctx context.Context, r *capture.Request) (string, error) {
	u := r.Picture()
	start := time.Now()
	img := c.job.Image
	pic, err := c.sup.m.decoders().Decode(ctx, r.Units, decode.Options{Width: img.Width, Height: img.Height, Quality: img.Quality})
	if ctx.Err() != nil {
		return missDecode, ctx.Err()
	}
	if err != nil {
		return missDecode, fmt.Errorf("decode: %w", err)
	}
	if m := c.sup.m.Metrics; m != nil {
		m.DecodeSeconds.Observe(time.Since(start).Seconds())
	}
	at := u.Received.UTC().Truncate(time.Millisecond)
	var files []snapshot.File
	if c.job.SequenceFormat != "" {
		seq, err := c.sup.m.Store.NextSequence(ctx, c.job.ID)
		if err != nil {
			return missRecord, fmt.Errorf("sequence: %w", err)
		}
		name, err := snapshot.Expand(c.job.SequenceFormat, snapshot.NameVars{JobID: c.job.ID, Sequence: seq, Time: at})
		if err != nil {
			return missWrite, err
		}
		files = append(files, snapshot.File{AccountID: c.job.AccountID, JobID: c.job.ID, Endpoint: c.job.Output.Endpoint,
			Bucket: c.job.Output.Bucket, Object: name, CreateTime: at})
	}
	if c.job.OverwriteFormat != "" {
		name, err := snapshot.Expand(c.job.OverwriteFormat, snapshot.NameVars{JobID: c.job.ID, Time: at})
		if err != nil {
			return missWrite, err
		}
		files = append(files, snapshot.File{AccountID: c.job.AccountID, JobID: c.job.ID, Endpoint: c.job.Output.Endpoint,
			Bucket: c.job.Output.Bucket, Object: name, CreateTime: at, IsOverlay: true})
	}
	// Sequence object first, then the overwrite object: a reader of the overwrite object can
	// always find the sequence object it shows. Each write is retried before it counts as a miss.
	// No object is written once the lease may have passed to another holder, nor after the
	// job was stopped or restarted (commands reach this process by polling).
	j, err := c.sup.m.Store.GetJob(ctx, c.job.AccountID, c.job.ID)
	if err != nil {
		return missRecord, fmt.Errorf("read job: %w", err)
	}
	if j.Status != snapshot.StatusStarted || j.Generation != c.job.Generation {
		return missRecord, errStoppedDuringCapture
	}
	for i, f := range files {
		if !c.sup.m.leaseValid() {
			c.removeUnrecorded(files[:i])
			return missLease, errLeaseLost
		}
		if err := c.put(ctx, f.Object, pic.JPEG); err != nil {
			c.removeUnrecorded(files[:i])
			return missWrite, err
		}
	}
	capture := store.Capture{JobID: c.job.ID, Generation: c.job.Generation, Holder: c.sup.m.HolderID, Token: c.sup.token, Files: files}
	if c.job.CallbackURL != "" {
		for _, f := range files {
			capture.Callbacks = append(capture.Callbacks, store.Callback{URL: c.job.CallbackURL, Body: callback.Body(c.job, f)})
		}
	}
	err = c.sup.m.Store.RecordCapture(ctx, capture)
	if errors.Is(err, store.ErrConflict) {
		c.removeUnrecorded(files) // the transaction was refused: no record points to them
		return missRecord, errStoppedDuringCapture
	}
	if err != nil {
		return missRecord, err
	}
	c.sup.log.Debug("snapshot stored", "objects", len(files), "width", pic.Width, "height", pic.Height)
	return "", nil
}

// removeUnrecorded deletes, best effort, the sequence objects of a capture that is not
// recorded, so a miss leaves no object behind that no record points to. Only called when the
// records are certainly not stored (before writing them, or when the store refused them): an
// object whose record may exist is never removed.
func (c *capturer) removeUnrecorded(files []snapshot.File) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, f := range files {
		if f.IsOverlay {
			continue // the overwrite object is the job's, not this capture's
		}
		if err := c.sup.m.Blobs.Delete(ctx, c.job.Output, f.Object); err != nil {
			c.sup.log.Warn("remove an unrecorded object", "object", f.Object, "err", err)
		}
	}
}

// Object write retries: exponential backoff with jitter, bounded in count and by the job's
// interval, so a failing store turns a tick into a miss about when the next tick is due.
const (
	putAttempts   = 4
	putFirstPause = 250 * time.Millisecond
)

// put writes one object, retrying a failure after 0.25 s, 0.5 s, 1 s (±25 %) as long as the
// retry starts within one interval of the first attempt. A refusal (blob.ErrRefused: output
// not configured, unsafe name) is final at once.
func (c *capturer) put(ctx context.Context, object string, data []byte) error {
	deadline := time.Now().Add(time.Duration(c.job.TimeInterval) * time.Second)
	pause := putFirstPause
	for attempt := 1; ; attempt++ {
		err := c.sup.m.Blobs.Put(ctx, c.job.Output, object, data)
		if err == nil {
			return nil
		}
		if c.sup.m.Metrics != nil {
			c.sup.m.Metrics.ObjectWriteErrors.Inc()
		}
		wait := jitter(pause)
		if errors.Is(err, blob.ErrRefused) || attempt == putAttempts || time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("write %s (attempt %d): %w", object, attempt, err)
		}
		c.sup.log.Debug("object write failed, retrying", "object", object, "attempt", attempt, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		pause *= 2
	}
}

// jitter spreads d by ±25 %, so pipelines that failed together do not retry together.
func jitter(d time.Duration) time.Duration {
	return d - d/4 + rand.N(d/2+1)
}
