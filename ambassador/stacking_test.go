package ambassador_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// These tests drive the whole stack (retry → ratelimit → discovery →
// breaker → transport) built by ambassador.NewTransport against loopback
// upstreams that count the requests they receive: issue 3's "Stacking" and
// issue 4's "per attempt" rules.

// countingUpstream answers every request with status and counts them.
type countingUpstream struct {
	srv    *httptest.Server
	status atomic.Int32
	hits   atomic.Int64
}

func newCountingUpstream(t *testing.T, status int) *countingUpstream {
	t.Helper()
	u := &countingUpstream{}
	u.status.Store(int32(status))
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(int(u.status.Load()))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *countingUpstream) host(t *testing.T) string { return hostOf(t, u.srv.URL) }

// deadAddr returns a loopback address nothing listens on: connecting to it
// is refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// stackMetrics is a meter provider whose readings the tests inspect.
type stackMetrics struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newStackMetrics(t *testing.T) *stackMetrics {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &stackMetrics{reader: r, mp: mp}
}

// sum adds the points of counter name, grouped by the value of attribute
// key (all points when filter is nil, else those it accepts).
func (m *stackMetrics) sum(t *testing.T, name, key string, filter func(attribute.Set) bool) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, dp := range testkit.MetricData[metricdata.Sum[int64]](t, m.reader, name).DataPoints {
		if filter != nil && !filter(dp.Attributes) {
			continue
		}
		v, _ := dp.Attributes.Value(attribute.Key(key))
		out[v.AsString()] += dp.Value
	}
	return out
}

func (m *stackMetrics) retryOutcomes(t *testing.T) map[string]int64 {
	t.Helper()
	return m.sum(t, "outbound.retry.attempts", "outcome", nil)
}

// newTransport builds the full stack with NewTransport and closes it at the
// end of the test.
func newTransport(t *testing.T, c ambassador.ServiceConfig, opts ...ambassador.Option) *ambassador.Stack {
	t.Helper()
	rt, err := ambassador.NewTransport(c, opts...)
	require.NoError(t, err)
	s, ok := rt.(*ambassador.Stack)
	require.True(t, ok, "NewTransport returns a *Stack")
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

// send makes one request through rt and drains the answer; it returns the
// status code (0 with an error). It is safe to call from any goroutine.
func send(t *testing.T, rt http.RoundTripper, method, rawURL string, hdr http.Header, body string) (int, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, rawURL, rd)
	if err != nil {
		return 0, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return resp.StatusCode, err
}

// slowRetry retries up to 5 times with a 2s base delay (±50% jitter: no
// retry happens sooner than 1s), no budget in the way.
func slowRetry() *retry.Config {
	return &retry.Config{MaxAttempts: 5, BaseDelay: 2 * time.Second, MaxDelay: 2 * time.Second,
		Budget: retry.BudgetConfig{Disabled: true}}
}

// noBackoff is below the smallest backoff slowRetry would sleep (1s).
const noBackoff = 900 * time.Millisecond

// An open breaker's refusal (through discovery, which skips the ejected
// endpoint and so refuses with ErrNoEndpoints) is returned at once: the
// upstream sees nothing more, retry records it as not retryable and no
// backoff sleep happens.
func TestStackingBreakerOpenRefusalIsNotRetried(t *testing.T) {
	up := newCountingUpstream(t, http.StatusInternalServerError) // a failure for the breaker, not retried by retry
	m := newStackMetrics(t)
	s := newTransport(t, ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{up.host(t)}},
		Retry:     slowRetry(),
		RateLimit: &ratelimit.Config{RPS: 10000},
		Breaker:   &breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Minute},
	}, ambassador.WithMeterProvider(m.mp))

	for range 2 {
		code, err := send(t, s, http.MethodGet, "http://users/", nil, "")
		require.NoError(t, err)
		require.Equal(t, http.StatusInternalServerError, code)
	}
	require.Equal(t, breaker.StateOpen, s.Breaker().State(up.host(t)))
	require.EqualValues(t, 2, up.hits.Load())
	before := m.retryOutcomes(t)

	start := time.Now()
	_, err := send(t, s, http.MethodGet, "http://users/", nil, "")
	elapsed := time.Since(start)
	require.Error(t, err)
	assert.True(t, errors.Is(err, discovery.ErrNoEndpoints) || errors.Is(err, breaker.ErrOpen), "a local refusal: %v", err)
	assert.Less(t, elapsed, noBackoff, "returned at once, no backoff sleep")
	assert.EqualValues(t, 2, up.hits.Load(), "the refused request never reached the upstream")
	after := m.retryOutcomes(t)
	assert.Equal(t, before[retry.OutcomeNotRetryable]+1, after[retry.OutcomeNotRetryable], "outcomes before %v, after %v", before, after)
	assert.Equal(t, before[retry.OutcomeRetried], after[retry.OutcomeRetried], "no retry: outcomes before %v, after %v", before, after)
}

