package discovery_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/inbound/inboundtest"
)

// TestCallerBodyErrorsAreNotEndpointLatency: requests whose body fails
// mid-read (the caller's failure) are not recorded against the endpoint —
// its EWMA stays unset and nothing stays in flight — over HTTP/1.1 and
// h2c, while an upstream failure is still recorded as slow.
func TestCallerBodyErrorsAreNotEndpointLatency(t *testing.T) {
	for _, up := range inboundtest.Upstreams(t) {
		t.Run(up.Proto, func(t *testing.T) {
			s := newService(t, discovery.Static(up.Host), discovery.Config{Balancer: discovery.EWMA})
			rt := s.RoundTripper(up.Transport)
			inboundtest.SendBroken(t, rt, "http://users/upload", 5)
			eps := s.Endpoints()
			require.Len(t, eps, 1)
			assert.Zero(t, eps[0].EWMA, "no latency or failure recorded for the caller's broken bodies")
			assert.Zero(t, eps[0].InFlight)
			assert.True(t, eps[0].Ready)

			up.Status.Store(http.StatusBadGateway)
			assert.Equal(t, http.StatusBadGateway, get(t, &http.Client{Transport: rt}, "http://users/"))
			assert.Positive(t, s.Endpoints()[0].EWMA, "an upstream failure is still recorded")
		})
	}
}
