package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// dnsSource is the Source DNS returns.
type dnsSource struct {
	host    string
	port    uint16
	res     dnsResolver
	refresh time.Duration
}

// DNS returns a Source of the A and AAAA records of hostport's host, each
// with hostport's port and weight 1, re-resolved every refresh (0 means
// 30s). resolver is the DNS server to ask as host:port (say 10.0.0.2:53 or a
// test server on 127.0.0.1); "" means the system resolver.
//
// With a resolver, the host is asked for as a fully qualified name (no
// search domains), with one A and one AAAA query over UDP, repeated over
// TCP when the answer is truncated; CNAME chains in the answer are
// followed. Both queries must succeed for a lookup to count (an empty
// answer or NXDOMAIN is a success), so a lost AAAA answer never drops the
// IPv6 half of a set. Unspecified addresses (0.0.0.0, ::) are ignored.
//
// A lookup that fails or finds no address keeps the last set: Watch reports
// update(nil, err) and never turns a transient failure into an empty set.
// update is called with a set (sorted by address) only when it differs from
// the last one. Until the first lookup succeeds, Watch retries every
// min(refresh, 1s) rather than every refresh. When the host is an IP
// literal, Watch reports that one endpoint and asks nobody.
//
// DNS fails when hostport is not host:port with a port in 1-65535, when
// resolver is neither "" nor host:port, or when refresh is negative.
func DNS(hostport, resolver string, refresh time.Duration) (Source, error) {
	host, port, err := parseEndpointAddr(hostport)
	if err != nil {
		return nil, fmt.Errorf("discovery: dns: %w", err)
	}
	if err := checkResolver(resolver); err != nil {
		return nil, fmt.Errorf("discovery: dns: %w", err)
	}
	if refresh, err = checkRefresh(refresh); err != nil {
		return nil, fmt.Errorf("discovery: dns: %w", err)
	}
	return &dnsSource{host: host, port: port, res: dnsResolver{server: resolver}, refresh: refresh}, nil
}

// Watch implements Source.
func (s *dnsSource) Watch(ctx context.Context, update func([]Endpoint, error)) {
	if ip, err := netip.ParseAddr(s.host); err == nil {
		if ctx.Err() == nil {
			update([]Endpoint{{Address: netip.AddrPortFrom(ip.Unmap(), s.port).String(), Weight: 1}}, nil)
		}
		<-ctx.Done()
		return
	}
	poll(ctx, s.refresh, s.lookup, update)
}

func (s *dnsSource) lookup(ctx context.Context) ([]Endpoint, error) {
	addrs, err := s.res.lookupAddrs(ctx, s.host)
	if err != nil {
		return nil, err
	}
	return addrEndpoints(addrs, s.port), nil
}

// addrEndpoints makes one weight-1 endpoint per address, sorted and deduped.
func addrEndpoints(addrs []netip.Addr, port uint16) []Endpoint {
	eps := make([]Endpoint, len(addrs))
	for i, a := range addrs {
		eps[i] = Endpoint{Address: netip.AddrPortFrom(a, port).String(), Weight: 1}
	}
	return sortEndpoints(eps)
}

// String describes the source for logs and errors.
func (s *dnsSource) String() string {
	return "dns " + net.JoinHostPort(s.host, strconv.Itoa(int(s.port)))
}