// The breaker's own ErrOpen (not only discovery's ErrNoEndpoints) is a local
// refusal that retry returns at once: a stack whose discovery cannot see
// the breaker (a breaker keyed by service, not by endpoint, so Ready never
// matches an endpoint) still refuses without backoff.
func TestStackingBreakerErrOpenIsNotRetried(t *testing.T) {
	up := newCountingUpstream(t, http.StatusInternalServerError)
	rp, err := retry.New(*slowRetry())
	require.NoError(t, err)
	br, err := breaker.New(breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Minute},
		breaker.WithKeyFunc(func(*http.Request) string { return "users" }))
	require.NoError(t, err)
	defer func() { assert.NoError(t, br.Close()) }()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 10000})
	require.NoError(t, err)
	defer func() { assert.NoError(t, lim.Close()) }()
	svc, err := discovery.NewService("users", discovery.Static(up.host(t)), discovery.Config{}, discovery.WithHealth(br))
	require.NoError(t, err)
	defer func() { assert.NoError(t, svc.Close()) }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rt := ambassador.Chain(tr, rp.RoundTripper, lim.RoundTripper, svc.RoundTripper, br.RoundTripper)

	for range 2 {
		code, err := send(t, rt, http.MethodGet, "http://users/", nil, "")
		require.NoError(t, err)
		require.Equal(t, http.StatusInternalServerError, code)
	}
	require.Equal(t, breaker.StateOpen, br.State("users"))

	start := time.Now()
	_, err = send(t, rt, http.MethodGet, "http://users/", nil, "")
	elapsed := time.Since(start)
	require.ErrorIs(t, err, breaker.ErrOpen)
	assert.Less(t, elapsed, noBackoff, "returned at once, no backoff sleep")
	assert.EqualValues(t, 2, up.hits.Load(), "the refused request never reached the upstream")
}

// A rate-limited refusal is returned at once: not retried, not slept on
// (not even for the limiter's own Retry-After hint).
func TestStackingRateLimitedRefusalIsNotRetried(t *testing.T) {
	up := newCountingUpstream(t, http.StatusOK)
	m := newStackMetrics(t)
	s := newTransport(t, ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{up.host(t)}},
		Retry:     slowRetry(),
		// One token, the next one in 100s: the second request is refused
		// however slow the machine is.
		RateLimit: &ratelimit.Config{RPS: 0.01, Burst: 1},
		Breaker:   &breaker.Config{},
	}, ambassador.WithMeterProvider(m.mp))

	code, err := send(t, s, http.MethodGet, "http://users/", nil, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)

	start := time.Now()
	_, err = send(t, s, http.MethodGet, "http://users/", nil, "")
	elapsed := time.Since(start)
	require.ErrorIs(t, err, ratelimit.ErrLimited)
	var le *ratelimit.LimitedError
	require.ErrorAs(t, err, &le)
	assert.Greater(t, le.RetryAfter, time.Second, "the limiter says when a token frees up")
	assert.Less(t, elapsed, noBackoff, "returned at once, no backoff sleep")
	assert.EqualValues(t, 1, up.hits.Load())
	assert.Equal(t, map[string]int64{retry.OutcomeSuccess: 1, retry.OutcomeNotRetryable: 1}, m.retryOutcomes(t))
}

