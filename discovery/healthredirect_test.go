package discovery_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/outbound-go/outbound/discovery"
)

// TestHealthCheckRedirectPasses: a 3xx answer to the health check passes,
// as the package doc says, even when its Location leads somewhere that
// would fail (an HTTPS redirect, a login page, a dead host). The check
// used to follow the redirect and judge the endpoint by where it led.
func TestHealthCheckRedirectPasses(t *testing.T) {
	dead := deadAddr(t)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+dead+"/login", http.StatusFound)
	})
	clk := newStepClock()
	s := newService(t, discovery.Static(up.addr()), discovery.Config{
		HealthCheck: discovery.HealthCheckConfig{Path: "/healthz", Interval: time.Hour},
	}, discovery.WithClock(clk))
	clk.sleeping(t) // the first round is done
	assert.Equal(t, int64(1), up.hits.Load())
	assert.True(t, s.Endpoints()[0].Ready, "a 302 is a passing check")
}
