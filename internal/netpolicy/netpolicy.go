// Package netpolicy decides which network addresses livesnap may connect to on a user's
// behalf (stream URLs, callback URLs), checked on the resolved address at connect time so DNS
// tricks and redirects cannot reach what the operator did not allow.
package netpolicy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// DefaultDeny is refused unless the operator says otherwise: link-local (cloud metadata
// services live there: 169.254.169.254, fd00:ec2::254), Alibaba Cloud's metadata address,
// "this network", multicast and broadcast.
var DefaultDeny = []string{"169.254.0.0/16", "fe80::/10", "100.100.100.200/32", "fd00:ec2::254/128",
	"0.0.0.0/8", "::/128", "224.0.0.0/4", "ff00::/8", "255.255.255.255/32"}

// Policy allows an address when it is in no Deny prefix and, if Allow is not empty, in an
// Allow prefix.
type Policy struct {
	Allow []netip.Prefix
	Deny  []netip.Prefix
}

// Default returns the policy with DefaultDeny and no allow list.
func Default() *Policy {
	p, _ := Parse("", strings.Join(DefaultDeny, ","))
	return p
}

// Parse builds a policy from comma-separated CIDR lists (single addresses are accepted too).
func Parse(allow, deny string) (*Policy, error) {
	p := &Policy{}
	var err error
	if p.Allow, err = parseList(allow); err != nil {
		return nil, fmt.Errorf("allow list: %w", err)
	}
	if p.Deny, err = parseList(deny); err != nil {
		return nil, fmt.Errorf("deny list: %w", err)
	}
	return p, nil
}

func parseList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, err
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// ErrRefused is wrapped by every refusal of the policy.
var ErrRefused = errors.New("refused by the network policy")

// nat64 is the well-known NAT64 prefix (RFC 6052): its addresses reach the IPv4 address in
// their last 32 bits, so they are checked as that address too.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Check reports why ip may not be contacted, or nil. A zone ("fe80::1%eth0") does not change
// the address; an unspecified address (0.0.0.0, ::) reaches the local host and is always
// refused; a NAT64 address must pass as its IPv4 address as well.
func (p *Policy) Check(ip netip.Addr) error {
	ip = ip.WithZone("").Unmap()
	if ip.IsUnspecified() {
		return fmt.Errorf("address %s (this host) is %w", ip, ErrRefused)
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		if err := p.check(netip.AddrFrom4([4]byte(b[12:]))); err != nil {
			return fmt.Errorf("%s: %w", ip, err)
		}
	}
	return p.check(ip)
}

func (p *Policy) check(ip netip.Addr) error {
	for _, d := range p.Deny {
		if d.Contains(ip) {
			return fmt.Errorf("address %s is %w (%s)", ip, ErrRefused, d)
		}
	}
	if len(p.Allow) == 0 {
		return nil
	}
	for _, a := range p.Allow {
		if a.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("address %s is %w: not in its allow list", ip, ErrRefused)
}

// Dialer returns a net.Dialer whose connections are checked against the policy after name
// resolution, just before connecting.
func (p *Policy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, Control: func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("network policy: unexpected address %q", address)
		}
		return p.Check(ip)
	}}
}

// DialContext is Dialer(timeout).DialContext.
func (p *Policy) DialContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return p.Dialer(timeout).DialContext
}
