package discovery_test

import (
	"fmt"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
)

// TestRoundRobinFairWhenMostAreEjected: with four of six equal endpoints
// ejected (a run of unready schedule slots longer than the picks probe),
// round_robin still shares the traffic evenly between the two ready ones.
// The fall-back scan used to start at the last probed slot and take the
// next ready endpoint in set order, so the one after the ejected run got
// two picks in three.
func TestRoundRobinFairWhenMostAreEjected(t *testing.T) {
	addrs := []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80", "10.0.0.6:80"}
	ready := map[string]bool{"10.0.0.5:80": true, "10.0.0.6:80": true}
	s := newService(t, discovery.Static(addrs...), discovery.Config{},
		discovery.WithHealth(discovery.HealthFunc(func(ep string) bool { return ready[ep] })))
	const picks = 600
	got := pickCounts(t, s, picks)
	for ep := range ready {
		assert.InDelta(t, picks/2, got[ep], picks/10, "picks of %s (all: %v)", ep, got)
	}
}

// TestLeastRequestFairWhenMostAreEjected: with eight of ten equal, idle
// endpoints ejected, least_request shares the traffic evenly between the
// two ready ones. When every sampled pair was unready, the fall-back scan
// broke ties by set order, so the first ready endpoint got about 62%.
func TestLeastRequestFairWhenMostAreEjected(t *testing.T) {
	for _, balancer := range []string{discovery.LeastRequest, discovery.EWMA} {
		t.Run(balancer, func(t *testing.T) {
			var addrs []string
			for i := range 10 {
				addrs = append(addrs, fmt.Sprintf("10.0.0.%d:80", i+1))
			}
			ready := map[string]bool{"10.0.0.9:80": true, "10.0.0.10:80": true}
			s := newService(t, discovery.Static(addrs...), discovery.Config{Balancer: balancer},
				discovery.WithHealth(discovery.HealthFunc(func(ep string) bool { return ready[ep] })))
			const picks = 2000
			got := pickCounts(t, s, picks)
			for ep := range ready {
				assert.InDelta(t, picks/2, got[ep], picks/20, "picks of %s (all: %v)", ep, got)
			}
		})
	}
}

// pickCounts picks n times from s and counts the picks of each endpoint.
func pickCounts(t *testing.T, s *discovery.Service, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		ep, err := s.Pick(t.Context())
		require.NoError(t, err)
		got[ep]++
	}
	return got
}
