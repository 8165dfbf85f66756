package api

import (
	"context"
	"errors"

	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

const maxNameLength = 128

// maxInterval is the largest TimeInterval (spec 4.1).
const maxInterval = 3600

// minInterval is the smallest TimeInterval accepted: ICE's 5 s unless the operator lowered it.
func (s *Service) minInterval() int {
	if s.MinInterval <= 0 {
		return 5
	}
	return s.MinInterval
}

// validateTemplate applies spec 4.1 to a template's values.
func (s *Service) validateTemplate(t snapshot.Template) error {
	if t.TimeInterval < s.minInterval() || t.TimeInterval > maxInterval {
		return rpc.InvalidParameter("TimeInterval must be an integer from %d to %d", s.minInterval(), maxInterval)
	}
	if err := snapshot.ValidateFormats(t.OverwriteFormat, t.SequenceFormat); err != nil {
		var fe *snapshot.FieldError
		if errors.As(err, &fe) {
			return rpc.InvalidParameter("%s %s", fe.Field, fe.Reason)
		}
		return err
	}
	return nil
}

func (s *Service) createTemplate(ctx context.Context, call *rpc.Call) (any, error) {
	p := params{call.Params}
	name, err := p.required("TemplateName", maxNameLength)
	if err != nil {
		return nil, err
	}
	if !p.has("TimeInterval") {
		return nil, rpc.MissingParameter("TimeInterval")
	}
	interval, err := p.intGiven("TimeInterval", s.minInterval(), maxInterval)
	if err != nil {
		return nil, err
	}
	overwrite, err := p.str("OverwriteFormat", snapshot.MaxFormatLength*4)
	if err != nil {
		return nil, err
	}
	sequence, err := p.str("SequenceFormat", snapshot.MaxFormatLength*4)
	if err != nil {
		return nil, err
	}
	img, err := imageSettings(p, snapshot.ImageSettings{Policy: snapshot.PolicyKeyframe})
	if err != nil {
		return nil, err
	}
	now := s.now()
	t := snapshot.Template{AccountID: account(call), ID: newID(), Name: name, Type: snapshot.TypeCustom,
		TimeInterval: interval, OverwriteFormat: overwrite, SequenceFormat: sequence, Image: img, CreateTime: now, LastModified: now}
	if err := s.validateTemplate(t); err != nil {
		return nil, err
	}
	if err := s.Store.CreateTemplate(ctx, t); err != nil {
		return nil, err
	}
	return struct{ TemplateId string }{t.ID}, nil
}

// templateResponse is GetLiveSnapshotTemplate's body.
type templateResponse struct {
	TemplateId      string
	TemplateName    string
	Type            string
	OverwriteFormat string
	SequenceFormat  string
	TimeInterval    int
	CreateTime      string
	LastModified    string
	// Extensions (official clients ignore them).
	CapturePolicy string
	Width         int
	Height        int
	Quality       int
}

// maxImageSide bounds Width and Height (8K).
const maxImageSide = 7680

// imageSettings reads the extension parameters CapturePolicy, Width, Height and Quality over
// the current values cur.
func imageSettings(p params, cur snapshot.ImageSettings) (snapshot.ImageSettings, error) {
	var err error
	if cur.Policy, err = p.oneOf("CapturePolicy", cur.Policy, snapshot.PolicyKeyframe, snapshot.PolicyExact); err != nil {
		return cur, err
	}
	if cur.Width, err = p.intIn("Width", 0, maxImageSide, cur.Width); err != nil {
		return cur, err
	}
	if cur.Height, err = p.intIn("Height", 0, maxImageSide, cur.Height); err != nil {
		return cur, err
	}
	if cur.Quality, err = p.intIn("Quality", 0, 100, cur.Quality); err != nil {
		return cur, err
	}
	return cur, nil
}

func (s *Service) getTemplate(ctx context.Context, call *rpc.Call) (any, error) {
	id, err := params{call.Params}.required("TemplateId", 128)
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
	return templateResponse{TemplateId: t.ID, TemplateName: t.Name, Type: t.Type, OverwriteFormat: t.OverwriteFormat,
		SequenceFormat: t.SequenceFormat, TimeInterval: t.TimeInterval,
		CreateTime: snapshot.FormatTime(t.CreateTime), LastModified: snapshot.FormatTime(t.LastModified),
		CapturePolicy: t.Image.Policy, Width: t.Image.Width, Height: t.Image.Height, Quality: t.Image.Quality}, nil
}
