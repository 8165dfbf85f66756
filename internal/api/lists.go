package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

// maxTemplateIDs bounds the TemplateIds repeat list.
const maxTemplateIDs = 200

func (s *Service) updateTemplate(ctx context.Context, call *rpc.Call) (any, error) {
	p := params{call.Params}
	id, err := p.required("TemplateId", 128)
	if err != nil {
		return nil, err
	}
	t, err := s.Store.GetTemplate(ctx, account(call), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errTemplateNotFound
	}
	if err != nil {
		return nil, err
	}
	// Omitted fields stay as they are; the result must still satisfy every rule.
	if p.has("TemplateName") {
		if t.Name, err = p.str("TemplateName", maxNameLength); err != nil {
			return nil, err
		}
	}
	if p.has("TimeInterval") {
		if t.TimeInterval, err = p.intIn("TimeInterval", 1, 3600, 0); err != nil {
			return nil, err
		}
	}
	if p.has("OverwriteFormat") {
		t.OverwriteFormat = p.v.Get("OverwriteFormat")
	}
	if p.has("SequenceFormat") {
		t.SequenceFormat = p.v.Get("SequenceFormat")
	}
	if t.Image, err = imageSettings(p, t.Image); err != nil {
		return nil, err
	}
	if err := s.validateTemplate(t); err != nil {
		return nil, err
	}
	t.LastModified = s.now()
	if err := s.Store.UpdateTemplate(ctx, t); errors.Is(err, store.ErrNotFound) {
		return nil, errTemplateNotFound
	} else if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) deleteTemplate(ctx context.Context, call *rpc.Call) (any, error) {
	id, err := params{call.Params}.required("TemplateId", 128)
	if err != nil {
		return nil, err
	}
	// Jobs copied the template's values when submitted, so deleting it never changes a job.
	if err := s.Store.DeleteTemplate(ctx, account(call), id); errors.Is(err, store.ErrNotFound) {
		return nil, errTemplateNotFound
	} else if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// page reads PageNo (≥ 1), PageSize (1-100, default 10) and SortBy (default desc).
func page(p params) (store.Page, int, string, error) {
	no, err := p.intIn("PageNo", 1, 1<<20, 1)
	if err != nil {
		return store.Page{}, 0, "", err
	}
	size, err := p.intIn("PageSize", 1, 100, 10)
	if err != nil {
		return store.Page{}, 0, "", err
	}
	sortBy, err := p.oneOf("SortBy", "desc", "asc", "desc")
	if err != nil {
		return store.Page{}, 0, "", err
	}
	return store.Page{Offset: (no - 1) * size, Limit: size, Desc: sortBy == "desc"}, no, sortBy, nil
}

type templateItem struct {
	TemplateId   string
	TemplateName string
	Type         string
	TimeInterval int
	CreateTime   string
}

type templateList struct {
	TemplateList []templateItem
	PageNo       int
	PageSize     int
	SortBy       string
	TotalCount   int64
}

func (s *Service) listTemplates(ctx context.Context, call *rpc.Call) (any, error) {
	p := params{call.Params}
	pg, no, sortBy, err := page(p)
	if err != nil {
		return nil, err
	}
	kw, err := p.str("SearchKeyWord", 128)
	if err != nil {
		return nil, err
	}
	typ, err := p.oneOf("Type", "", snapshot.TypeSystem, snapshot.TypeCustom)
	if err != nil {
		return nil, err
	}
	ids, err := repeatList(p, "TemplateIds", maxTemplateIDs)
	if err != nil {
		return nil, err
	}
	list, total, err := s.Store.ListTemplates(ctx, store.TemplateQuery{AccountID: account(call), Keyword: kw, IDs: ids, Type: typ, Page: pg})
	if err != nil {
		return nil, err
	}
	out := templateList{TemplateList: []templateItem{}, PageNo: no, PageSize: pg.Limit, SortBy: sortBy, TotalCount: total}
	for _, t := range list {
		out.TemplateList = append(out.TemplateList, templateItem{TemplateId: t.ID, TemplateName: t.Name, Type: t.Type,
			TimeInterval: t.TimeInterval, CreateTime: snapshot.FormatTime(t.CreateTime)})
	}
	return out, nil
}

// repeatList reads Name.1, Name.2, ... (the SDKs' "repeat list"), also accepting a JSON array
// or a comma-separated list in Name itself.
func repeatList(p params, name string, max int) ([]string, error) {
	var out []string
	for i := 1; ; i++ {
		v, ok := p.v[fmt.Sprintf("%s.%d", name, i)]
		if !ok {
			break
		}
		if len(out) >= max {
			return nil, rpc.InvalidParameter("%s holds more than %d items", name, max)
		}
		if len(v) > 0 && v[0] != "" {
			out = append(out, v[0])
		}
	}
	if whole := strings.TrimSpace(p.v.Get(name)); whole != "" && len(out) == 0 {
		whole = strings.Trim(whole, "[]")
		for _, v := range strings.Split(whole, ",") {
			if v = strings.Trim(strings.TrimSpace(v), `"`); v != "" {
				out = append(out, v)
			}
		}
		if len(out) > max {
			return nil, rpc.InvalidParameter("%s holds more than %d items", name, max)
		}
	}
	return out, nil
}

type jobItem struct {
	JobId          string
	JobName        string
	TemplateId     string
	TemplateName   string
	Status         string
	SnapshotOutput snapshot.SnapshotOutput
	TimeInterval   int
	CreateTime     string
}

type jobList struct {
	JobList    []jobItem
	PageNo     int
	PageSize   int
	SortBy     string
	TotalCount int64
}

// maxJobWindow is the widest StartTime..EndTime window of ListLiveSnapshotJobs.
const maxJobWindow = 30 * 24 * time.Hour

func (s *Service) listJobs(ctx context.Context, call *rpc.Call) (any, error) {
	p := params{call.Params}
	pg, no, sortBy, err := page(p)
	if err != nil {
		return nil, err
	}
	kw, err := p.str("SearchKeyWord", 128)
	if err != nil {
		return nil, err
	}
	status, err := p.oneOf("Status", "", snapshot.StatusInit, snapshot.StatusPaused, snapshot.StatusStarted)
	if err != nil {
		return nil, err
	}
	// Defaults: the last 7 days; with only StartTime, the 7 days after it.
	now := s.now()
	start, end := now.Add(-7*24*time.Hour), now
	if p.has("StartTime") {
		var ok bool
		if start, ok = snapshot.ParseTime(p.v.Get("StartTime")); !ok {
			return nil, errMalformedStart
		}
		end = start.Add(7 * 24 * time.Hour)
	}
	if p.has("EndTime") {
		var ok bool
		if end, ok = snapshot.ParseTime(p.v.Get("EndTime")); !ok {
			return nil, errMalformedEnd
		}
		if !p.has("StartTime") {
			start = end.Add(-7 * 24 * time.Hour)
		}
	}
	if end.Before(start) || end.Sub(start) > maxJobWindow {
		return nil, errEndTimeMismatch
	}
	list, total, err := s.Store.ListJobs(ctx, store.JobQuery{AccountID: account(call), Keyword: kw, Status: status, Start: start, End: end, Page: pg})
	if err != nil {
		return nil, err
	}
	out := jobList{JobList: []jobItem{}, PageNo: no, PageSize: pg.Limit, SortBy: sortBy, TotalCount: total}
	for _, j := range list {
		out.JobList = append(out.JobList, jobItem{JobId: j.ID, JobName: j.Name, TemplateId: j.TemplateID, TemplateName: j.TemplateName,
			Status: j.Status, SnapshotOutput: j.Output, TimeInterval: j.TimeInterval, CreateTime: snapshot.FormatTime(j.CreateTime)})
	}
	return out, nil
}
