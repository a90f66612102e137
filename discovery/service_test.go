package discovery_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/refusal"
)

var balancers = []string{discovery.RoundRobin, discovery.LeastRequest, discovery.EWMA}

func TestBalancersSpreadAcrossEndpoints(t *testing.T) {
	for _, b := range balancers {
		t.Run(b, func(t *testing.T) {
			a, c := newUpstream(t, nil), newUpstream(t, nil)
			s := newService(t, discovery.Static(a.addr(), c.addr()), discovery.Config{Balancer: b})
			hc := client(t, s)
			for i := 0; i < 40; i++ {
				assert.Equal(t, 200, get(t, hc, "http://users/x"))
			}
			assert.Positive(t, a.hits.Load())
			assert.Positive(t, c.hits.Load())
			assert.EqualValues(t, 40, a.hits.Load()+c.hits.Load())
		})
	}
}

func TestRoundRobinWeightedAndSmooth(t *testing.T) {
	src := newSetSource()
	s := newService(t, src, discovery.Config{})
	src.send(t, []discovery.Endpoint{
		{Address: "10.0.0.1:80", Weight: 3}, {Address: "10.0.0.2:80", Weight: 1}, {Address: "10.0.0.3:80"},
	}, nil)
	counts := map[string]int{}
	run, maxRun, last := 0, 0, ""
	for i := 0; i < 500; i++ {
		ep, err := s.Pick(context.Background())
		require.NoError(t, err)
		counts[ep]++
		if ep == last {
			run++
		} else {
			run, last = 1, ep
		}
		maxRun = max(maxRun, run)
	}
	// 500 = 100 cycles of 3+1+1: exact shares.
	assert.Equal(t, map[string]int{"10.0.0.1:80": 300, "10.0.0.2:80": 100, "10.0.0.3:80": 100}, counts)
	assert.LessOrEqual(t, maxRun, 2, "weight 3 of 5 must be interleaved, not sent as a burst")
}

func TestRemovedEndpointStopsReceivingTraffic(t *testing.T) {
	for _, b := range balancers {
		t.Run(b, func(t *testing.T) {
			a, c := newUpstream(t, nil), newUpstream(t, nil)
			src := newSetSource()
			s := newService(t, src, discovery.Config{Balancer: b})
			src.Set(t, a.addr(), c.addr())
			hc := client(t, s)
			for i := 0; i < 20; i++ {
				get(t, hc, "http://users/")
			}
			require.Positive(t, c.hits.Load())

			src.Set(t, a.addr())
			before := c.hits.Load()
			for i := 0; i < 50; i++ {
				assert.Equal(t, 200, get(t, hc, "http://users/"))
			}
			assert.Equal(t, before, c.hits.Load(), "removed endpoint got traffic")
			assert.Len(t, s.Endpoints(), 1)
		})
	}
}

func TestDeadEndpointLeavesOnceHealthReportsIt(t *testing.T) {
	for _, b := range balancers {
		t.Run(b, func(t *testing.T) {
			live := newUpstream(t, nil)
			dead := deadAddr(t)
			base := &http.Transport{}
			t.Cleanup(base.CloseIdleConnections)
			counter := newCountingRT(base, 3) // "breaker": unready after 3 failures in a row
			s := newService(t, discovery.Static(live.addr(), dead), discovery.Config{Balancer: b},
				discovery.WithHealth(counter))
			hc := &http.Client{Transport: retryRT{next: s.RoundTripper(counter), max: 2}}
			for i := 0; i < 100; i++ {
				assert.Equal(t, 200, get(t, hc, "http://users/"), "request %d", i)
			}
			assert.LessOrEqual(t, counter.Attempts(dead), 3, "dead endpoint kept receiving attempts")
			assert.EqualValues(t, 100, live.hits.Load())
			if counter.Attempts(dead) == 3 { // ewma may stop sending before the count trips
				for _, st := range s.Endpoints() {
					assert.Equal(t, st.Address != dead, st.Ready, st.Address)
				}
			}
		})
	}
}

func TestEWMAPrefersFastEndpoint(t *testing.T) {
	// 50ms against 1ms (issue 4 names ~20ms): on a loaded machine the fast
	// upstream's peaks reach several ms, and the slow one is probed again
	// once its decaying cost falls below the fast one's; with 20ms it got
	// up to 43 of 500 under three parallel runs, with 50ms it keeps a wide
	// margin below the 20% bound.
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		latency(r.Context(), 50*time.Millisecond) // simulated slow upstream
	})
	fast := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		latency(r.Context(), time.Millisecond)
	})
	slowShare, _ := ewmaShares(t, slow, fast)
	assert.Less(t, slowShare, 0.2)
}

