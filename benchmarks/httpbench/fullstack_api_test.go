package httpbench_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/ratelimit"
)

// outboundFull builds the full stack the way users are told to:
// ambassador.NewTransport with retry, ratelimit and breaker sections and a
// static discovery source, over e.base.
func outboundFull(tb testing.TB, e env) http.RoundTripper {
	rc := retryConfig()
	rt, err := ambassador.NewTransport(ambassador.ServiceConfig{
		Name:      serviceName,
		Discovery: discovery.Config{Static: e.addrs},
		Retry:     &rc,
		RateLimit: &ratelimit.Config{RPS: 1e9},
		Breaker:   &breaker.Config{},
	}, ambassador.WithBase(e.base))
	fatalIf(tb, err)
	if c, ok := rt.(io.Closer); ok {
		tb.Cleanup(func() { _ = c.Close() })
	}
	return rt
}
