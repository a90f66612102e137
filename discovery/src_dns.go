package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNS plumbing shared by the dns and srv sources: queries to an explicit
// server with github.com/miekg/dns, or the system resolver, and the
// conversion of answers to addresses and SRV records.

// ednsSize is the UDP payload size we advertise: the DNS flag day 2020
// value, small enough to avoid IP fragmentation.
const ednsSize = 1232

// maxCNAMEChain bounds how many CNAME hops an answer is followed through.
const maxCNAMEChain = 8

// checkResolver validates a resolver address: "" (the system resolver) or
// host:port.
func checkResolver(resolver string) error {
	if resolver == "" {
		return nil
	}
	if _, _, err := parseEndpointAddr(resolver); err != nil {
		return fmt.Errorf("resolver: %w (want the DNS server as host:port, e.g. 10.0.0.2:53)", err)
	}
	return nil
}

// checkRefresh returns refresh, or defaultRefresh for 0.
func checkRefresh(refresh time.Duration) (time.Duration, error) {
	switch {
	case refresh < 0:
		return 0, fmt.Errorf("refresh: must be ≥ 0, got %s", refresh)
	case refresh == 0:
		return defaultRefresh, nil
	}
	return refresh, nil
}

// dnsResolver asks server (host:port) or, when server is "", the system
// resolver.
type dnsResolver struct {
	server string
}

// exchange sends one question to r.server over UDP, and again over TCP when
// the UDP answer is truncated. NOERROR and NXDOMAIN answers are returned;
// any other rcode is an error.
func (r dnsResolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.SetEdns0(ednsSize, false)
	in, err := r.exchangeOver(ctx, "udp", q)
	if err == nil && in.Truncated {
		in, err = r.exchangeOver(ctx, "tcp", q)
	}
	if err != nil {
		return nil, fmt.Errorf("discovery: %s %s at %s: %w", dns.TypeToString[qtype], name, r.server, err)
	}
	if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("discovery: %s %s at %s: server answered %s", dns.TypeToString[qtype], name, r.server, rcodeName(in.Rcode))
	}
	return in, nil
}

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "rcode " + strconv.Itoa(rcode)
}

// exchangeOver sends q over network ("udp" or "tcp"). miekg/dns honours only
// a context's deadline, so the connection is closed when ctx is cancelled:
// a Watch whose context ends does not wait for a slow server.
func (r dnsResolver) exchangeOver(ctx context.Context, network string, q *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: lookupTimeout}
	conn, err := c.DialContext(ctx, r.server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	in, _, err := c.ExchangeWithConnContext(ctx, q, conn)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return in, err
}

// lookupAddrs returns the sorted IP addresses of host: its A and AAAA
// records. With an explicit server both queries must succeed (an empty
// answer is a success), so a lost AAAA answer cannot shrink a dual-stack
// set for one refresh period. Finding no address at all is an error that
// wraps errNoAddresses when it is the server's answer (NXDOMAIN, or no
// records), not a failure to get one.
func (r dnsResolver) lookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	var addrs []netip.Addr
	if r.server == "" {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, fmt.Errorf("discovery: lookup %s: %w (%w)", host, errNoAddresses, err)
		}
		if err != nil {
			return nil, fmt.Errorf("discovery: lookup %s: %w", host, err)
		}
		for _, ip := range ips {
			if ip = ip.Unmap(); ip.IsValid() && !ip.IsUnspecified() {
				addrs = append(addrs, ip)
			}
		}
	} else {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			in, err := r.exchange(ctx, host, qtype)
			if err != nil {
				return nil, err
			}
			addrs = append(addrs, answerAddrs(in, host)...)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("discovery: lookup %s: %w", host, errNoAddresses)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs), nil
}

// srvRecord is one usable SRV record.
type srvRecord struct {
	target   string // canonical: lower case, with the trailing dot
	port     uint16
	priority uint16
	weight   uint16
}

// lookupSRV returns the usable SRV records of name and the addresses the
// answer's additional section gives for their targets (nil with the system
// resolver, which does not expose it).
func (r dnsResolver) lookupSRV(ctx context.Context, name string) ([]srvRecord, map[string][]netip.Addr, error) {
	if r.server == "" {
		_, recs, err := net.DefaultResolver.LookupSRV(ctx, "", "", name)
		if err != nil {
			return nil, nil, fmt.Errorf("discovery: lookup SRV %s: %w", name, err)
		}
		var out []srvRecord
		for _, rec := range recs {
			if s, ok := usableSRV(rec.Target, rec.Port, rec.Priority, rec.Weight); ok {
				out = append(out, s)
			}
		}
		return out, nil, nil
	}
	in, err := r.exchange(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, nil, err
	}
	return answerSRV(in, name), extraAddrs(in), nil
}

// answerNames returns the owner names an answer to a question for qname may
// carry records under: qname and the names its CNAME chain in the answer
// section leads to (canonical form).
func answerNames(msg *dns.Msg, qname string) []string {
	names := []string{dns.CanonicalName(qname)}
	for range maxCNAMEChain {
		grown := false
		for _, rr := range msg.Answer {
			c, ok := rr.(*dns.CNAME)
			if !ok || !slices.Contains(names, dns.CanonicalName(c.Hdr.Name)) {
				continue
			}
			if t := dns.CanonicalName(c.Target); !slices.Contains(names, t) {
				names = append(names, t)
				grown = true
			}
		}
		if !grown {
			break
		}
	}
	return names
}

