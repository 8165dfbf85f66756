// Package callback builds LiveSnapshotFileCreated events and delivers them from the store's
// outbox to each job's CallbackUrl: at least once, with retries and backoff, signed.
package callback

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livesnap/livesnap/internal/redact"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// EventType is ICE's event type for a stored live snapshot.
const EventType = "LiveSnapshotFileCreated"

// Headers that let a receiver check that a callback comes from livesnap (spec 13.1).
const (
	HeaderTimestamp = "X-Livesnap-Timestamp"
	HeaderSignature = "X-Livesnap-Signature"
)

type messageBody struct {
	JobId           string
	JobName         string
	OssEndpoint     string
	OssBucket       string
	OssObject       string
	CreateTime      string
	CreateTimestamp int64
	IsOverlay       bool
}

type event struct {
	EventType   string
	UserId      int64
	EventTime   string
	MessageBody messageBody
}

// Body returns the JSON body announcing file f of job j.
func Body(j snapshot.Job, f snapshot.File) []byte {
	b, _ := json.Marshal(event{EventType: EventType, UserId: j.AccountID, EventTime: snapshot.FormatTime(f.CreateTime),
		MessageBody: messageBody{JobId: j.ID, JobName: j.Name, OssEndpoint: f.Endpoint, OssBucket: f.Bucket, OssObject: f.Object,
			CreateTime: snapshot.FormatTime(f.CreateTime), CreateTimestamp: f.CreateTime.UnixMilli(), IsOverlay: f.IsOverlay}})
	return b
}

// Sign returns the X-Livesnap-Signature value: hex HMAC-SHA256 over timestamp + "." + body.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a received callback's signature and that its timestamp is within maxAge of
// now (receivers should use it to refuse forgeries and replays).
func Verify(secret string, header http.Header, body []byte, now time.Time, maxAge time.Duration) bool {
	ts := header.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > maxAge {
		return false
	}
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(header.Get(HeaderSignature)))
}

// Dispatcher delivers queued callbacks.
type Dispatcher struct {
	Store  store.Store
	Client *http.Client // its transport should apply the network policy; nil → a 5 s client
	// MaxAttempts before a callback is given up (kept in the outbox as dead); 0 → 12.
	MaxAttempts int
	// FirstBackoff doubles after each failure up to MaxBackoff; 0 → 1 s and 10 min.
	FirstBackoff, MaxBackoff time.Duration
	// Poll is how often the outbox is read when idle; 0 → 500 ms.
	Poll    time.Duration
	Workers int // concurrent deliveries; 0 → 8
	Logger  *slog.Logger
	// Delivered and Failed, when set, count outcomes (metrics).
	Delivered, Failed func()
}

// lease hides claimed callbacks from other dispatchers while one is delivering them.
const lease = 2 * time.Minute

// Run delivers until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	poll := d.Poll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	workers := d.Workers
	if workers <= 0 {
		workers = 8
	}
	for ctx.Err() == nil {
		batch, err := d.Store.ClaimCallbacks(ctx, time.Now(), workers*4, lease)
		if err != nil && ctx.Err() == nil {
			d.logger().Error("claim callbacks", "err", err)
		}
		if len(batch) > 0 {
			sem := make(chan struct{}, workers)
			var wg sync.WaitGroup
			for _, cb := range batch {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					d.deliver(ctx, cb)
				}()
			}
			wg.Wait()
			continue // there may be more due
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

func (d *Dispatcher) deliver(ctx context.Context, cb store.Callback) {
	err := d.post(ctx, cb)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and another attempt follows
	}
	now := time.Now()
	if err == nil {
		if d.Delivered != nil {
			d.Delivered()
		}
		if err := d.Store.CallbackDone(ctx, cb.ID, now, false, ""); err != nil {
			d.logger().Error("mark callback delivered", "id", cb.ID, "err", err)
		}
		return
	}
	if d.Failed != nil {
		d.Failed()
	}
	max := d.MaxAttempts
	if max <= 0 {
		max = 12
	}
	attempts := cb.Attempts + 1
	why := redact.Error(err) // the client's errors quote the URL, and its query may be a token
	log := d.logger().With("id", cb.ID, "job", cb.JobID, "attempt", attempts, "err", why)
	if attempts >= max {
		log.Error("callback given up")
		d.Store.CallbackDone(ctx, cb.ID, now, true, why)
		return
	}
	first, maxBackoff := d.FirstBackoff, d.MaxBackoff
	if first <= 0 {
		first = time.Second
	}
	if maxBackoff <= 0 {
		maxBackoff = 10 * time.Minute
	}
	backoff := first << min(attempts-1, 30)
	if backoff > maxBackoff || backoff <= 0 {
		backoff = maxBackoff
	}
	log.Warn("callback failed; will retry", "in", backoff)
	d.Store.CallbackRetry(ctx, cb.ID, now.Add(backoff), why)
}

func (d *Dispatcher) post(ctx context.Context, cb store.Callback) error {
	client := d.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb.URL, strings.NewReader(string(cb.Body)))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "livesnap-callback/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(cb.Secret, ts, cb.Body))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

func (d *Dispatcher) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

// NewClient returns the HTTP client for callbacks: 5 s per attempt, at most 3 redirects, and
// every connection (redirect targets included) checked by dial.
func NewClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DialContext: dial, Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return fmt.Errorf("more than 3 redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to scheme %q refused", req.URL.Scheme)
			}
			return nil
		},
	}
}