// ewmaShares sends 500 requests through an EWMA service over a and b and
// returns the share of them that reached each.
func ewmaShares(t *testing.T, a, b *upstream) (float64, float64) {
	t.Helper()
	s := newService(t, discovery.Static(a.addr(), b.addr()), discovery.Config{Balancer: discovery.EWMA})
	hc := client(t, s)
	const n = 500
	for i := 0; i < n; i++ {
		get(t, hc, "http://users/")
	}
	t.Logf("%d to the first, %d to the second", a.hits.Load(), b.hits.Load())
	return float64(a.hits.Load()) / n, float64(b.hits.Load()) / n
}

func TestEWMACountsFastFailuresAsSlow(t *testing.T) {
	healthy := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		latency(r.Context(), 5*time.Millisecond)
	})
	failing := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	_, failingShare := ewmaShares(t, healthy, failing)
	assert.Less(t, failingShare, 0.2)
}

func TestAvoidsEndpointsAlreadyTried(t *testing.T) {
	for _, b := range balancers {
		t.Run(b, func(t *testing.T) {
			s := newService(t, discovery.Static("10.0.0.1:80", "10.0.0.2:80"), discovery.Config{Balancer: b})
			for i := 0; i < 50; i++ {
				rec := attempt.NewRecord()
				first, err := s.Pick(withAttempt(rec))
				require.NoError(t, err)
				second, err := s.Pick(withAttempt(rec))
				require.NoError(t, err)
				require.NotEqual(t, first, second, "second attempt went back to %s", first)
				// Both tried: the third attempt goes back to the one tried
				// longest ago, not to the one that just failed, and so on.
				third, err := s.Pick(withAttempt(rec))
				require.NoError(t, err)
				require.Equal(t, first, third, "third attempt went back to %s, tried last", second)
				fourth, err := s.Pick(withAttempt(rec))
				require.NoError(t, err)
				require.Equal(t, second, fourth, "fourth attempt went back to %s, tried last", third)
				assert.Equal(t, 4, rec.TriedCount())
			}
		})
	}
}

