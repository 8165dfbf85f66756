// Package snapshot holds livesnap's domain model (templates, jobs, file records), the ICE
// validation rules for them, object-name expansion and the job state machine. It does no I/O.
package snapshot

import (
	"strings"
	"time"
)

// Job states, as ICE names them.
const (
	StatusInit    = "init"    // submitted, never started (stream absent or limit reached)
	StatusPaused  = "paused"  // stopped by a command
	StatusStarted = "started" // capturing (or reconnecting to its stream)
)

// Template types.
const (
	TypeCustom = "custom"
	TypeSystem = "system"
)

// Template is a reusable set of capture settings.
type Template struct {
	AccountID       int64
	ID              string
	Name            string
	Type            string
	TimeInterval    int // seconds
	OverwriteFormat string
	SequenceFormat  string
	Image           ImageSettings
	CreateTime      time.Time
	LastModified    time.Time
}

// Capture policies (extension; see package capture).
const (
	PolicyKeyframe = "keyframe"
	PolicyExact    = "exact"
)

// ImageSettings are livesnap's extensions to a template: which picture a tick takes and the
// JPEG's size and quality. Zero values mean: keyframe policy, source size, default quality.
type ImageSettings struct {
	Policy  string
	Width   int // 0 keeps the aspect ratio from Height (or the source size)
	Height  int
	Quality int // 1-100; 0 → default
}

// StreamInput says where a job pulls its live stream from.
type StreamInput struct {
	Type string `json:"Type"`
	URL  string `json:"Url"`
	// Transport is livesnap's extension for rtsp: "tcp" (interleaved, also when empty) or
	// "udp". Omitted from answers when empty, so official clients see ICE's fields only.
	Transport string `json:"Transport,omitempty"`
}

// SnapshotOutput says where a job writes its images.
type SnapshotOutput struct {
	StorageType string `json:"StorageType"`
	Endpoint    string `json:"Endpoint"`
	Bucket      string `json:"Bucket"`
}

// Job is one live stream being snapshotted. It copies its template's values at submit time
// (spec 13.3), so later template changes never alter a running job.
type Job struct {
	AccountID       int64
	ID              string
	Name            string
	TemplateID      string
	TemplateName    string
	TimeInterval    int
	OverwriteFormat string
	SequenceFormat  string
	Image           ImageSettings
	Status          string
	Input           StreamInput
	Output          SnapshotOutput
	CallbackURL     string
	CreateTime      time.Time
	LastModified    time.Time
	// Generation grows with every start or restart; a runner rebuilds its pipeline when it changes.
	Generation int64
}

// File is the record of one stored snapshot object.
type File struct {
	AccountID  int64
	JobID      string
	Endpoint   string
	Bucket     string
	Object     string
	CreateTime time.Time // millisecond precision; CreateTimestamp on the wire
	IsOverlay  bool
}

// TimeLayout is ICE's UTC timestamp format (second precision).
const TimeLayout = "2006-01-02T15:04:05Z"

// TimeLayoutMillis is the millisecond form livesnap also emits and accepts (spec 13.5).
const TimeLayoutMillis = "2006-01-02T15:04:05.000Z"

// FormatTime renders t in ICE's layout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// FormatCursorTime renders t with milliseconds when it has any, so a paging cursor is exact.
func FormatCursorTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/int(time.Millisecond) == 0 {
		return t.Format(TimeLayout)
	}
	return t.Format(TimeLayoutMillis)
}

// FormatExactTime renders t always with milliseconds: a window's EndTime that must not be
// read as a whole second (see ParseEndTime).
func FormatExactTime(t time.Time) string { return t.UTC().Format(TimeLayoutMillis) }

// ParseEndTime reads the end of a time window: t as written, and last, the last millisecond
// the window covers. A value in ICE's second layout covers its whole second (last = t +
// 999 ms), since CreateTime is shown that way and a record at T.5 shows as T; a value with a
// fraction is exact (last = t), as paging cursors are.
func ParseEndTime(s string) (t, last time.Time, ok bool) {
	if t, ok = ParseTime(s); !ok {
		return t, t, false
	}
	if strings.Contains(s, ".") {
		return t, t, true
	}
	return t, t.Add(time.Second - time.Millisecond), true
}

// ParseTime accepts ICE's layout and the millisecond form.
func ParseTime(s string) (time.Time, bool) {
	for _, layout := range []string{TimeLayout, TimeLayoutMillis} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