// Under heavy retrying traffic a tripped endpoint is probed at most
// half_open_requests times per open_timeout, while the traffic keeps
// succeeding on its healthy sibling through retry.
func TestStackingTrippedEndpointProbedAtHalfOpenRate(t *testing.T) {
	const (
		workers     = 4
		openTimeout = 150 * time.Millisecond
		halfOpen    = 1
		window      = time.Second
	)
	failing := newCountingUpstream(t, http.StatusServiceUnavailable) // a gateway error: retried
	healthy := newCountingUpstream(t, http.StatusOK)
	m := newStackMetrics(t)
	s := newTransport(t, ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{failing.host(t), healthy.host(t)}},
		Retry: &retry.Config{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond,
			Budget: retry.BudgetConfig{Disabled: true}},
		RateLimit: &ratelimit.Config{RPS: 1e6},
		Breaker:   &breaker.Config{ConsecutiveFailures: 3, OpenTimeout: openTimeout, HalfOpenRequests: halfOpen},
	}, ambassador.WithMeterProvider(m.mp))

	var (
		stop     atomic.Bool
		requests atomic.Int64
		bad      atomic.Int64
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for !stop.Load() {
				code, err := send(t, s, http.MethodGet, "http://users/", nil, "")
				requests.Add(1)
				if err != nil || code != http.StatusOK {
					bad.Add(1)
				}
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()

	failingHost := failing.host(t)
	require.Eventually(t, func() bool { return s.Breaker().State(failingHost) != breaker.StateClosed },
		10*time.Second, time.Millisecond, "the failing endpoint's breaker trips")
	hitsAtTrip := failing.hits.Load()
	tripped := time.Now()
	// Let the traffic run over several open_timeouts; a condition on the
	// traffic (not a sleep for state): enough logical requests were made
	// and the window has passed.
	require.Eventually(t, func() bool { return time.Since(tripped) >= window && requests.Load() >= 100 },
		30*time.Second, 5*time.Millisecond)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(tripped)

	after := failing.hits.Load() - hitsAtTrip
	// Requests already admitted when it tripped (at most one per worker)
	// may still arrive; after that only probes: half_open_requests per
	// open_timeout, plus one window for the one in progress.
	maxProbes := int64(halfOpen) * (int64(elapsed/openTimeout) + 1)
	assert.LessOrEqual(t, after, int64(workers)+maxProbes,
		"%d requests reached the tripped endpoint in %v after it tripped (%d logical requests made)", after, elapsed, requests.Load())
	assert.Zero(t, bad.Load(), "every request succeeded through retry on the healthy endpoint")
	assert.Equal(t, requests.Load(), healthy.hits.Load(), "every request was answered by the healthy endpoint, once")

	// The tripped endpoint was still probed (the bound above is a rate,
	// not a silence): its breaker went half-open at least once.
	toHalfOpen := m.sum(t, "outbound.breaker.transitions", "to", func(set attribute.Set) bool {
		v, _ := set.Value("endpoint")
		return v.AsString() == failingHost
	})[breaker.StateHalfOpen.String()]
	assert.GreaterOrEqual(t, toHalfOpen, int64(1), "probes happened after open_timeout")
	assert.Zero(t, m.sum(t, "outbound.breaker.transitions", "to", func(set attribute.Set) bool {
		v, _ := set.Value("endpoint")
		return v.AsString() == healthy.host(t)
	})[breaker.StateOpen.String()], "the healthy endpoint's breaker never opened")
}

// countingBase counts the attempts per endpoint that reach the transport.
type countingBase struct {
	next http.RoundTripper
	mu   sync.Mutex
	hits map[string]int
}

func (c *countingBase) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.hits[r.URL.Host]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *countingBase) count(host string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[host]
}

// A dead endpoint (connection refused) stops receiving traffic once its
// breaker opens, while every request keeps succeeding on the others
// through retry.
func TestStackingDeadEndpointEjectedWhileRequestsSucceed(t *testing.T) {
	const consecutive = 3
	a, b := newCountingUpstream(t, http.StatusOK), newCountingUpstream(t, http.StatusOK)
	dead := deadAddr(t)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	base := &countingBase{next: tr, hits: map[string]int{}}
	s := newTransport(t, ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{a.host(t), dead, b.host(t)}},
		Retry:     &retry.Config{BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond},
		RateLimit: &ratelimit.Config{RPS: 1e6},
		// open_timeout far beyond the test: no probe is due, so the dead
		// endpoint gets exactly consecutive_failures attempts.
		Breaker: &breaker.Config{ConsecutiveFailures: consecutive, OpenTimeout: time.Hour},
	}, ambassador.WithBase(base))

	for i := range 100 {
		code, err := send(t, s, http.MethodGet, "http://users/", nil, "")
		require.NoError(t, err, "request %d", i)
		require.Equal(t, http.StatusOK, code, "request %d", i)
	}
	assert.Equal(t, consecutive, base.count(dead), "the dead endpoint got consecutive_failures attempts, then none")
	assert.Equal(t, breaker.StateOpen, s.Breaker().State(dead))
	assert.EqualValues(t, 100, a.hits.Load()+b.hits.Load(), "every request answered by a live endpoint")
	assert.Positive(t, a.hits.Load(), "both live endpoints serve")
	assert.Positive(t, b.hits.Load(), "both live endpoints serve")
	for _, ep := range s.Discovery().Endpoints() {
		assert.Equal(t, ep.Address != dead, ep.Ready, "%s readiness", ep.Address)
	}
}