func TestSecondAttemptOverHTTPGoesToTheOther(t *testing.T) {
	a := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) })
	c := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) })
	s := newService(t, discovery.Static(a.addr(), c.addr()), discovery.Config{})
	hc := client(t, s)
	rec := attempt.NewRecord()
	for i := 0; i < 2; i++ {
		req, err := http.NewRequestWithContext(withAttempt(rec), "GET", "http://users/", nil)
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	assert.EqualValues(t, 1, a.hits.Load())
	assert.EqualValues(t, 1, c.hits.Load())
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestNoEndpoints(t *testing.T) {
	check := func(t *testing.T, s *discovery.Service) {
		t.Helper()
		body := &closeRecorder{Reader: strings.NewReader("x")}
		req, err := http.NewRequest("POST", "http://users/", body)
		require.NoError(t, err)
		_, err = s.RoundTripper(http.DefaultTransport).RoundTrip(req)
		require.Error(t, err)
		assert.ErrorIs(t, err, discovery.ErrNoEndpoints)
		assert.True(t, refusal.Is(err), "no endpoints is a local refusal")
		var ne *discovery.NoEndpointsError
		require.ErrorAs(t, err, &ne)
		assert.Equal(t, "users", ne.Service)
		assert.True(t, body.closed.Load(), "request body not closed")
		_, err = s.Pick(context.Background())
		assert.ErrorIs(t, err, discovery.ErrNoEndpoints)
	}
	t.Run("empty set", func(t *testing.T) {
		src := newSetSource()
		s := newService(t, src, discovery.Config{})
		src.Set(t)
		check(t, s)
	})
	for _, b := range balancers {
		t.Run("all unready/"+b, func(t *testing.T) {
			s := newService(t, discovery.Static("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"),
				discovery.Config{Balancer: b}, discovery.WithHealth(discovery.HealthFunc(func(string) bool { return false })))
			check(t, s)
		})
	}
	t.Run("source failed before any set", func(t *testing.T) {
		src := newSetSource()
		s := newService(t, src, discovery.Config{})
		src.send(t, nil, errors.New("lookup failed"))
		check(t, s)
	})
}

func TestSkipsUnreadyEndpoints(t *testing.T) {
	for _, b := range balancers {
		t.Run(b, func(t *testing.T) {
			up := map[string]bool{"10.0.0.1:80": true, "10.0.0.3:80": true}
			s := newService(t, discovery.Static("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"),
				discovery.Config{Balancer: b}, discovery.WithHealth(discovery.HealthFunc(func(ep string) bool { return up[ep] })))
			seen := map[string]int{}
			for i := 0; i < 200; i++ {
				ep, err := s.Pick(context.Background())
				require.NoError(t, err)
				seen[ep]++
			}
			assert.Len(t, seen, 2)
			assert.Positive(t, seen["10.0.0.1:80"])
			assert.Positive(t, seen["10.0.0.3:80"])
		})
	}
}

func TestSourceErrorKeepsLastSet(t *testing.T) {
	src := newSetSource()
	s := newService(t, src, discovery.Config{})
	src.Set(t, "10.0.0.1:80")
	src.send(t, nil, errors.New("dns outage"))
	ep, err := s.Pick(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.1:80", ep)
}

func TestPickWaitsForFirstSet(t *testing.T) {
	src := newSetSource()
	s := newService(t, src, discovery.Config{})
	got := make(chan string)
	go func() {
		ep, _ := s.Pick(context.Background())
		got <- ep
	}()
	src.Set(t, "10.0.0.9:80")
	assert.Equal(t, "10.0.0.9:80", <-got)

	// A pick that gives up waiting reports its context's error.
	src2 := newSetSource()
	s2 := newService(t, src2, discovery.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s2.Pick(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestOtherHostsPassThrough(t *testing.T) {
	other := newUpstream(t, nil)
	s := newService(t, discovery.Static(deadAddr(t)), discovery.Config{})
	hc := client(t, s)
	assert.Equal(t, 200, get(t, hc, other.URL+"/x"))
	assert.EqualValues(t, 1, other.hits.Load())
}

// recordHost is a RoundTripper that records the host it was asked for and
// answers 204 without dialing.
type recordHost struct{ host atomic.Value }

func (r *recordHost) RoundTrip(req *http.Request) (*http.Response, error) {
	r.host.Store(req.URL.Host)
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

// The logical host matches in any case and with the scheme's default port;
// another port is another destination.
func TestLogicalHostWithDefaultPort(t *testing.T) {
	var gotHost atomic.Value
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { gotHost.Store(r.Host) })
	s := newService(t, discovery.Static(up.addr()), discovery.Config{})
	for _, u := range []string{"http://users/x", "http://USERS/x", "http://users:80/x", "http://Users:80/x"} {
		req, err := http.NewRequest("GET", u, nil)
		require.NoError(t, err)
		resp, err := client(t, s).Do(req)
		require.NoError(t, err, u)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, u)
		assert.Equal(t, up.addr(), gotHost.Load(), "%s: the Host header is the endpoint's", u)
	}
	assert.EqualValues(t, 4, up.hits.Load())

	for _, tt := range []struct{ url, next string }{
		{"http://users:8080/x", "users:8080"},
		{"https://users:80/x", "users:80"},
		{"http://users:443/x", "users:443"},
		{"https://users:443/x", up.addr()},
	} {
		rec := &recordHost{}
		req, err := http.NewRequest("GET", tt.url, nil)
		require.NoError(t, err)
		resp, err := s.RoundTripper(rec).RoundTrip(req)
		require.NoError(t, err, tt.url)
		resp.Body.Close()
		assert.Equal(t, tt.next, rec.host.Load(), tt.url)
	}
}

func TestRewriteAndHostHeader(t *testing.T) {
	var gotHost, gotPath atomic.Value
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		gotHost.Store(r.Host)
		gotPath.Store(r.URL.RequestURI())
	})
	tests := []struct {
		name    string
		opts    []discovery.Option
		reqHost string
		want    string
	}{
		{"default: the endpoint", nil, "", up.addr()},
		{"caller's explicit Host kept", nil, "users.example", "users.example"},
		{"WithHost wins", []discovery.Option{discovery.WithHost("users.internal")}, "users.example", "users.internal"},
		{"WithPreservedHost keeps the logical name", []discovery.Option{discovery.WithPreservedHost()}, "", "users"},
		{"WithPreservedHost keeps the caller's", []discovery.Option{discovery.WithPreservedHost()}, "users.example", "users.example"},
		{"WithHost wins over WithPreservedHost", []discovery.Option{discovery.WithPreservedHost(), discovery.WithHost("users.internal")}, "users.example", "users.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newService(t, discovery.Static(up.addr()), discovery.Config{}, tt.opts...)
			req, err := http.NewRequest("GET", "http://users/v1/users/42?x=1", nil)
			require.NoError(t, err)
			if tt.reqHost != "" {
				req.Host = tt.reqHost
			}
			resp, err := client(t, s).Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.want, gotHost.Load())
			assert.Equal(t, "/v1/users/42?x=1", gotPath.Load())
			// The caller's request is untouched.
			assert.Equal(t, "users", req.URL.Host)
			if tt.reqHost == "" {
				assert.Equal(t, "users", req.Host)
			}
		})
	}
}

