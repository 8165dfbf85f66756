package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/auth"
	"github.com/livesnap/livesnap/internal/snapshot"
	"github.com/livesnap/livesnap/internal/store"
)

func testBuckets(t *testing.T, s store.Store) {
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	b, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	claim := func(account int64, k store.BucketKey) int64 {
		t.Helper()
		owner, err := s.ClaimBucket(ctx, account, k)
		must(t, err)
		return owner
	}
	shared := store.BucketKey{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Bucket: "shared"}
	if _, err := s.BucketOwner(ctx, shared); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("owner of a new bucket: %v", err)
	}
	if owner := claim(a.ID, shared); owner != a.ID {
		t.Fatalf("the first claim gave %d, want %d", owner, a.ID)
	}
	for _, k := range []store.BucketKey{shared, {StorageType: "oss", Endpoint: "OSS-CN-Shanghai.Aliyuncs.COM", Bucket: "shared"}} {
		if owner := claim(b.ID, k); owner != a.ID {
			t.Fatalf("another account's claim of %+v gave %d, want the owner %d", k, owner, a.ID)
		}
		if owner, err := s.BucketOwner(ctx, k); err != nil || owner != a.ID {
			t.Fatalf("owner of %+v: %d %v", k, owner, err)
		}
	}
	if owner := claim(a.ID, shared); owner != a.ID {
		t.Fatalf("the owner's claim again gave %d", owner)
	}
	// Another bucket name, endpoint or storage type is another bucket.
	for _, k := range []store.BucketKey{
		{StorageType: "oss", Endpoint: "oss-cn-shanghai.aliyuncs.com", Bucket: "other"},
		{StorageType: "oss", Endpoint: "oss-cn-beijing.aliyuncs.com", Bucket: "shared"},
		{StorageType: "s3", Endpoint: "oss-cn-shanghai.aliyuncs.com", Bucket: "shared"},
		{StorageType: "oss", Endpoint: "*", Bucket: "shared"},
	} {
		if owner := claim(b.ID, k); owner != b.ID {
			t.Fatalf("%+v: owner %d, want %d", k, owner, b.ID)
		}
	}

	// JobOutputs: each account's use of each output once, by its oldest job, oldest first.
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, j := range []struct {
		account int64
		bucket  string
		at      time.Duration
	}{{b.ID, "first", 2 * time.Second}, {a.ID, "first", 3 * time.Second}, {b.ID, "first", time.Second}, {a.ID, "second", 0}} {
		job := snapshot.Job{AccountID: j.account, ID: fmt.Sprintf("out-%d", i), Name: "j", TemplateID: "t", TemplateName: "t", TimeInterval: 5,
			SequenceFormat: "{Sequence}.jpg", Status: snapshot.StatusInit, Input: snapshot.StreamInput{Type: "rtmp", URL: "rtmp://h/a/b"},
			Output:     snapshot.SnapshotOutput{StorageType: "oss", Endpoint: "e.example", Bucket: j.bucket},
			CreateTime: base.Add(j.at), LastModified: base}
		must(t, s.CreateJob(ctx, job))
	}
	outs, err := s.JobOutputs(ctx)
	must(t, err)
	var got []string
	for _, o := range outs {
		got = append(got, fmt.Sprintf("%d %s/%s/%s %s", o.AccountID, o.Output.StorageType, o.Output.Endpoint, o.Output.Bucket, o.First.Format(time.TimeOnly)))
	}
	want := []string{
		fmt.Sprintf("%d oss/e.example/second 00:00:00", a.ID),
		fmt.Sprintf("%d oss/e.example/first 00:00:01", b.ID),
		fmt.Sprintf("%d oss/e.example/first 00:00:03", a.ID),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("job outputs:\n%v\nwant\n%v", got, want)
	}
}

// testBucketRace: two accounts claim the same buckets at once, from several handles: every
// claimer of a bucket is told the same owner, one of the two.
func testBucketRace(t *testing.T, handles []store.Store) {
	s := handles[0]
	a, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	b, _ := s.CreateAccount(ctx, auth.Account{ServiceEnabled: true})
	const buckets, claimsPerAccount = 10, 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	owners := map[string]map[int64]bool{} // bucket → owners reported
	winners := map[string]map[int64]bool{}
	for i := 0; i < buckets; i++ {
		name := fmt.Sprintf("race-%d", i)
		owners[name], winners[name] = map[int64]bool{}, map[int64]bool{}
	}
	for i := 0; i < buckets; i++ {
		name := fmt.Sprintf("race-%d", i)
		for n := 0; n < claimsPerAccount; n++ {
			for _, acct := range []int64{a.ID, b.ID} {
				wg.Add(1)
				go func(h store.Store) {
					defer wg.Done()
					owner, err := h.ClaimBucket(ctx, acct, store.BucketKey{StorageType: "oss", Endpoint: "*", Bucket: name})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					owners[name][owner] = true
					if owner == acct {
						winners[name][acct] = true
					}
				}(handles[(i+n)%len(handles)])
			}
		}
	}
	wg.Wait()
	for name, seen := range owners {
		if len(seen) != 1 || len(winners[name]) != 1 {
			t.Errorf("%s: claimers were told owners %v; accounts that won: %v", name, seen, winners[name])
		}
		for owner := range seen {
			if got, err := s.BucketOwner(ctx, store.BucketKey{StorageType: "oss", Endpoint: "*", Bucket: name}); err != nil || got != owner {
				t.Errorf("%s: stored owner %d (%v), claimers were told %d", name, got, err, owner)
			}
		}
	}
}
