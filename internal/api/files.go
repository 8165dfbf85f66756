package api

import (
	"context"
	"errors"
	"time"

	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// maxFileWindow is the widest StartTime..EndTime window of ListLiveSnapshotFiles.
const maxFileWindow = 24 * time.Hour

// fileItem is one entry of ListLiveSnapshotFiles' FileList.
type fileItem struct {
	OssEndpoint     string
	OssBucket       string
	OssObject       string
	CreateTime      string
	CreateTimestamp int64
	IsOverlay       bool
}

type filesResponse struct {
	FileList      []fileItem
	NextStartTime string `json:",omitempty"`
}

// listFiles pages through a job's file records. NextStartTime, when present, is the
// CreateTime (with milliseconds when needed) of the first record not returned: the next call
// passes it as StartTime (asc) or as EndTime (desc) and gets exactly the records that follow,
// none repeated and none skipped, because a page never splits the records of one millisecond.
func (s *Service) listFiles(ctx context.Context, call *rpc.Call) (any, error) {
	p := params{call.Params}
	jobID, err := p.required("JobId", 128)
	if err != nil {
		return nil, err
	}
	start, end, err := timeWindow(p, maxFileWindow)
	if err != nil {
		return nil, err
	}
	limit, err := p.intIn("Limit", 1, 100, 10)
	if err != nil {
		return nil, err
	}
	sortBy, err := p.oneOf("SortBy", "asc", "asc", "desc")
	if err != nil {
		return nil, err
	}
	acct := account(call)
	if _, err := s.Store.GetJob(ctx, acct, jobID); errors.Is(err, store.ErrNotFound) {
		return nil, errJobNotFound
	} else if err != nil {
		return nil, err
	}
	q := store.FileQuery{AccountID: acct, JobID: jobID, Start: start, End: end, Desc: sortBy == "desc", Limit: limit + 1}
	files, err := s.Store.ListFiles(ctx, q)
	if err != nil {
		return nil, err
	}
	resp := filesResponse{FileList: []fileItem{}}
	if len(files) > limit {
		next := files[limit].CreateTime
		cut := limit
		for cut > 0 && files[cut-1].CreateTime.Equal(next) {
			cut--
		}
		if cut == 0 {
			// A whole page of records shares one millisecond: return all of them (a handful at
			// most: one capture writes two records) and continue after that millisecond.
			if files, next, err = s.sameMillisecond(ctx, q, next); err != nil {
				return nil, err
			}
			cut = len(files)
		}
		files = files[:cut]
		switch {
		case next.IsZero():
		case q.Desc:
			// The next page's EndTime: always with milliseconds, since a whole second there
			// would cover the records after next, already on this page.
			resp.NextStartTime = snapshot.FormatExactTime(next)
		default:
			resp.NextStartTime = snapshot.FormatCursorTime(next)
		}
	}
	for _, f := range files {
		resp.FileList = append(resp.FileList, fileItem{OssEndpoint: f.Endpoint, OssBucket: f.Bucket, OssObject: f.Object,
			CreateTime: snapshot.FormatTime(f.CreateTime), CreateTimestamp: f.CreateTime.UnixMilli(), IsOverlay: f.IsOverlay})
	}
	return resp, nil
}

// sameMillisecond returns every record at instant at and the time of the record after it in
// the query's direction (zero if none).
func (s *Service) sameMillisecond(ctx context.Context, q store.FileQuery, at time.Time) ([]snapshot.File, time.Time, error) {
	group := q
	group.Start, group.End, group.Limit = at, at, 1000
	files, err := s.Store.ListFiles(ctx, group)
	if err != nil {
		return nil, time.Time{}, err
	}
	after := q
	after.Limit = 1
	if q.Desc {
		after.End = at.Add(-time.Millisecond)
	} else {
		after.Start = at.Add(time.Millisecond)
	}
	var next time.Time
	if after.Start.After(after.End) {
		return files, next, nil
	}
	rest, err := s.Store.ListFiles(ctx, after)
	if err == nil && len(rest) > 0 {
		next = rest[0].CreateTime
	}
	return files, next, err
}

// timeWindow reads the mandatory StartTime and EndTime (ICE layout, milliseconds accepted) and
// checks that end is not before start and the window is at most max wide, as written. The
// window returned ends at the last millisecond EndTime covers: a second-precision EndTime
// covers its whole second (a record at T.5 shows as CreateTime T), one with milliseconds is
// exact.
func timeWindow(p params, max time.Duration) (time.Time, time.Time, error) {
	if !p.has("StartTime") {
		return time.Time{}, time.Time{}, rpc.MissingParameter("StartTime")
	}
	if !p.has("EndTime") {
		return time.Time{}, time.Time{}, rpc.MissingParameter("EndTime")
	}
	start, ok := snapshot.ParseTime(p.v.Get("StartTime"))
	if !ok {
		return time.Time{}, time.Time{}, errMalformedStart
	}
	end, last, ok := snapshot.ParseEndTime(p.v.Get("EndTime"))
	if !ok {
		return time.Time{}, time.Time{}, errMalformedEnd
	}
	if end.Before(start) || end.Sub(start) > max {
		return time.Time{}, time.Time{}, errEndTimeMismatch
	}
	return start, last, nil
}
