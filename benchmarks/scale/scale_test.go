package scale_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/ratelimit"
)

func TestMain(m *testing.M) {
	// Library log lines (a discovery set change, say) would land between
	// benchmark result lines and break benchstat's parsing: discard them.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

const serviceName = "scale-svc"

// noopTransport answers every request at once with a fresh canned 200.
type noopTransport struct{}

func (noopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", ProtoMajor: 1, ProtoMinor: 1, Body: http.NoBody, Request: req}, nil
}

// addr returns the i-th distinct loopback address; they are never dialed.
func addr(i int) string {
	return fmt.Sprintf("127.%d.%d.%d:8080", (i>>16)&0xff, (i>>8)&0xff, i&0xff+1)
}

func addrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = addr(i)
	}
	return out
}

func requests(tb testing.TB, n int) []*http.Request {
	out := make([]*http.Request, n)
	for i := range out {
		r, err := http.NewRequest(http.MethodGet, "http://"+addr(i)+"/", nil)
		require.NoError(tb, err)
		out[i] = r
	}
	return out
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func perKey(before, after uint64, n int) float64 {
	if after < before {
		return 0
	}
	return float64(after-before) / float64(n)
}

func send(tb testing.TB, rt http.RoundTripper, req *http.Request) {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		tb.Fatalf("RoundTrip: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// keyed builds a per-key policy able to hold n keys, over base.
type keyed func(tb testing.TB, n int, base http.RoundTripper) http.RoundTripper

func newBreaker(tb testing.TB, n int, base http.RoundTripper) http.RoundTripper {
	br, err := breaker.New(breaker.Config{MaxKeys: max(n, 1)})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = br.Close() })
	return br.RoundTripper(base)
}

func newLimiter(tb testing.TB, n int, base http.RoundTripper) http.RoundTripper {
	l, err := ratelimit.New(ratelimit.Config{RPS: 1e9, Scope: "host", MaxKeys: max(n, 1)})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = l.Close() })
	return l.RoundTripper(base)
}

func benchKeyed(b *testing.B, build keyed) {
	for _, n := range []int{1, 1_000, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			reqs := requests(b, n)
			before := liveHeap()
			rt := build(b, n, noopTransport{})
			for _, r := range reqs {
				send(b, rt, r)
			}
			after := liveHeap()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				send(b, rt, reqs[i])
				if i++; i == n {
					i = 0
				}
			}
			runtime.KeepAlive(rt)
			// After the loop: ResetTimer and b.Loop drop metrics reported earlier.
			b.ReportMetric(perKey(before, after, n), "B/key")
		})
	}
}

// BenchmarkBreakerKeys: a breaker RoundTripper over n distinct endpoints.
func BenchmarkBreakerKeys(b *testing.B) { benchKeyed(b, newBreaker) }

// BenchmarkLimiterKeys: a host-scoped limiter RoundTripper over n distinct hosts.
func BenchmarkLimiterKeys(b *testing.B) { benchKeyed(b, newLimiter) }

// BenchmarkDiscoveryPick: the Service's RoundTripper choosing among n static
// endpoints for a request to the service name.
func BenchmarkDiscoveryPick(b *testing.B) {
	for _, n := range []int{10, 1_000, 100_000} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			src := discovery.Static(addrs(n)...)
			req, err := http.NewRequest(http.MethodGet, "http://"+serviceName+"/", nil)
			require.NoError(b, err)
			before := liveHeap()
			s, err := discovery.NewService(serviceName, src, discovery.Config{})
			require.NoError(b, err)
			b.Cleanup(func() { _ = s.Close() })
			rt := s.RoundTripper(noopTransport{})
			send(b, rt, req)
			after := liveHeap()
			b.ReportAllocs()
			for b.Loop() {
				send(b, rt, req)
			}
			b.ReportMetric(perKey(before, after, n), "B/endpoint")
		})
	}
}

// TestScaleSmoke runs each scale path once at a small size, so CI knows the
// benchmarks' set-up works: every key gets its own state, every request is
// answered.
func TestScaleSmoke(t *testing.T) {
	for name, build := range map[string]keyed{"breaker": newBreaker, "limiter": newLimiter} {
		t.Run(name, func(t *testing.T) {
			rt := build(t, 100, noopTransport{})
			for _, r := range requests(t, 100) {
				send(t, rt, r)
			}
		})
	}
	t.Run("discovery", func(t *testing.T) {
		s, err := discovery.NewService(serviceName, discovery.Static(addrs(100)...), discovery.Config{})
		require.NoError(t, err)
		defer func() { _ = s.Close() }()
		seen := map[string]bool{}
		rt := s.RoundTripper(roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			seen[r.URL.Host] = true
			return noopTransport{}.RoundTrip(r)
		}))
		req, err := http.NewRequest(http.MethodGet, "http://"+serviceName+"/", nil)
		require.NoError(t, err)
		for range 300 {
			send(t, rt, req)
		}
		require.Greater(t, len(seen), 1, "picks spread over the endpoints")
		require.NotContains(t, seen, serviceName, "the service name is rewritten to an endpoint")
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