// A POST without Idempotency-Key answered 503 goes through the whole stack
// exactly once; the same POST with an Idempotency-Key is retried.
func TestStackingPOSTWithout503IdempotencyKeySentOnce(t *testing.T) {
	cases := []struct {
		name  string
		hdr   http.Header
		sends int64
	}{
		{"without Idempotency-Key: sent once", nil, 1},
		{"with Idempotency-Key: retried", http.Header{"Idempotency-Key": {"order-42"}}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newCountingUpstream(t, http.StatusServiceUnavailable), newCountingUpstream(t, http.StatusServiceUnavailable)
			m := newStackMetrics(t)
			s := newTransport(t, ambassador.ServiceConfig{
				Name:      "users",
				Discovery: discovery.Config{Static: []string{a.host(t), b.host(t)}},
				Retry: &retry.Config{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond,
					Budget: retry.BudgetConfig{Disabled: true}},
				RateLimit: &ratelimit.Config{RPS: 1e6},
				Breaker:   &breaker.Config{ConsecutiveFailures: 10},
			}, ambassador.WithMeterProvider(m.mp))

			code, err := send(t, s, http.MethodPost, "http://users/orders", tc.hdr, `{"item":42}`)
			require.NoError(t, err)
			assert.Equal(t, http.StatusServiceUnavailable, code, "the upstream's answer comes back")
			assert.Equal(t, tc.sends, a.hits.Load()+b.hits.Load(), "sends across both endpoints")
			if tc.sends == 1 {
				assert.Equal(t, map[string]int64{retry.OutcomeNotRetryable: 1}, m.retryOutcomes(t))
			} else {
				assert.Equal(t, map[string]int64{retry.OutcomeRetried: 2, retry.OutcomeExhausted: 1}, m.retryOutcomes(t))
			}
		})
	}
}

// alwaysReady is a discovery.Health whose view lags the breaker's: it says
// every endpoint is ready.
type alwaysReady struct{}

func (alwaysReady) Ready(string) bool { return true }

// onlyReader hides strings.Reader's type so http.NewRequest sets no GetBody.
type onlyReader struct{ io.Reader }

// The window between discovery's readiness check and the breaker's
// admission (a breaker that trips, or whose half-open probe slots fill, in
// between) made deterministic: discovery believes every endpoint ready, the
// breaker below has endpoint a open. A request discovery sends to a is
// refused there without being sent, and discovery gives it to b instead —
// the caller does not get a refusal while a healthy endpoint exists.
func TestStackingDiscoveryRepicksAfterBreakerRefusal(t *testing.T) {
	a, b := newCountingUpstream(t, http.StatusInternalServerError), newCountingUpstream(t, http.StatusOK)
	br, err := breaker.New(breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Hour})
	require.NoError(t, err)
	defer func() { assert.NoError(t, br.Close()) }()
	svc, err := discovery.NewService("users", discovery.Static(a.host(t), b.host(t)), discovery.Config{}, discovery.WithHealth(alwaysReady{}))
	require.NoError(t, err)
	defer func() { assert.NoError(t, svc.Close()) }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rt := ambassador.Chain(tr, svc.RoundTripper, br.RoundTripper)

	// Round robin: the first request goes to a, whose 500 opens its breaker.
	seen := map[int]int{}
	for range 2 {
		code, err := send(t, rt, http.MethodGet, "http://users/", nil, "")
		require.NoError(t, err)
		seen[code]++
	}
	require.Equal(t, map[int]int{500: 1, 200: 1}, seen)
	require.Equal(t, breaker.StateOpen, br.State(a.host(t)))

	var got []string
	var mu sync.Mutex
	b.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(body))
		mu.Unlock()
	})
	for i := range 10 {
		code, err := send(t, rt, http.MethodPost, "http://users/orders", nil, "order")
		require.NoError(t, err, "request %d", i)
		require.Equal(t, http.StatusOK, code, "request %d", i)
	}
	assert.EqualValues(t, 1, a.hits.Load(), "the open endpoint got nothing more")
	assert.Len(t, got, 10)
	for _, body := range got {
		assert.Equal(t, "order", body, "the re-picked send carries the whole body")
	}

	// A body that cannot be had again (no GetBody) is not re-sent: the
	// refusal comes back when the pick lands on a.
	refusals := 0
	for range 2 {
		req, err := http.NewRequest(http.MethodPost, "http://users/orders", onlyReader{strings.NewReader("once")})
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			assert.ErrorIs(t, err, breaker.ErrOpen)
			refusals++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
	assert.Equal(t, 1, refusals, "one of two round-robin picks lands on the open endpoint")
	assert.EqualValues(t, 1, a.hits.Load())
}

