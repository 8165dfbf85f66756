package ratelimit

import (
	"testing"
	"time"
)

func TestTokenBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Rate: 2, Burst: 3, Now: func() time.Time { return now }}
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	ok, wait := l.Allow("k")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: %v %v", ok, wait)
	}
	if ok, _ := l.Allow("other"); !ok {
		t.Fatal("keys must not share a bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("one token refills in 1/Rate seconds")
	}
	if ok, _ := l.Allow("k"); ok {
		t.Fatal("only one token refilled")
	}
}

func TestBoundedKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{Rate: 1, Burst: 1, MaxKeys: 10, Now: func() time.Time { return now }}
	for i := 0; i < 100; i++ {
		l.Allow(string(rune('a' + i)))
	}
	if len(l.buckets) > 10 {
		t.Fatalf("%d buckets for a bound of 10", len(l.buckets))
	}
	now = now.Add(time.Hour)
	if ok, _ := l.Allow("new"); !ok || len(l.buckets) > 10 {
		t.Fatal("idle buckets must make room")
	}
}

func TestDisabled(t *testing.T) {
	var l *Limiter
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("a nil limiter allows everything")
	}
}