func TestHealthCheckEjectsAndReturns(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	flaky := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !healthy.Load() {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}
	})
	steady := newUpstream(t, nil)
	clk := newStepClock()
	s := newService(t, discovery.Static(flaky.addr(), steady.addr()), discovery.Config{
		HealthCheck: discovery.HealthCheckConfig{Path: "/healthz", Interval: time.Hour, Timeout: time.Second},
	}, discovery.WithClock(clk))
	ready := func(addr string) bool {
		for _, st := range s.Endpoints() {
			if st.Address == addr {
				return st.Ready
			}
		}
		return false
	}
	clk.sleeping(t) // the first round is done
	require.True(t, ready(flaky.addr()))

	healthy.Store(false)
	clk.step(t) // the next round
	require.False(t, ready(flaky.addr()))
	for i := 0; i < 20; i++ {
		ep, err := s.Pick(context.Background())
		require.NoError(t, err)
		assert.Equal(t, steady.addr(), ep)
	}

	healthy.Store(true)
	clk.step(t)
	require.True(t, ready(flaky.addr()))
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		ep, err := s.Pick(context.Background())
		require.NoError(t, err)
		seen[ep] = true
	}
	assert.True(t, seen[flaky.addr()], "endpoint did not return after passing its check")
}

func TestEndpointsSnapshot(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { latency(r.Context(), 2*time.Millisecond) })
	src := newSetSource()
	s := newService(t, src, discovery.Config{Balancer: discovery.EWMA})
	src.send(t, []discovery.Endpoint{
		{Address: up.addr(), Weight: 2, Metadata: map[string]string{"zone": "a"}},
		{Address: "10.255.255.1:80"},
	}, nil)
	eps := s.Endpoints()
	require.Len(t, eps, 2)
	assert.Equal(t, discovery.EndpointStatus{Address: up.addr(), Weight: 2, Ready: true, Metadata: map[string]string{"zone": "a"}}, eps[0])
	assert.Equal(t, discovery.EndpointStatus{Address: "10.255.255.1:80", Weight: 1, Ready: true}, eps[1])

	// After a request the endpoint has a latency; load returns to 0.
	req, _ := http.NewRequest("GET", "http://users/", nil)
	ctx := context.Background()
	for s.Endpoints()[0].EWMA == 0 {
		ep, err := s.Pick(ctx)
		require.NoError(t, err)
		if ep != up.addr() {
			continue // the new idle endpoint is probed first sometimes
		}
		resp, err := client(t, s).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	assert.GreaterOrEqual(t, s.Endpoints()[0].EWMA, 2*time.Millisecond)
	assert.Zero(t, s.Endpoints()[0].InFlight)
}

// A source that lists one endpoint in two spellings gives the Service one
// endpoint, under the canonical spelling, which is what requests dial.
func TestOneEndpointInTwoSpellingsIsOne(t *testing.T) {
	up := newUpstream(t, nil)
	host, port, err := net.SplitHostPort(up.addr())
	require.NoError(t, err)
	src := newSetSource()
	s := newService(t, src, discovery.Config{})
	addresses := func() []string {
		var got []string
		for _, st := range s.Endpoints() {
			got = append(got, st.Address)
		}
		return got
	}

	src.Set(t, host+":0"+port, up.addr())
	assert.Equal(t, []string{up.addr()}, addresses())
	req, _ := http.NewRequest("GET", "http://users/", nil)
	for range 3 {
		resp, err := client(t, s).Do(req)
		require.NoError(t, err)
		assert.Equal(t, up.addr(), resp.Request.URL.Host, "the canonical address is dialed")
		resp.Body.Close()
	}
	assert.EqualValues(t, 3, up.hits.Load())

	src.Set(t, "[0:0::1]:080", "[::1]:80", "Users.Internal:80", "users.internal:80")
	assert.ElementsMatch(t, []string{"[::1]:80", "users.internal:80"}, addresses())
}

