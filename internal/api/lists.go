package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	// Omitted fields stay as they are; a format given empty is cleared. The result must still
	// satisfy every rule (at least one format).
	if p.given("TemplateName") {
		if t.Name, err = p.required("TemplateName", maxNameLength); err != nil {
			return nil, err
		}
	}
	if p.given("TimeInterval") {
		if t.TimeInterval, err = p.intGiven("TimeInterval", s.minInterval(), maxInterval); err != nil {
			return nil, err
		}
	}
	if p.given("OverwriteFormat") {
		if t.OverwriteFormat, err = p.str("OverwriteFormat", snapshot.MaxFormatLength*4); err != nil {
			return nil, err
		}
	}
	if p.given("SequenceFormat") {
		if t.SequenceFormat, err = p.str("SequenceFormat", snapshot.MaxFormatLength*4); err != nil {
			return nil, err
		}
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
// or a comma-separated list in Name itself. Every item must be there and hold text: a list
// with a gap, an empty item, an item name that is not Name.N, or both forms at once is
// refused, so a filter is never dropped silently.
func repeatList(p params, name string, max int) ([]string, error) {
	items := map[int]string{}
	for k, vs := range p.v {
		suffix, ok := strings.CutPrefix(k, name+".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(suffix)
		if err != nil || !plainDecimal(suffix) || n < 1 {
			return nil, rpc.InvalidParameter("%.60q is not an item of %s: items are %s.1, %s.2, ...", k, name, name, name)
		}
		if n > max {
			return nil, rpc.InvalidParameter("%s holds more than %d items", name, max)
		}
		items[n] = vs[0]
	}
	whole := strings.TrimSpace(p.v.Get(name))
	if len(items) > 0 && whole != "" {
		return nil, rpc.InvalidParameter("%s is given both as a list and as %s.N items", name, name)
	}
	var out []string
	if len(items) > 0 {
		for i := 1; i <= len(items); i++ {
			v, ok := items[i]
			if !ok {
				return nil, rpc.InvalidParameter("%s.%d is missing: items are numbered from 1 without gaps", name, i)
			}
			out = append(out, v)
		}
	} else if whole != "" {
		for _, v := range strings.Split(strings.Trim(whole, "[]"), ",") {
			out = append(out, strings.Trim(strings.TrimSpace(v), `"`))
		}
		if len(out) > max {
			return nil, rpc.InvalidParameter("%s holds more than %d items", name, max)
		}
	}
	for i, v := range out {
		item := fmt.Sprintf("%s.%d", name, i+1)
		if strings.TrimSpace(v) == "" {
			return nil, rpc.InvalidParameter("%s is empty", item)
		}
		if err := checkText(item, v, maxListItem); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// hasItems reports whether any Name.<something> parameter is given.
func hasItems(p params, name string) bool {
	for k := range p.v {
		if strings.HasPrefix(k, name+".") {
			return true
		}
	}
	return false
}

// maxListItem bounds one item of a repeat list (template ids are 36 characters).
const maxListItem = 128

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
	// Defaults: the last 7 days; with only StartTime, the 7 days after it. A second-precision
	// EndTime covers its whole second, as in ListLiveSnapshotFiles; the width is checked as
	// written.
	now := s.now()
	start, end := now.Add(-7*24*time.Hour), now
	last := end
	if p.has("StartTime") {
		var ok bool
		if start, ok = snapshot.ParseTime(p.v.Get("StartTime")); !ok {
			return nil, errMalformedStart
		}
		end = start.Add(7 * 24 * time.Hour)
		last = end
	}
	if p.has("EndTime") {
		var ok bool
		if end, last, ok = snapshot.ParseEndTime(p.v.Get("EndTime")); !ok {
			return nil, errMalformedEnd
		}
		if !p.has("StartTime") {
			start = end.Add(-7 * 24 * time.Hour)
		}
	}
	if end.Before(start) || end.Sub(start) > maxJobWindow {
		return nil, errEndTimeMismatch
	}
	list, total, err := s.Store.ListJobs(ctx, store.JobQuery{AccountID: account(call), Keyword: kw, Status: status, Start: start, End: last, Page: pg})
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
