package auth

import "testing"

func TestAllows(t *testing.T) {
	cases := []struct {
		policy []string
		action string
		want   bool
	}{
		{FullAccess, "SubmitLiveSnapshotJob", true},
		{[]string{"ice:GetLiveSnapshotJob"}, "GetLiveSnapshotJob", true},
		{[]string{"ice:GetLiveSnapshotJob"}, "GetLiveSnapshotJobs", false},
		{[]string{"ice:ListLiveSnapshot*"}, "ListLiveSnapshotFiles", true},
		{[]string{"ice:ListLiveSnapshot*"}, "GetLiveSnapshotJob", false},
		{[]string{"ice:Get*", "ice:List*"}, "ListLiveSnapshotJobs", true},
		{[]string{"ice:*Template"}, "DeleteLiveSnapshotTemplate", true},
		{[]string{"ice:*Template"}, "ListLiveSnapshotTemplates", false},
		{[]string{"mts:*"}, "GetLiveSnapshotJob", false},
		{nil, "GetLiveSnapshotJob", false},
	}
	for _, c := range cases {
		if got := Allows(c.policy, c.action); got != c.want {
			t.Errorf("Allows(%v, %s) = %v", c.policy, c.action, got)
		}
	}
}

func TestNewKeyPairIsRandom(t *testing.T) {
	a, s1 := NewKeyPair()
	b, s2 := NewKeyPair()
	if a == b || s1 == s2 || len(a) != 24 || len(s1) != 30 {
		t.Fatalf("bad keys: %s %s %s %s", a, b, s1, s2)
	}
}