// rrAddr returns the address of an A or AAAA record; ok is false for other
// records and for unusable addresses (malformed or unspecified).
func rrAddr(rr dns.RR) (netip.Addr, bool) {
	var ip net.IP
	switch rr := rr.(type) {
	case *dns.A:
		ip = rr.A
	case *dns.AAAA:
		ip = rr.AAAA
	default:
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	return a, !a.IsUnspecified()
}

// answerAddrs returns the A and AAAA addresses in msg's answer section that
// belong to qname (directly or through CNAMEs), unsorted.
func answerAddrs(msg *dns.Msg, qname string) []netip.Addr {
	names := answerNames(msg, qname)
	var addrs []netip.Addr
	for _, rr := range msg.Answer {
		if a, ok := rrAddr(rr); ok && slices.Contains(names, dns.CanonicalName(rr.Header().Name)) {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// answerSRV returns the usable SRV records in msg's answer section that
// belong to qname (directly or through CNAMEs).
func answerSRV(msg *dns.Msg, qname string) []srvRecord {
	names := answerNames(msg, qname)
	var out []srvRecord
	for _, rr := range msg.Answer {
		s, ok := rr.(*dns.SRV)
		if !ok || !slices.Contains(names, dns.CanonicalName(s.Hdr.Name)) {
			continue
		}
		if rec, ok := usableSRV(s.Target, s.Port, s.Priority, s.Weight); ok {
			out = append(out, rec)
		}
	}
	return out
}

// usableSRV drops records that cannot become an endpoint: the target "."
// ("service decidedly not available here", RFC 2782), a target that is not
// a plain DNS name, and port 0.
func usableSRV(target string, port, priority, weight uint16) (srvRecord, bool) {
	t := dns.CanonicalName(target)
	if t == "." || port == 0 || !isHostname(t) {
		return srvRecord{}, false
	}
	return srvRecord{target: t, port: port, priority: priority, weight: weight}, true
}

// extraAddrs returns the A and AAAA addresses of msg's additional section by
// canonical owner name.
func extraAddrs(msg *dns.Msg) map[string][]netip.Addr {
	var m map[string][]netip.Addr
	for _, rr := range msg.Extra {
		a, ok := rrAddr(rr)
		if !ok {
			continue
		}
		if m == nil {
			m = make(map[string][]netip.Addr)
		}
		name := dns.CanonicalName(rr.Header().Name)
		m[name] = append(m[name], a)
	}
	return m
}

// maxWeightScale caps the common multiple srvEndpoints scales weights by.
const maxWeightScale = 720

// srvEndpoints turns SRV records into endpoints. It takes the lowest
// priority whose targets yield at least one address (addrsOf returns a
// target's addresses, or none when it cannot be resolved), so a priority
// group that resolves to nothing falls through to the next, as RFC 2782
// asks of clients that cannot reach the preferred group.
//
// Weights: weight 0 becomes 1, the smallest share a balancer knows (RFC 2782
// gives weight 0 "a very small chance" when other weights are present:
// against weights like 10 or 100 that is what 1 is). A target's weight is
// its total share: when targets have different numbers of addresses (say
// one dual-stack with A and AAAA, one IPv4 only), every weight is scaled by
// the least common multiple L of those counts and split evenly, so each of
// a target's n addresses carries weight·L/n. With one address per target,
// the common case, weights are the SRV weights unchanged.
func srvEndpoints(recs []srvRecord, addrsOf func(target string) []netip.Addr) []Endpoint {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b srvRecord) int { return cmp.Compare(a.priority, b.priority) })
	for len(recs) > 0 {
		p := recs[0].priority
		n := 1
		for n < len(recs) && recs[n].priority == p {
			n++
		}
		if eps := srvGroup(recs[:n], addrsOf); len(eps) > 0 {
			return eps
		}
		recs = recs[n:]
	}
	return nil
}

// srvGroup converts the records of one priority.
func srvGroup(recs []srvRecord, addrsOf func(string) []netip.Addr) []Endpoint {
	addrs := make([][]netip.Addr, len(recs))
	scale := 1
	for i, rec := range recs {
		a := addrsOf(rec.target)
		addrs[i] = a
		if len(a) > 0 && scale < maxWeightScale {
			scale = min(lcm(scale, len(a)), maxWeightScale)
		}
	}
	var eps []Endpoint
	for i, rec := range recs {
		if len(addrs[i]) == 0 {
			continue
		}
		w := max(int(rec.weight), 1) * scale / len(addrs[i])
		md := map[string]string{
			"srv_target": strings.TrimSuffix(rec.target, "."),
			"priority":   strconv.Itoa(int(rec.priority)),
		}
		for _, a := range addrs[i] {
			eps = append(eps, Endpoint{
				Address:  netip.AddrPortFrom(a, rec.port).String(),
				Weight:   max(w, 1),
				Metadata: md,
			})
		}
	}
	return sortEndpoints(eps)
}

func lcm(a, b int) int {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}
