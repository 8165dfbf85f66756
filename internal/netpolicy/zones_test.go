package netpolicy

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// An IPv6 literal with a zone ("fe80::1%eth0", written "[fe80::1%25eth0]" in a URL) is the
// same address as without it, but netip.Prefix.Contains is false for any zoned address, so
// every IPv6 deny prefix is bypassed.
func TestZonedAddressesAreRefused(t *testing.T) {
	p := Default()
	for _, s := range []string{"fe80::1%eth0", "fe80::1%1", "fd00:ec2::254%eth0"} {
		if err := p.Check(netip.MustParseAddr(s)); err == nil {
			t.Errorf("Default().Check(%s) = nil; the address without its zone is refused", s)
		}
	}
}

// The dialer checks the address it connects to, so a zoned link-local literal reaches a
// link-local listener although fe80::/10 is denied by default.
func TestDialToZonedLinkLocalIsRefused(t *testing.T) {
	addr, zone := linkLocalAddress(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(addr+"%"+zone, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s%%%s: %v", addr, zone, err)
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
	target := net.JoinHostPort(addr+"%"+zone, port)
	c, err := Default().DialContext(2*time.Second)(context.Background(), "tcp", target)
	if err == nil {
		c.Close()
		t.Fatalf("Default() policy connected to %s although fe80::/10 is denied", target)
	}
}

// "::" is IPv6's 0.0.0.0: connecting to it reaches the local host. DefaultDeny has
// 0.0.0.0/8 but not ::/128, and an operator who denies loopback (127.0.0.0/8, ::1) is
// still reachable through [::].
func TestUnspecifiedAddressesAreRefused(t *testing.T) {
	if Default().Check(netip.MustParseAddr("::")) == nil {
		t.Errorf("Default() allows ::, but refuses 0.0.0.0")
	}
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
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
	noLoopback, err := Parse("", "127.0.0.0/8,::1/128")
	if err != nil {
		t.Fatal(err)
	}
	c, err := noLoopback.DialContext(2*time.Second)(context.Background(), "tcp", net.JoinHostPort("::", port))
	if err == nil {
		c.Close()
		t.Fatalf("a policy denying loopback connected to a loopback listener through [::]:%s", port)
	}
}

// linkLocalAddress returns an fe80:: address of an up interface and the interface's name.
func linkLocalAddress(t *testing.T) (string, string) {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if ok && ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast() {
				return ipn.IP.String(), ifc.Name
			}
		}
	}
	t.Skip("no interface with an IPv6 link-local address")
	return "", ""
}

// A NAT64 address reaches the IPv4 address in its last 32 bits: it is judged as that one too.
func TestNAT64AddressesAreJudgedAsTheirIPv4(t *testing.T) {
	p := Default()
	if err := p.Check(netip.MustParseAddr("64:ff9b::a9fe:a9fe")); err == nil { // 169.254.169.254
		t.Error("the NAT64 form of 169.254.169.254 is allowed")
	}
	if err := p.Check(netip.MustParseAddr("64:ff9b::808:808")); err != nil { // 8.8.8.8
		t.Errorf("the NAT64 form of a public address is refused: %v", err)
	}
}
