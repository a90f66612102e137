//go:build !ambassador_api

package httpbench_test

import (
	"net/http"
	"testing"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// outboundFull composes the full stack by hand with ambassador.Chain:
// retry → ratelimit → discovery (with the breaker as its Health) → breaker.
// Build with -tags ambassador_api to measure ambassador.NewTransport instead.
func outboundFull(tb testing.TB, e env) http.RoundTripper {
	p, err := retry.New(retryConfig())
	fatalIf(tb, err)
	l, err := ratelimit.New(ratelimit.Config{RPS: 1e9})
	fatalIf(tb, err)
	br, err := breaker.New(breaker.Config{})
	fatalIf(tb, err)
	s, err := discovery.NewService(serviceName, discovery.Static(e.addrs...), discovery.Config{}, discovery.WithHealth(br))
	fatalIf(tb, err)
	tb.Cleanup(func() {
		_ = s.Close()
		_ = br.Close()
		_ = l.Close()
	})
	return ambassador.Chain(e.base, p.RoundTripper, l.RoundTripper, s.RoundTripper, br.RoundTripper)
}
