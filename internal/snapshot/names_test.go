package snapshot

import (
	"strings"
	"testing"
	"time"
)

func TestValidateFormats(t *testing.T) {
	long := strings.Repeat("a", 252) + ".jpg" // 256 characters
	cases := []struct {
		name      string
		overwrite string
		sequence  string
		wantErr   string // substring of the field named, "" for valid
	}{
		{"spec examples", "snapshot/{JobId}.jpg", "snapshot/{JobId}/{UnixTimestamp}.jpg", ""},
		{"console preset", "", "snapshot/{JobId}/{Sequence}/{UnixTimestamp}.jpg", ""},
		{"overwrite only", "a.jpg", "", ""},
		{"date allowed in sequence", "", "{Date}/{Sequence}.jpg", ""},
		{"neither set", "", "", "OverwriteFormat"},
		{"leading slash", "/a.jpg", "", "OverwriteFormat"},
		{"not jpg", "a.png", "", "OverwriteFormat"},
		{"timestamp in overwrite", "{UnixTimestamp}.jpg", "", "OverwriteFormat"},
		{"sequence in overwrite", "{Sequence}.jpg", "", "OverwriteFormat"},
		{"date in overwrite", "{Date}.jpg", "", "OverwriteFormat"},
		{"sequence without counter", "", "{JobId}/{Date}.jpg", "SequenceFormat"},
		{"unknown placeholder", "", "{StreamName}/{Sequence}.jpg", "SequenceFormat"},
		{"unterminated placeholder", "", "{Sequence.jpg", "SequenceFormat"},
		{"too long", long, "", "OverwriteFormat"},
		{"dot-dot segment", "../{JobId}.jpg", "", "OverwriteFormat"},
		{"dot-dot inside", "", "a/../../{Sequence}.jpg", "SequenceFormat"},
		{"empty segment", "a//{JobId}.jpg", "", "OverwriteFormat"},
		{"control char", "a\n{JobId}.jpg", "", "OverwriteFormat"},
		{"backslash", "a\\..\\{JobId}.jpg", "", "OverwriteFormat"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateFormats(c.overwrite, c.sequence)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			fe, ok := err.(*FieldError)
			if !ok || fe.Field != c.wantErr {
				t.Fatalf("want error on %s, got %v", c.wantErr, err)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	got, err := Expand("snapshot/{JobId}/{Date}/{Sequence}-{UnixTimestamp}.jpg", NameVars{JobID: "job-1", Sequence: 7, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	if want := "snapshot/job-1/2024-01-02/7-1704164645678.jpg"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	// A job id can never smuggle a path escape into an object name.
	if _, err := Expand("{JobId}.jpg", NameVars{JobID: "../../etc/passwd"}); err == nil {
		t.Fatal("expansion with a traversing job id must fail")
	}
}

func TestPlan(t *testing.T) {
	cases := []struct {
		from, cmd, to string
		checks, gen   bool
		err           error
	}{
		{StatusInit, CommandStart, StatusStarted, true, true, nil},
		{StatusPaused, CommandStart, StatusStarted, true, true, nil},
		{StatusStarted, CommandStart, "", false, false, ErrAlreadyStarted},
		{StatusStarted, CommandStop, StatusPaused, false, false, nil},
		{StatusPaused, CommandStop, StatusPaused, false, false, nil},
		{StatusInit, CommandStop, StatusInit, false, false, nil},
		{StatusStarted, CommandRestart, StatusStarted, true, true, nil},
		{StatusInit, CommandRestart, StatusStarted, true, true, nil},
		{StatusInit, "pause", "", false, false, ErrUnknownCommand},
	}
	for _, c := range cases {
		tr, err := Plan(c.from, c.cmd)
		if err != c.err || tr.To != c.to || tr.NeedsChecks != c.checks || tr.NewGeneration != c.gen {
			t.Errorf("Plan(%s, %s) = %+v, %v", c.from, c.cmd, tr, err)
		}
	}
}

func TestCursorTime(t *testing.T) {
	at := time.Date(2024, 1, 1, 0, 0, 5, 123_000_000, time.UTC)
	s := FormatCursorTime(at)
	if s != "2024-01-01T00:00:05.123Z" {
		t.Fatalf("got %s", s)
	}
	back, ok := ParseTime(s)
	if !ok || !back.Equal(at) {
		t.Fatalf("round trip: %v %v", back, ok)
	}
	if FormatCursorTime(at.Truncate(time.Second)) != "2024-01-01T00:00:05Z" {
		t.Fatal("whole seconds must use the ICE layout")
	}
}

func FuzzExpand(f *testing.F) {
	f.Add("snapshot/{JobId}/{UnixTimestamp}.jpg", "job", int64(1))
	f.Add("{Date}/../{Sequence}.jpg", "..", int64(-1))
	f.Fuzz(func(t *testing.T, format, jobID string, seq int64) {
		if ValidateFormats("", format) != nil {
			return
		}
		name, err := Expand(format, NameVars{JobID: jobID, Sequence: seq, Time: time.Unix(1700000000, 0)})
		if err != nil {
			return
		}
		if CheckObjectName(name) != nil || strings.Contains("/"+name+"/", "/../") {
			t.Fatalf("unsafe name accepted: %q", name)
		}
	})
}
