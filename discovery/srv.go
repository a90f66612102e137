package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// srvSource is the Source SRV returns.
type srvSource struct {
	name    string
	res     dnsResolver
	refresh time.Duration
}

// SRV returns a Source of the SRV records of name (such as
// _http._tcp.users.internal), re-resolved every refresh (0 means 30s).
// resolver is the DNS server to ask as host:port; "" means the system
// resolver.
//
// # Which records
//
// Only the lowest priority in use counts: the records with the smallest
// priority value whose targets resolve to at least one address. When none
// of them does, the next priority is used, as RFC 2782 asks of a client
// that cannot reach the preferred servers. Records with the target "."
// (service decidedly not available) or port 0 are ignored.
//
// # Addresses
//
// Every target is resolved to IP addresses, so each Endpoint.Address is a
// dialable ip:port and a breaker keys by the address actually dialed. The
// addresses come from the A and AAAA records of the answer's additional
// section when the server sent them (Consul and CoreDNS do), and otherwise
// from A and AAAA queries for the target to the same resolver — a name that
// only that server knows still resolves. A target whose lookup fails (no
// answer, SERVFAIL, REFUSED) keeps the addresses it had in the previous
// round; a target the server says has none (NXDOMAIN, or neither A nor AAAA
// records) is left out, so a priority group whose targets all lost their
// addresses falls through to the next, as one that never had any does.
//
// # Weights
//
// Each endpoint carries its record's weight, with 0 mapped to 1: the
// smallest share a balancer gives, which against weights like 10 or 100 is
// the "very small chance" RFC 2782 grants weight 0, and which makes an
// all-zero group uniform. A target with several addresses shares its weight
// among them: every weight in the group is multiplied by the least common
// multiple L of the address counts (capped at 720) and each of a target's n
// addresses gets weight·L/n, so a dual-stack target is not worth twice an
// IPv4-only one. With one address per target the weights are unchanged.
// Metadata holds "srv_target" (the target without its trailing dot) and
// "priority".
//
// Lookup failures, refresh and updates behave as for DNS: a failed or empty
// round keeps the last set and is reported as update(nil, err), and a set is
// reported only when it changed.
//
// SRV fails when name is not a DNS name, when resolver is neither "" nor
// host:port, or when refresh is negative.
func SRV(name, resolver string, refresh time.Duration) (Source, error) {
	if !isHostname(name) {
		return nil, fmt.Errorf("discovery: srv: %q is not a DNS name such as _http._tcp.users.internal", name)
	}
	if err := checkResolver(resolver); err != nil {
		return nil, fmt.Errorf("discovery: srv: %w", err)
	}
	refresh, err := checkRefresh(refresh)
	if err != nil {
		return nil, fmt.Errorf("discovery: srv: %w", err)
	}
	return &srvSource{name: name, res: dnsResolver{server: resolver}, refresh: refresh}, nil
}

// Watch implements Source.
func (s *srvSource) Watch(ctx context.Context, update func([]Endpoint, error)) {
	prev := make(map[string][]netip.Addr) // target → addresses of the last round
	poll(ctx, s.refresh, func(ctx context.Context) ([]Endpoint, error) {
		return s.lookup(ctx, prev)
	}, update)
}

// lookup resolves one round; prev carries target addresses across rounds.
func (s *srvSource) lookup(ctx context.Context, prev map[string][]netip.Addr) ([]Endpoint, error) {
	recs, extra, err := s.res.lookupSRV(ctx, s.name)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("discovery: lookup SRV %s: no usable records: %w", s.name, errNoAddresses)
	}
	resolved := make(map[string][]netip.Addr)
	var errs []error
	addrsOf := func(target string) []netip.Addr {
		if a, ok := resolved[target]; ok {
			return a
		}
		a := slices.Clone(extra[target])
		if len(a) > 0 {
			slices.SortFunc(a, netip.Addr.Compare)
			a = slices.Compact(a)
		} else {
			var err error
			if a, err = s.res.lookupAddrs(ctx, target); err != nil {
				errs = append(errs, err)
				if !errors.Is(err, errNoAddresses) {
					a = prev[target] // a failure, not the server's answer
				}
			}
		}
		resolved[target] = a
		return a
	}
	eps := srvEndpoints(recs, addrsOf)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	clear(prev)
	for t, a := range resolved {
		if len(a) > 0 {
			prev[t] = a
		}
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("discovery: lookup SRV %s: no target resolved: %w", s.name, errors.Join(append(errs, errNoAddresses)...))
	}
	return eps, nil
}

// String describes the source for logs and errors.
func (s *srvSource) String() string { return "srv " + s.name }
