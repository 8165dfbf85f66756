// Package metrics defines livesnap's Prometheus metrics in one place, so every name, label
// and bucket is visible on one screen.
package metrics

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// Metrics is the set of livesnap's metrics, registered on its own registry.
type Metrics struct {
	Registry          *prometheus.Registry
	Snapshots         prometheus.Counter
	Misses            *prometheus.CounterVec // by reason
	DecodeSeconds     prometheus.Histogram
	TickLateness      prometheus.Histogram
	Reconnects        prometheus.Counter
	CallbacksOK       prometheus.Counter
	CallbacksFailed   prometheus.Counter
	JobsByRunState    *prometheus.GaugeVec // by run_state
	APIRequests       *prometheus.CounterVec
	ObjectWriteErrors prometheus.Counter
}

// New creates and registers the metrics (and the Go runtime and process collectors).
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Snapshots: prometheus.NewCounter(prometheus.CounterOpts{Name: "livesnap_snapshots_total",
			Help: "Snapshots stored (one per capture, whatever the number of objects)."}),
		Misses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livesnap_snapshot_misses_total",
			Help: "Ticks that produced no snapshot, by reason."}, []string{"reason"}),
		DecodeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "livesnap_decode_seconds",
			Help: "Time to decode and JPEG-encode one snapshot.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 12)}),
		TickLateness: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "livesnap_tick_lateness_seconds",
			Help: "Delay between a tick and the capture of the picture it took.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "livesnap_stream_reconnects_total",
			Help: "Stream sessions that ended and were retried."}),
		CallbacksOK: prometheus.NewCounter(prometheus.CounterOpts{Name: "livesnap_callback_deliveries_total",
			Help: "Callbacks delivered (2xx answer)."}),
		CallbacksFailed: prometheus.NewCounter(prometheus.CounterOpts{Name: "livesnap_callback_failures_total",
			Help: "Callback attempts that failed (retried or given up)."}),
		JobsByRunState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "livesnap_jobs",
			Help: "Pipelines running on this node, by run state."}, []string{"run_state"}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livesnap_api_requests_total",
			Help: "API requests by action and result code."}, []string{"action", "code"}),
		ObjectWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "livesnap_object_write_errors_total",
			Help: "Failed object writes (each retried, then a miss)."}),
	}
	m.Registry.MustRegister(m.Snapshots, m.Misses, m.DecodeSeconds, m.TickLateness, m.Reconnects, m.CallbacksOK,
		m.CallbacksFailed, m.JobsByRunState, m.APIRequests, m.ObjectWriteErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Labeled is a Gatherer that adds the label Name=Value to every metric G gathers, so the
// metrics of several processes can be served together without clashing.
type Labeled struct {
	G           prometheus.Gatherer
	Name, Value string
}

// Gather implements prometheus.Gatherer.
func (l Labeled) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := l.G.Gather()
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
		}
	}
	return mfs, err
}

// Remote gathers the metrics another process serves in the text format on a Unix socket
// (a runner child's).
type Remote struct {
	Socket string
}

// Gather implements prometheus.Gatherer.
func (r Remote) Gather() ([]*dto.MetricFamily, error) {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", r.Socket)
		}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://runner/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics from %s: %s", r.Socket, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		out = append(out, mf)
	}
	return out, nil
}

// HandlerFor serves what g gathers, skipping sources that fail (a runner being restarted).
func HandlerFor(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
