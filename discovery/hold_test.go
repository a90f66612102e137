package discovery_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
)

func inFlight(s *discovery.Service) map[string]int {
	out := map[string]int{}
	for _, ep := range s.Endpoints() {
		out[ep.Address] = ep.InFlight
	}
	return out
}

// TestPickHoldCountsInFlightUntilRelease: a hold is one request in flight
// from PickHold to Release (once, however often Release is called), so
// least_request sends the next pick to the other endpoint; Observe records
// a failed connect in the endpoint's failures and last error.
func TestPickHoldCountsInFlightUntilRelease(t *testing.T) {
	s, err := discovery.NewService("db", discovery.Static("127.0.0.1:1", "127.0.0.1:2"), discovery.Config{Balancer: discovery.LeastRequest})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()

	h1, err := s.PickHold(ctx)
	require.NoError(t, err)
	h2, err := s.PickHold(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, h1.Address(), h2.Address(), "least_request counts the first hold")
	assert.Equal(t, map[string]int{"127.0.0.1:1": 1, "127.0.0.1:2": 1}, inFlight(s))

	h1.Observe(errors.New("connection refused"))
	h1.Release()
	h1.Release()
	assert.Equal(t, 0, inFlight(s)[h1.Address()])
	assert.Equal(t, 1, inFlight(s)[h2.Address()])
	for _, ep := range s.Endpoints() {
		if ep.Address == h1.Address() {
			assert.Equal(t, int64(1), ep.Failures)
			assert.Equal(t, "connection refused", ep.LastError)
		}
	}
	h2.Observe(context.Canceled) // the caller's: not recorded
	h2.Release()
	for _, ep := range s.Endpoints() {
		if ep.Address == h2.Address() {
			assert.Zero(t, ep.Requests)
		}
	}
}

// TestPickHoldNoEndpoints: an empty set is a *NoEndpointsError.
func TestPickHoldNoEndpoints(t *testing.T) {
	s, err := discovery.NewService("db", discovery.Static(), discovery.Config{})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.PickHold(context.Background())
	assert.ErrorIs(t, err, discovery.ErrNoEndpoints)
}
