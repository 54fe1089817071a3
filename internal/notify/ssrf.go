package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress means a webhook would reach an address it must not.
var ErrForbiddenAddress = errors.New("address not allowed for webhooks")

// metadataAddrs are cloud metadata services: never reachable, whatever the configuration.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack, Scaleway…
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IPv6
}

var metadataHosts = []string{"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"}

// AddressPolicy decides which addresses webhooks may reach.
type AddressPolicy struct {
	// AllowPrivate lets webhooks reach loopback, private (RFC 1918, ULA) and link-local
	// addresses: for the sandbox and tests, whose receivers run on 127.0.0.1.
	AllowPrivate bool
}

// CheckAddr says whether a resolved address may be reached.
func (p AddressPolicy) CheckAddr(a netip.Addr) error {
	a = a.Unmap()
	for _, m := range metadataAddrs {
		if a == m {
			return fmt.Errorf("%w: %s is a cloud metadata address", ErrForbiddenAddress, a)
		}
	}
	switch {
	case !a.IsValid():
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	case a.IsUnspecified(), a.IsMulticast(), a.IsInterfaceLocalMulticast(), a.IsLinkLocalMulticast():
		return fmt.Errorf("%w: %s is not a unicast address", ErrForbiddenAddress, a)
	case p.AllowPrivate:
		return nil
	case a.IsLoopback():
		return fmt.Errorf("%w: %s is a loopback address", ErrForbiddenAddress, a)
	case a.IsLinkLocalUnicast():
		return fmt.Errorf("%w: %s is a link-local address", ErrForbiddenAddress, a)
	case a.IsPrivate():
		return fmt.Errorf("%w: %s is a private address", ErrForbiddenAddress, a)
	case sharedAddressSpace.Contains(a):
		return fmt.Errorf("%w: %s is in the carrier-grade NAT range", ErrForbiddenAddress, a)
	}
	return nil
}

var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// ValidateWebhookURL checks a webhook URL as a member typed it: http(s), a host, no user
// information, and — when the host is an address literal or a metadata name — an address
// the policy allows. Names are checked again at every connection (see Dialer).
func (p AddressPolicy) ValidateWebhookURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return nil, &FieldError{Field: "target", Problem: "must be an http:// or https:// URL"}
	}
	if u.User != nil {
		return nil, &FieldError{Field: "target", Problem: "must not carry a user name or password (put secrets in the path or rely on the signature)"}
	}
	if u.Fragment != "" {
		return nil, &FieldError{Field: "target", Problem: "must not have a #fragment"}
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	for _, m := range metadataHosts {
		if host == m {
			return nil, &FieldError{Field: "target", Problem: "must not name a cloud metadata service"}
		}
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		if err := p.CheckAddr(netip.MustParseAddr("127.0.0.1")); err != nil {
			return nil, &FieldError{Field: "target", Problem: err.Error()}
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := p.CheckAddr(a); err != nil {
			return nil, &FieldError{Field: "target", Problem: err.Error()}
		}
	}
	return u, nil
}

// Dialer returns a dialer that refuses, at connection time, every address the policy
// forbids: the check runs on the address actually connected to, after DNS resolution,
// so a name that resolves (or re-resolves) to a forbidden address is refused.
func (p AddressPolicy) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			return p.CheckAddr(ap.Addr())
		}}
}

// DialContext is the guarded dial function for an http.Transport.
func (p AddressPolicy) DialContext(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := p.Dialer(timeout)
	return d.DialContext
}

// RedactURL shows a webhook URL without what may be a secret: scheme, host and the
// first path segment.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	out := u.Scheme + "://" + u.Host
	path := strings.TrimPrefix(u.EscapedPath(), "/")
	if path == "" {
		return out + "/"
	}
	first, rest, _ := strings.Cut(path, "/")
	if len(first) > 24 {
		first = first[:4] + "…"
	}
	out += "/" + first
	if rest != "" || u.RawQuery != "" {
		out += "/…"
	}
	return out
}
