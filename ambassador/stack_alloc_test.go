package ambassador_test

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// staticBody is a response body that allocates nothing: the allocation
// tests count the stack's allocations alone.
type staticBody struct{}

func (staticBody) Read([]byte) (int, error) { return 0, io.EOF }
func (staticBody) Close() error             { return nil }

// fullStack is NewTransport with every policy, over base, for a service
// with three static endpoints and limits nothing refuses.
func fullStack(t testing.TB, base http.RoundTripper) *ambassador.Stack {
	s, err := ambassador.NewStack(ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}},
		Retry:     &retry.Config{},
		RateLimit: &ratelimit.Config{RPS: 1e9},
		Breaker:   &breaker.Config{},
	}, ambassador.WithBase(base), quietLogs)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The full stack (retry → ratelimit → discovery → breaker, bounded by the
// service timeout) costs 1 allocation per request when the caller has no
// deadline of its own: the Stack's per-request state holds the request's
// context, body wrapper, the retry call state with the first attempt's
// request copy and its discovery-rewritable URL, and the re-send guard's
// state, whose context is that attempt's (so the guard sends the request
// as it is; its cancellation and its GotConn hook are lazy, and a base that
// never asks for Done or the trace, like this one, costs neither). With a
// tighter caller deadline the Stack adds nothing and retry allocates its
// call state, and the guard its state and a request copy: 3. Issue 7's
// target was ≤ 4 over bare.
func TestStackAllocsPerRequest(t *testing.T) {
	resp := &http.Response{StatusCode: http.StatusOK, Body: staticBody{}}
	var sent *http.Request
	base := rtFunc(func(r *http.Request) (*http.Response, error) {
		sent = r
		return resp, nil
	})
	s := fullStack(t, base)
	req, err := http.NewRequest(http.MethodGet, "http://users/x?y=1", nil)
	require.NoError(t, err)
	call := func() {
		resp.Body = staticBody{}
		r, err := s.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Body.Close()
	}
	call()
	// The caller's request is untouched; the upstream saw an endpoint.
	assert.Equal(t, "users", req.URL.Host)
	assert.Equal(t, "/x", sent.URL.Path)
	assert.True(t, strings.HasPrefix(sent.URL.Host, "10.0.0."), sent.URL.Host)
	assert.NotSame(t, req, sent)
	dl, ok := sent.Context().Deadline()
	assert.True(t, ok, "the attempt carries the service timeout")
	assert.WithinDuration(t, time.Now().Add(ambassador.DefaultTimeout), dl, time.Second)

	if testing.Short() || raceEnabled {
		return // counts differ under the race detector
	}
	n := testing.AllocsPerRun(200, call)
	t.Logf("no caller deadline: %v allocs/request", n)
	assert.LessOrEqual(t, n, 1.0)
	// and that one allocation is the 1,024-byte size class: the guard
	// sends the first attempt's request without a copy of its own (with
	// one, it was 1,280).
	b := bytesPerRun(200, call)
	t.Logf("no caller deadline: %v bytes/request", b)
	assert.LessOrEqual(t, b, 1024.0)

	// A caller with a tighter deadline: the Stack adds nothing of its own.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req = req.WithContext(ctx)
	n = testing.AllocsPerRun(200, call)
	t.Logf("tighter caller deadline: %v allocs/request", n)
	assert.LessOrEqual(t, n, 3.0)
}

// bytesPerRun is testing.AllocsPerRun for bytes: the heap bytes allocated
// per call of f, averaged over runs calls, after one warm-up call.
func bytesPerRun(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

// The unary interceptor chain (retry → ratelimit → breaker) over an invoker
// that answers at once allocates once per call: the retry call state, which
// also holds the trailer the rate limiter reads. Issue 7's target is ≤ 3.
func TestUnaryChainAllocsPerCall(t *testing.T) {
	p, err := retry.New(retry.Config{})
	require.NoError(t, err)
	l, err := ratelimit.New(ratelimit.Config{RPS: 1e9})
	require.NoError(t, err)
	br, err := breaker.New(breaker.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close(); _ = br.Close() })
	ics := []grpc.UnaryClientInterceptor{p.UnaryClientInterceptor(), l.UnaryClientInterceptor(), br.UnaryClientInterceptor()}
	calls := 0
	inv := grpc.UnaryInvoker(func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		calls++
		return nil
	})
	for i := len(ics) - 1; i >= 0; i-- {
		ic, next := ics[i], inv
		inv = func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
			return ic(ctx, method, req, reply, cc, next, opts...)
		}
	}
	ctx := context.Background()
	call := func() {
		if err := inv(ctx, "/svc/M", nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	call()
	assert.Equal(t, 1, calls)
	if testing.Short() || raceEnabled {
		return
	}
	n := testing.AllocsPerRun(200, call)
	t.Logf("%v allocs/call", n)
	assert.LessOrEqual(t, n, 1.0)
}

// Below retry, the rate limiter reads the attempt's trailer that retry
// captures instead of adding a trailer option of its own: an upstream's
// grpc-retry-pushback-ms still pauses the key.
func TestUnaryChainRateLimitSeesPushbackThroughRetry(t *testing.T) {
	p, err := retry.New(retry.Config{})
	require.NoError(t, err)
	l, err := ratelimit.New(ratelimit.Config{RPS: 1e9})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	trailerOpts := 0
	inv := grpc.UnaryInvoker(func(_ context.Context, _ string, _, _ any, _ *grpc.ClientConn, opts ...grpc.CallOption) error {
		for _, o := range opts {
			if to, ok := o.(grpc.TrailerCallOption); ok {
				trailerOpts++
				*to.TrailerAddr = metadata.Pairs("grpc-retry-pushback-ms", "60000")
			}
		}
		return status.Error(codes.ResourceExhausted, "slow down")
	})
	rl := l.UnaryClientInterceptor()
	chained := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
		return rl(ctx, method, req, reply, cc, inv, opts...)
	}
	err = p.UnaryClientInterceptor()(context.Background(), "/svc/M", nil, nil, nil, chained)
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	assert.Equal(t, 1, trailerOpts, "one trailer option, retry's")
	snap := l.Snapshot()
	require.Len(t, snap, 1)
	assert.WithinDuration(t, time.Now().Add(time.Minute), snap[0].PausedUntil, 10*time.Second)
}
