package httpbench_test

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// countingTransport answers every request with status (or err when status
// is 0), counting calls.
type countingTransport struct {
	status int
	err    error
	calls  atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	if req.Body != nil {
		_ = req.Body.Close()
	}
	if c.status == 0 {
		return nil, c.err
	}
	return &http.Response{StatusCode: c.status, Status: http.StatusText(c.status), ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody, Request: req}, nil
}

var errUpstreamDown = errors.New("upstream down")

// refusalCase is one way of saying no: build prepares a stack that refuses
// every further request; refused checks one answer is that refusal.
type refusalCase struct {
	name    string
	build   func(tb testing.TB) (http.RoundTripper, *countingTransport)
	refused func(resp *http.Response, err error) bool
}

func refusalCases() []refusalCase {
	return []refusalCase{
		{
			name: "breaker-open",
			build: func(tb testing.TB) (http.RoundTripper, *countingTransport) {
				base := &countingTransport{err: errUpstreamDown}
				br, err := breaker.New(breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Hour})
				fatalIf(tb, err)
				tb.Cleanup(func() { _ = br.Close() })
				rt := br.RoundTripper(base)
				_, _ = rt.RoundTrip(newGet(tb)) // trips the breaker
				return rt, base
			},
			refused: func(_ *http.Response, err error) bool { return errors.Is(err, breaker.ErrOpen) },
		},
		{
			name: "limiter-reject",
			build: func(tb testing.TB) (http.RoundTripper, *countingTransport) {
				base := &countingTransport{status: http.StatusOK}
				l, err := ratelimit.New(ratelimit.Config{RPS: 0.001, Burst: 1})
				fatalIf(tb, err)
				tb.Cleanup(func() { _ = l.Close() })
				rt := l.RoundTripper(base)
				_, _ = call(rt, newGet(tb)) // spends the only token
				return rt, base
			},
			refused: func(_ *http.Response, err error) bool { return errors.Is(err, ratelimit.ErrLimited) },
		},
		{
			name: "budget-exhausted",
			build: func(tb testing.TB) (http.RoundTripper, *countingTransport) {
				base := &countingTransport{status: http.StatusServiceUnavailable}
				p, err := retry.New(retry.Config{
					MaxAttempts: maxAttempts,
					BaseDelay:   100 * time.Microsecond,
					MaxDelay:    time.Millisecond,
					Budget:      retry.BudgetConfig{Ratio: 1e-6, MinPerSecond: 1e-6, TTL: time.Hour},
				})
				fatalIf(tb, err)
				rt := p.RoundTripper(base)
				// Spend whatever budget there is: stop once a request is
				// answered after a single upstream call.
				for range 1000 {
					before := base.calls.Load()
					_, _ = call(rt, newGet(tb))
					if base.calls.Load()-before == 1 {
						break
					}
				}
				return rt, base
			},
			refused: func(resp *http.Response, err error) bool {
				return errors.Is(err, retry.ErrBudgetExhausted) || (err == nil && resp.StatusCode == http.StatusServiceUnavailable)
			},
		},
	}
}

func newGet(tb testing.TB) *http.Request {
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:18081/", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// TestRefusalPathsRefuse proves the refusal benchmarks time a refusal: the
// answer is the documented one and the upstream is not called (budget: called
// once, never retried).
func TestRefusalPathsRefuse(t *testing.T) {
	for _, rc := range refusalCases() {
		t.Run(rc.name, func(t *testing.T) {
			rt, base := rc.build(t)
			before := base.calls.Load()
			resp, err := rt.RoundTrip(newGet(t))
			if resp != nil {
				_ = resp.Body.Close()
			}
			require.True(t, rc.refused(resp, err), "not refused: resp=%v err=%v", resp, err)
			want := int64(0)
			if rc.name == "budget-exhausted" {
				want = 1
			}
			require.Equal(t, want, base.calls.Load()-before, "upstream calls for one refused request")
		})
	}
}

// TestBudgetIsWhatStopsRetries guards the budget-exhausted case against a
// retry that never retries: the same policy with its budget disabled makes
// every attempt against the always-503 upstream.
func TestBudgetIsWhatStopsRetries(t *testing.T) {
	base := &countingTransport{status: http.StatusServiceUnavailable}
	p, err := retry.New(retry.Config{
		MaxAttempts: maxAttempts,
		BaseDelay:   100 * time.Microsecond,
		MaxDelay:    time.Millisecond,
		Budget:      retry.BudgetConfig{Disabled: true},
	})
	require.NoError(t, err)
	code, err := call(p.RoundTripper(base), newGet(t))
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code, "the last upstream answer is passed through")
	require.Equal(t, int64(maxAttempts), base.calls.Load())
}

// BenchmarkRefusal is the cost of saying no.
func BenchmarkRefusal(b *testing.B) {
	for _, rc := range refusalCases() {
		b.Run(rc.name, func(b *testing.B) {
			rt, _ := rc.build(b)
			req := newGet(b)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if resp != nil {
					_ = resp.Body.Close()
				}
				if !rc.refused(resp, err) {
					b.Fatalf("not refused: resp=%v err=%v", resp, err)
				}
			}
		})
	}
}