func TestInFlightIsCounted(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	s := newService(t, discovery.Static(up.addr()), discovery.Config{Balancer: discovery.LeastRequest})
	hc := client(t, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, hc, "http://users/")
	}()
	<-arrived
	assert.Equal(t, 1, s.Endpoints()[0].InFlight)
	close(release)
	<-done
	assert.Equal(t, 0, s.Endpoints()[0].InFlight)
}

func TestHealthCheckTimeoutEjects(t *testing.T) {
	release := make(chan struct{})
	hung := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
	})
	t.Cleanup(func() { close(release) }) // runs before the server closes
	clk := newStepClock()
	s := newService(t, discovery.Static(hung.addr()), discovery.Config{
		HealthCheck: discovery.HealthCheckConfig{Path: "/healthz", Interval: time.Hour, Timeout: 20 * time.Millisecond},
	}, discovery.WithClock(clk))
	clk.sleeping(t) // the first round ended: its check timed out (on a real timer)
	require.False(t, s.Endpoints()[0].Ready)
	_, err := s.Pick(context.Background())
	assert.ErrorIs(t, err, discovery.ErrNoEndpoints)
}

func TestSourceSetIsCleaned(t *testing.T) {
	src := newSetSource()
	s := newService(t, src, discovery.Config{})
	src.send(t, []discovery.Endpoint{
		{Address: "10.0.0.1:80", Weight: 2},
		{Address: "10.0.0.1:80", Weight: 5},  // duplicate: the first wins
		{Address: "not an address"},          // skipped (and logged)
		{Address: "10.0.0.2:80", Weight: -3}, // weight < 1 means 1
	}, nil)
	var got []string
	for _, st := range s.Endpoints() {
		got = append(got, st.Address+"/"+string(rune('0'+st.Weight)))
	}
	assert.Equal(t, []string{"10.0.0.1:80/2", "10.0.0.2:80/1"}, got)
}

func TestRoundRobinHugeWeightsAreScaled(t *testing.T) {
	src := newSetSource()
	s := newService(t, src, discovery.Config{})
	src.send(t, []discovery.Endpoint{{Address: "10.0.0.1:80", Weight: 1<<30 + 1}, {Address: "10.0.0.2:80", Weight: 1}}, nil)
	counts := map[string]int{}
	for i := 0; i < 1<<16; i++ { // one cycle of the bounded schedule
		ep, err := s.Pick(context.Background())
		require.NoError(t, err)
		counts[ep]++
	}
	// Scaled to a 65,536-slot cycle; the light endpoint keeps its one slot.
	assert.Equal(t, 1, counts["10.0.0.2:80"])
	assert.Equal(t, 1<<16-1, counts["10.0.0.1:80"])
}

func TestPicksRunDuringUpdates(t *testing.T) {
	for _, b := range balancers {
		t.Run(b, func(t *testing.T) {
			src := newSetSource()
			s := newService(t, src, discovery.Config{Balancer: b})
			src.Set(t, "10.0.0.1:80", "10.0.0.2:80")
			stop := make(chan struct{})
			errs := make(chan error, 4)
			for g := 0; g < 4; g++ {
				go func() {
					for {
						select {
						case <-stop:
							errs <- nil
							return
						default:
						}
						rec := attempt.NewRecord()
						if _, err := s.Pick(withAttempt(rec)); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			for i := 0; i < 100; i++ {
				if i%2 == 0 {
					src.Set(t, "10.0.0.1:80", "10.0.0.3:80", "10.0.0.4:80")
				} else {
					src.send(t, []discovery.Endpoint{{Address: "10.0.0.2:80", Weight: 3}, {Address: "10.0.0.1:80"}}, nil)
				}
			}
			close(stop)
			for g := 0; g < 4; g++ {
				assert.NoError(t, <-errs)
			}
		})
	}
}

// An ejected endpoint's share is spread over the ready ones, not handed to
// its neighbour in the rotation: with a, b (ejected), c of equal weight, a
// and c get about half each.
func TestRoundRobinSpreadsAnEjectedEndpointsShare(t *testing.T) {
	s := newService(t, discovery.Static("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"), discovery.Config{},
		discovery.WithHealth(discovery.HealthFunc(func(ep string) bool { return ep != "10.0.0.2:80" })))
	counts := map[string]int{}
	for range 3000 {
		ep, err := s.Pick(context.Background())
		require.NoError(t, err)
		counts[ep]++
	}
	assert.Zero(t, counts["10.0.0.2:80"])
	assert.InDelta(t, 1500, counts["10.0.0.1:80"], 150, "%v", counts)
	assert.InDelta(t, 1500, counts["10.0.0.3:80"], 150, "%v", counts)
}
