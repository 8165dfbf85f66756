package netpolicy

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestDefaultPolicy(t *testing.T) {
	p := Default()
	for _, bad := range []string{"169.254.169.254", "100.100.100.200", "fe80::1", "fd00:ec2::254", "0.0.0.0", "::ffff:169.254.169.254"} {
		if p.Check(netip.MustParseAddr(bad)) == nil {
			t.Errorf("%s allowed by default", bad)
		}
	}
	for _, ok := range []string{"127.0.0.1", "10.1.2.3", "8.8.8.8", "::1"} {
		if err := p.Check(netip.MustParseAddr(ok)); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

func TestAllowList(t *testing.T) {
	p, err := Parse("127.0.0.0/8, 192.0.2.10", "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{"127.0.0.1": true, "192.0.2.10": true, "192.0.2.11": false, "127.0.0.2": false, "8.8.8.8": false}
	for addr, want := range cases {
		if got := p.Check(netip.MustParseAddr(addr)) == nil; got != want {
			t.Errorf("%s allowed=%v, want %v", addr, got, want)
		}
	}
	if _, err := Parse("not-a-cidr", ""); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}

// The check runs on the resolved address at connect time: a name that resolves to a refused
// address is refused too.
func TestDialerChecksResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	deny, _ := Parse("", "127.0.0.0/8")
	_, err = deny.DialContext(2*time.Second)(context.Background(), "tcp", "localhost:"+port)
	if err == nil || !strings.Contains(err.Error(), "network policy") {
		t.Fatalf("dial to a refused address via a name: %v", err)
	}
	c, err := Default().DialContext(2*time.Second)(context.Background(), "tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	c.Close()
}
