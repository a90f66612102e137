package breaker_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/outbound-go/outbound/breaker"
)

// staticTransport answers every request with the same response, allocating
// nothing, so that benchmarks measure the breaker alone.
type staticTransport struct{ resp *http.Response }

func (s staticTransport) RoundTrip(*http.Request) (*http.Response, error) { return s.resp, nil }

func okTransport() staticTransport {
	return staticTransport{resp: &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}}
}

func failTransport() staticTransport {
	return staticTransport{resp: &http.Response{StatusCode: http.StatusInternalServerError, Body: http.NoBody}}
}

// requests builds n requests to n distinct hosts.
func requests(tb testing.TB, n int) []*http.Request {
	tb.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://10.%d.%d.%d:8080/", i>>16&255, i>>8&255, i&255), nil)
		require.NoError(tb, err)
		reqs[i] = req
	}
	return reqs
}

func benchConfig() breaker.Config {
	return breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Hour, Interval: time.Hour, MaxKeys: 200_000}
}

// BenchmarkAllow is the request path of a closed breaker for an existing
// key, over a transport that does nothing.
func BenchmarkAllow(b *testing.B) {
	for _, keys := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			br, err := breaker.New(benchConfig())
			require.NoError(b, err)
			rt := br.RoundTripper(okTransport())
			reqs := requests(b, keys)
			for _, r := range reqs {
				_, _ = rt.RoundTrip(r)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := rt.RoundTrip(reqs[i%keys]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAllowParallel is BenchmarkAllow from GOMAXPROCS goroutines on one key.
func BenchmarkAllowParallel(b *testing.B) {
	br, err := breaker.New(benchConfig())
	require.NoError(b, err)
	rt := br.RoundTripper(okTransport())
	req := requests(b, 1)[0]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = rt.RoundTrip(req)
		}
	})
}

// BenchmarkReject is the refusal path of an open breaker.
func BenchmarkReject(b *testing.B) {
	for _, keys := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			br, err := breaker.New(benchConfig())
			require.NoError(b, err)
			reqs := requests(b, keys)
			trip := br.RoundTripper(failTransport())
			for _, r := range reqs {
				_, _ = trip.RoundTrip(r) // one failure opens the key
			}
			rt := br.RoundTripper(okTransport())
			for _, r := range reqs {
				// The first refusal of a key builds the error and metric
				// attributes every later refusal shares.
				_, err = rt.RoundTrip(r)
				require.ErrorIs(b, err, breaker.ErrOpen)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := rt.RoundTrip(reqs[i%keys]); err == nil {
					b.Fatal("not refused")
				}
			}
		})
	}
}

// BenchmarkReady is discovery's question for an existing closed key.
func BenchmarkReady(b *testing.B) {
	br, err := breaker.New(benchConfig())
	require.NoError(b, err)
	req := requests(b, 1)[0]
	_, _ = br.RoundTripper(okTransport()).RoundTrip(req)
	b.ReportAllocs()
	for b.Loop() {
		if !br.Ready(req.URL.Host) {
			b.Fatal("not ready")
		}
	}
}

// BenchmarkUnaryInterceptor is the gRPC request path with an invoker that
// does nothing.
func BenchmarkUnaryInterceptor(b *testing.B) {
	br, err := breaker.New(benchConfig())
	require.NoError(b, err)
	cc, err := grpc.NewClient("dns:///users.internal:443", grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	defer cc.Close()
	icpt := br.UnaryClientInterceptor()
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := icpt(ctx, "/pkg.Svc/Method", nil, nil, cc, invoker); err != nil {
			b.Fatal(err)
		}
	}
	assert.Equal(b, breaker.StateClosed, br.State("users.internal:443"))
}

// BenchmarkMemoryPerKey reports the heap held per key after 100,000 keys
// were created (the key strings themselves belong to the requests and are
// not counted).
func BenchmarkMemoryPerKey(b *testing.B) {
	const n = 100_000
	reqs := requests(b, n)
	b.ReportAllocs()
	for b.Loop() {
		br, err := breaker.New(benchConfig())
		require.NoError(b, err)
		rt := br.RoundTripper(okTransport())
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, r := range reqs {
			_, _ = rt.RoundTrip(r)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		require.Equal(b, n, br.Len())
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/key")
		runtime.KeepAlive(br)
	}
	runtime.KeepAlive(reqs)
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	br := newBreaker(t, benchConfig())
	reqs := requests(t, 2)
	ok := br.RoundTripper(okTransport())
	_, err := ok.RoundTrip(reqs[0])
	require.NoError(t, err)
	_, _ = br.RoundTripper(failTransport()).RoundTrip(reqs[1])
	_, err = ok.RoundTrip(reqs[1])
	require.ErrorIs(t, err, breaker.ErrOpen)

	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = ok.RoundTrip(reqs[0]) }), "allow of an existing key")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = ok.RoundTrip(reqs[1]) }), "refusal")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = br.Ready(reqs[0].URL.Host) }), "Ready, closed")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = br.Ready(reqs[1].URL.Host) }), "Ready, open")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = br.State(reqs[1].URL.Host) }), "State")
}
