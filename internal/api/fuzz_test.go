package api

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/rpc"
	"github.com/livesnap/livesnap/internal/store/sqlite"
)

// FuzzParams feeds arbitrary parameters to every action: no panic, and every refusal is a
// well-formed ICE error (never a 500).
func FuzzParams(f *testing.F) {
	f.Add("SubmitLiveSnapshotJob", "StreamInput", `{"Type":"rtmp","Url":"rtmp://h/a/b"}`, "SnapshotOutput", `{"StorageType":"oss"}`)
	f.Add("ListLiveSnapshotFiles", "StartTime", "2024-01-01T00:00:00Z", "EndTime", "2024-01-01T00:00:00.999Z")
	f.Add("DeleteLiveSnapshotFiles", "CreateTimestampList", "[1,2,3]", "JobId", "x")
	f.Add("ListLiveSnapshotTemplates", "TemplateIds.1", "a", "PageSize", "100")
	f.Add("CreateLiveSnapshotTemplate", "SequenceFormat", "{Sequence}{JobId}.jpg", "TimeInterval", "5")
	db, err := sqlite.Open(filepath.Join(f.TempDir(), "s.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	acct, _ := db.CreateAccount(context.Background(), auth.Account{ServiceEnabled: true})
	svc := &Service{Store: db, MinInterval: 5, StorageTypes: []string{"oss"}, StreamTypes: []string{"rtmp"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	p := Principal{Account: acct, Key: auth.AccessKey{ID: "k", Policy: auth.FullAccess}}
	actions := svc.Actions()
	f.Fuzz(func(t *testing.T, action, k1, v1, k2, v2 string) {
		h, ok := actions[action]
		if !ok {
			return
		}
		params := url.Values{}
		params.Set(k1, v1)
		params.Set(k2, v2)
		params.Set("TemplateName", "t")
		_, err := h(context.Background(), &rpc.Call{Action: action, Params: params, Principal: p})
		if err == nil {
			return
		}
		e, ok := err.(*rpc.Error)
		if !ok || e.Status >= 500 || e.Code == "" || e.Message == "" {
			t.Fatalf("%s %v: not a client error: %v", action, params, err)
		}
	})
}
