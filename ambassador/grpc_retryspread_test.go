package ambassador_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/retry"
)

// gRPC retries over two failing endpoints alternate between them, with
// every balancer, as HTTP's do (TestStackingRetriesAlternateOverTwoEndpoints):
// once both were tried, the next attempt goes to the one tried longest ago.
func TestDialOptionsRetriesAlternateOverTwoEndpoints(t *testing.T) {
	needsRealDiscovery(t)
	for _, balancer := range []string{discovery.RoundRobin, discovery.LeastRequest, discovery.EWMA} {
		t.Run(balancer, func(t *testing.T) {
			aAddr, a := startHealth(t, codes.Unavailable)
			bAddr, b := startHealth(t, codes.Unavailable)
			c := dialUsers(t, ambassador.ServiceConfig{
				Name:      "users",
				Discovery: discovery.Config{Static: []string{aAddr, bAddr}, Balancer: balancer},
				Retry: &retry.Config{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond,
					Budget: retry.BudgetConfig{Disabled: true}},
				Breaker: &breaker.Config{ConsecutiveFailures: 1000},
			})
			// Until both connections are ready, grpc's picker holds only
			// one: a call made then has nothing else to alternate with.
			for n := 0; a.Calls.Load() == 0 || b.Calls.Load() == 0; n++ {
				require.Less(t, n, 100, "both endpoints never took a call")
				_, _ = c.Check(t.Context(), &healthpb.HealthCheckRequest{})
			}
			for i := range 20 {
				beforeA, beforeB := a.Calls.Load(), b.Calls.Load()
				_, err := c.Check(t.Context(), &healthpb.HealthCheckRequest{})
				require.Equal(t, codes.Unavailable, status.Code(err), "call %d: %v", i, err)
				require.EqualValues(t, 2, a.Calls.Load()-beforeA, "call %d: attempts on %s", i, aAddr)
				require.EqualValues(t, 2, b.Calls.Load()-beforeB, "call %d: attempts on %s", i, bAddr)
			}
		})
	}
}

// A gRPC endpoint that takes calls and never answers is ejected by the
// service timeout on unary calls, as over HTTP
// (TestStackingServiceTimeoutCountsAgainstTheEndpoint): the timeout is the
// stack's own, so a call it cuts is that endpoint's DEADLINE_EXCEEDED.
func TestDialOptionsServiceTimeoutCountsAgainstTheEndpoint(t *testing.T) {
	needsRealDiscovery(t)
	const failures = 2
	goodAddr, good := startHealth(t, codes.OK)
	hungAddr, hung := startHealth(t, codes.OK)
	hung.Set(codes.OK, make(chan struct{})) // held until the caller gives up
	c := dialUsers(t, ambassador.ServiceConfig{
		Name:      "users",
		Timeout:   200 * time.Millisecond,
		Discovery: discovery.Config{Static: []string{goodAddr, hungAddr}},
		Breaker:   &breaker.Config{ConsecutiveFailures: failures, OpenTimeout: time.Hour},
	})
	timeouts := 0
	for n := 0; good.Calls.Load() == 0 || hung.Calls.Load() == 0 || timeouts < failures; n++ {
		require.Less(t, n, 100, "the hung endpoint never got %d calls", failures)
		_, err := c.Check(t.Context(), &healthpb.HealthCheckRequest{})
		if status.Code(err) == codes.DeadlineExceeded {
			timeouts++
		}
	}
	for i := range 10 {
		_, err := c.Check(t.Context(), &healthpb.HealthCheckRequest{})
		require.NoError(t, err, "call %d after the ejection", i)
	}
	assert.EqualValues(t, failures, hung.Calls.Load(), "the hung endpoint got consecutive_failures calls, then none")
}