// The time a request waits for a rate-limit token is not the endpoint's
// latency: discovery measures from the moment the attempt is sent, after
// the wait, so a fast endpoint does not look slow to the ewma balancer
// because the limiter held its requests back.
func TestStackingRateLimitWaitIsNotEndpointLatency(t *testing.T) {
	up := newCountingUpstream(t, http.StatusOK)
	// Long enough that a loopback answer on a loaded 2-core machine under
	// -race stays well below wait/2 (with 300 ms the test failed under load).
	const wait = time.Second
	s := newTransport(t, ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{up.host(t)}, Balancer: "ewma"},
		Retry:     slowRetry(),
		// One token, the next one after wait: the second request waits.
		RateLimit: &ratelimit.Config{RPS: 1 / wait.Seconds(), Burst: 1, MaxWait: 10 * time.Second},
		Breaker:   &breaker.Config{},
	})
	for range 2 {
		code, err := send(t, s, http.MethodGet, "http://users/", nil, "")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
	}
	require.EqualValues(t, 2, up.hits.Load())

	eps := s.Discovery().Endpoints()
	require.Len(t, eps, 1)
	require.Positive(t, eps[0].EWMA, "the endpoint answered")
	// Peak EWMA takes a slower sample at once: a wait counted as latency
	// would show as ≥ wait here. A loopback answer takes well under it.
	assert.Less(t, eps[0].EWMA, wait/2, "the token wait is not counted as endpoint latency")
}

// Retries over two failing endpoints alternate between them, with every
// balancer: once both were tried, the next attempt goes to the one tried
// longest ago, never straight back to the one that has just failed.
func TestStackingRetriesAlternateOverTwoEndpoints(t *testing.T) {
	for _, balancer := range []string{discovery.RoundRobin, discovery.LeastRequest, discovery.EWMA} {
		t.Run(balancer, func(t *testing.T) {
			a, b := newCountingUpstream(t, http.StatusServiceUnavailable), newCountingUpstream(t, http.StatusServiceUnavailable)
			s := newTransport(t, ambassador.ServiceConfig{
				Name:      "users",
				Discovery: discovery.Config{Static: []string{a.host(t), b.host(t)}, Balancer: balancer},
				Retry: &retry.Config{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond,
					Budget: retry.BudgetConfig{Disabled: true}},
				Breaker: &breaker.Config{ConsecutiveFailures: 1000},
			})
			for i := range 20 {
				beforeA, beforeB := a.hits.Load(), b.hits.Load()
				code, err := send(t, s, http.MethodGet, "http://users/", nil, "")
				require.NoError(t, err, "request %d", i)
				require.Equal(t, http.StatusServiceUnavailable, code, "request %d", i)
				require.EqualValues(t, 2, a.hits.Load()-beforeA, "request %d: attempts on %s", i, a.host(t))
				require.EqualValues(t, 2, b.hits.Load()-beforeB, "request %d: attempts on %s", i, b.host(t))
			}
		})
	}
}

// An endpoint that takes requests and never answers is ejected by the
// service timeout: the timeout is the stack's own (the caller was still
// waiting), so each cut request is that endpoint's failure, as a per-try
// timeout's is. Without it, with round_robin, every other request would
// wait out the whole timeout for good.
func TestStackingServiceTimeoutCountsAgainstTheEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		retry *retry.Config
	}{
		{"without retry", nil},
		{"with retry", &retry.Config{BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const failures = 2
			good := newCountingUpstream(t, http.StatusOK)
			var hung atomic.Int64
			hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hung.Add(1)
				<-r.Context().Done() // until the ambassador gives up on it
			}))
			t.Cleanup(hang.Close)
			s := newTransport(t, ambassador.ServiceConfig{
				Name:      "users",
				Timeout:   200 * time.Millisecond,
				Discovery: discovery.Config{Static: []string{good.host(t), hostOf(t, hang.URL)}},
				Retry:     tc.retry,
				Breaker:   &breaker.Config{ConsecutiveFailures: failures, OpenTimeout: time.Hour},
			})
			timeouts := 0
			for i := range 20 {
				code, err := send(t, s, http.MethodGet, "http://users/", nil, "")
				if err != nil {
					require.ErrorIs(t, err, context.DeadlineExceeded, "request %d", i)
					timeouts++
					continue
				}
				require.Equal(t, http.StatusOK, code, "request %d", i)
			}
			assert.EqualValues(t, failures, hung.Load(), "the hanging endpoint got consecutive_failures requests, then none")
			assert.Equal(t, failures, timeouts)
			assert.Equal(t, breaker.StateOpen, s.Breaker().State(hostOf(t, hang.URL)))
		})
	}
}
