package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-go/outbound/internal/clock"
)

// Shared by the dns, srv and file sources.

const (
	// defaultRefresh is how often the dns and srv sources re-resolve when
	// their refresh is 0.
	defaultRefresh = 30 * time.Second
	// lookupTimeout bounds one lookup round (every query it sends).
	lookupTimeout = 5 * time.Second
	// firstRetryMax caps the wait before retrying while a source has never
	// had a good set, so a service that starts during a DNS hiccup is not
	// left empty for a whole refresh period.
	firstRetryMax = time.Second
	// maxWeight bounds an endpoint weight so a balancer can sum the weights
	// of many endpoints without overflow.
	maxWeight = math.MaxInt32
)

// errNoAddresses is wrapped by a lookup that succeeded but found nothing.
var errNoAddresses = errors.New("no addresses")

// sortEndpoints sorts eps by address and merges endpoints with the same
// address (canonicalAddress: two spellings of one endpoint are one),
// summing their weights (capped at maxWeight) and keeping the metadata of
// the first. It reuses eps' backing array.
func sortEndpoints(eps []Endpoint) []Endpoint {
	for i := range eps {
		eps[i].Address = canonicalAddress(eps[i].Address)
	}
	slices.SortStableFunc(eps, func(a, b Endpoint) int { return cmp.Compare(a.Address, b.Address) })
	out := eps[:0]
	for _, ep := range eps {
		if n := len(out); n > 0 && out[n-1].Address == ep.Address {
			out[n-1].Weight = addWeight(out[n-1].Weight, ep.Weight)
			continue
		}
		out = append(out, ep)
	}
	clear(eps[len(out):])
	return out
}

func addWeight(a, b int) int {
	if a > maxWeight-b {
		return maxWeight
	}
	return a + b
}

// sameEndpoints reports whether two sorted sets are equal.
func sameEndpoints(a, b []Endpoint) bool {
	return slices.EqualFunc(a, b, func(x, y Endpoint) bool {
		return x.Address == y.Address && x.Weight == y.Weight && maps.Equal(x.Metadata, y.Metadata)
	})
}

// parseEndpointAddr validates s as host:port with a non-empty host (an IP
// literal or a DNS name) and a numeric port in 1-65535. It returns the host
// and port, or an error that quotes s.
func parseEndpointAddr(s string) (host string, port uint16, err error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return "", 0, fmt.Errorf("%q is not host:port: %s", s, ae.Err)
		}
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	if h == "" {
		return "", 0, fmt.Errorf("%q is not host:port: empty host", s)
	}
	if _, err := netip.ParseAddr(h); err != nil && !isHostname(h) {
		return "", 0, fmt.Errorf("%q is not host:port: host %q is neither an IP address nor a DNS name", s, h)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("%q is not host:port: port must be a number in 1-65535, got %q", s, p)
	}
	return h, uint16(n), nil
}

// isHostname reports whether h looks like a DNS name: dot-separated labels
// of letters, digits, '-' and '_', each 1-63 bytes, 253 bytes in all, with
// an optional trailing dot.
func isHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
			case c == '-' && i > 0 && i < len(label)-1:
			default:
				return false
			}
		}
	}
	return true
}

// poll runs lookup now and then every refresh until ctx is done, reporting
// changed sets and every failure to update. A lookup that fails keeps the
// last set: only update(nil, err) is called. While no lookup has succeeded
// yet, it retries after min(refresh, firstRetryMax). It waits on the clock
// in ctx (the Service's), the wall clock if none.
func poll(ctx context.Context, refresh time.Duration, lookup func(context.Context) ([]Endpoint, error), update func([]Endpoint, error)) {
	clk := clock.FromContext(ctx) // the Service's clock (WithClock)
	var last []Endpoint
	have := false
	var wait time.Duration
	for {
		if clk.Sleep(ctx, wait) != nil {
			return
		}
		lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		eps, err := lookup(lctx)
		cancel()
		if ctx.Err() != nil {
			return // the failure, if any, is our own shutdown
		}
		switch {
		case err != nil:
			update(nil, err)
		case len(eps) == 0:
			update(nil, fmt.Errorf("discovery: lookup found %w", errNoAddresses))
		case !have || !sameEndpoints(last, eps):
			last, have = eps, true
			update(slices.Clone(eps), nil)
		}
		wait = refresh
		if !have {
			wait = min(wait, firstRetryMax)
		}
	}
}
