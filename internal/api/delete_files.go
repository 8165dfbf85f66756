package api

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/store"
)

// maxDeleteTimestamps bounds CreateTimestampList.
const maxDeleteTimestamps = 200

// deleteObjectsBudget bounds the time one call spends removing objects; what is left then is
// answered DeleteFileFailed.
const deleteObjectsBudget = 30 * time.Second

var (
	errOverlayNotSupported = rpc.NewError(400, "OverlayNotSupported", "Not Sopport to remove overlay snapshot, please remove overlay snapshot from OSS console.")
	errNoValidSnapshot     = rpc.NewError(404, "NoValidSnapshot", "No snapshots found with given parameters.")
)

type deleteResult struct {
	CreateTimestamp int64
	Result          string
}

type deleteResponse struct {
	DeleteFileResultList []deleteResult
}

func (s *Service) deleteFiles(ctx context.Context, call *rpc.Call) (any, error) {
	p := params{call.Params}
	jobID, err := p.required("JobId", 128)
	if err != nil {
		return nil, err
	}
	stamps, err := timestampList(p)
	if err != nil {
		return nil, err
	}
	deleteObjects := false
	if v := p.v.Get("DeleteOriginalFile"); v != "" {
		if deleteObjects, err = strconv.ParseBool(v); err != nil {
			return nil, rpc.InvalidParameter("DeleteOriginalFile must be true or false")
		}
	}
	acct := account(call)
	job, err := s.Store.GetJob(ctx, acct, jobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errJobNotFound
	}
	if err != nil {
		return nil, err
	}
	// Removing objects needs the output to be configured still and its bucket to be the
	// caller's; refuse before any record goes.
	if deleteObjects {
		if err := s.ownsBucket(ctx, acct, job.Output); err != nil {
			return nil, err
		}
	}
	at := make([]time.Time, len(stamps))
	for i, ts := range stamps {
		at[i] = time.UnixMilli(ts).UTC()
	}
	deleted, overlay, err := s.Store.DeleteFiles(ctx, acct, jobID, at)
	if err != nil {
		return nil, err
	}
	if len(deleted) == 0 {
		if overlay {
			return nil, errOverlayNotSupported
		}
		return nil, errNoValidSnapshot
	}
	result := make(map[int64]string, len(stamps))
	// One budget for all object removals, so a slow store cannot hold the request for long.
	objCtx, cancel := context.WithTimeout(ctx, deleteObjectsBudget)
	defer cancel()
	for _, f := range deleted {
		ts := f.CreateTime.UnixMilli()
		if result[ts] == "" {
			result[ts] = "OK"
		}
		if deleteObjects && s.Blobs != nil {
			if err := s.Blobs.Delete(objCtx, job.Output, f.Object); err != nil {
				// The record is gone; say that this object could not be removed.
				s.logger().Error("delete snapshot object", "job", jobID, "object", f.Object, "err", err)
				result[ts] = "DeleteFileFailed"
			}
		}
	}
	out := deleteResponse{DeleteFileResultList: []deleteResult{}}
	for _, ts := range stamps {
		r := result[ts]
		if r == "" {
			r = "NotFound"
		}
		out.DeleteFileResultList = append(out.DeleteFileResultList, deleteResult{CreateTimestamp: ts, Result: r})
	}
	return out, nil
}

// timestampList reads CreateTimestampList: a JSON array of millisecond timestamps (what the
// SDKs send), or the flat CreateTimestampList.N form. Duplicates are dropped.
func timestampList(p params) ([]int64, error) {
	var raw []int64
	if v := strings.TrimSpace(p.v.Get("CreateTimestampList")); v != "" {
		if hasItems(p, "CreateTimestampList") {
			return nil, rpc.InvalidParameter("CreateTimestampList is given both as a JSON array and as CreateTimestampList.N items")
		}
		if len(v) > 8192 {
			return nil, rpc.InvalidParameter("CreateTimestampList is too long")
		}
		if err := json.Unmarshal([]byte(v), &raw); err != nil {
			return nil, rpc.InvalidParameter("CreateTimestampList must be a JSON array of millisecond timestamps")
		}
	} else {
		flat, err := repeatList(p, "CreateTimestampList", maxDeleteTimestamps)
		if err != nil {
			return nil, err
		}
		for _, s := range flat {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, rpc.InvalidParameter("CreateTimestampList items must be millisecond timestamps")
			}
			raw = append(raw, n)
		}
	}
	if len(raw) == 0 {
		return nil, rpc.MissingParameter("CreateTimestampList")
	}
	if len(raw) > maxDeleteTimestamps {
		return nil, rpc.InvalidParameter("CreateTimestampList holds more than %d items", maxDeleteTimestamps)
	}
	seen := make(map[int64]bool, len(raw))
	var out []int64
	for _, ts := range raw {
		if ts <= 0 {
			return nil, rpc.InvalidParameter("CreateTimestampList items must be positive millisecond timestamps")
		}
		if !seen[ts] {
			seen[ts] = true
			out = append(out, ts)
		}
	}
	return out, nil
}
