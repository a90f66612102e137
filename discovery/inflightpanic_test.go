package discovery_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
)

// TestInFlightReleasedWhenNextPanics: a transport under the RoundTripper
// that panics (recovered by the caller, as net/http's server recovers a
// handler) leaves no request counted in flight; least_request used to
// steer away from that endpoint for good.
func TestInFlightReleasedWhenNextPanics(t *testing.T) {
	s := newService(t, discovery.Static("127.0.0.1:9"), discovery.Config{Balancer: discovery.LeastRequest})
	rt := s.RoundTripper(roundTripperFunc(func(*http.Request) (*http.Response, error) { panic("boom") }))
	req, err := http.NewRequest(http.MethodGet, "http://users/", nil)
	require.NoError(t, err)
	func() {
		defer func() { require.Equal(t, "boom", recover()) }()
		_, _ = rt.RoundTrip(req)
	}()
	assert.Zero(t, s.Endpoints()[0].InFlight)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
