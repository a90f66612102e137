package floor_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	sinkTime time.Time
	sinkBool bool
	sinkReq  *http.Request
	sinkErr  error
)

func newBreaker() *gobreaker.CircuitBreaker[struct{}] {
	return gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "floor"})
}

// A limit no benchmark reaches: every call takes a token, none waits.
func newLimiter() *rate.Limiter { return rate.NewLimiter(1e9, 1e9) }

type ctxKey struct{}

// copyRequest is what a layer pays to send req under a context of its own
// with a URL it may rewrite: the request copy and the URL copy.
func copyRequest(req *http.Request, ctx context.Context) *http.Request {
	r := req.WithContext(ctx)
	u := new(url.URL)
	*u = *req.URL
	r.URL = u
	return r
}

var canned = &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}

// floorHTTP is the least a retry → ratelimit → breaker stack on these
// dependencies does per request that passes every policy.
func floorHTTP(cb *gobreaker.CircuitBreaker[struct{}], lim *rate.Limiter, req *http.Request, ctx context.Context) (*http.Response, error) {
	r := copyRequest(req, ctx)
	if !lim.AllowN(time.Now(), 1) {
		return nil, gobreaker.ErrOpenState // not reached: nothing exceeds the limit
	}
	var resp *http.Response
	_, err := cb.Execute(func() (struct{}, error) {
		resp = canned
		sinkReq = r
		return struct{}{}, nil
	})
	return resp, err
}

// floorGRPC is the least a retry → ratelimit → breaker chain on these
// dependencies does per unary call that passes every policy.
func floorGRPC(cb *gobreaker.CircuitBreaker[struct{}], lim *rate.Limiter, invoke func() error) error {
	if !lim.AllowN(time.Now(), 1) {
		return gobreaker.ErrOpenState
	}
	_, err := cb.Execute(func() (struct{}, error) { return struct{}{}, invoke() })
	return err
}

// The floors do what they claim: every call passes the limiter and the
// breaker, and the breaker counts each one.
func TestFloorsRunEveryLayer(t *testing.T) {
	cb, lim := newBreaker(), newLimiter()
	req, err := http.NewRequest(http.MethodGet, "http://users/x", nil)
	require.NoError(t, err)
	ctx := context.WithValue(context.Background(), ctxKey{}, 1)
	for range 10 {
		resp, err := floorHTTP(cb, lim, req, ctx)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.NotSame(t, req, sinkReq, "the caller's request is copied")
		assert.NotSame(t, req.URL, sinkReq.URL, "and its URL")
		assert.Equal(t, 1, sinkReq.Context().Value(ctxKey{}))
	}
	calls := 0
	for range 10 {
		require.NoError(t, floorGRPC(cb, lim, func() error { calls++; return nil }))
	}
	assert.Equal(t, 10, calls)
	assert.EqualValues(t, 20, cb.Counts().TotalSuccesses)
}

func BenchmarkClock(b *testing.B) {
	for b.Loop() {
		sinkTime = time.Now()
	}
}

func BenchmarkGobreakerExecute(b *testing.B) {
	cb := newBreaker()
	fn := func() (struct{}, error) { return struct{}{}, nil }
	b.ReportAllocs()
	for b.Loop() {
		_, sinkErr = cb.Execute(fn)
	}
}

func BenchmarkRateAllow(b *testing.B) {
	lim := newLimiter()
	b.ReportAllocs()
	for b.Loop() {
		sinkBool = lim.Allow()
	}
}

func BenchmarkRateAllowN(b *testing.B) {
	lim := newLimiter()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		sinkBool = lim.AllowN(now, 1)
	}
}

func BenchmarkRequestCopy(b *testing.B) {
	req, err := http.NewRequest(http.MethodGet, "http://users/x", nil)
	require.NoError(b, err)
	ctx := context.WithValue(context.Background(), ctxKey{}, 1)
	b.ReportAllocs()
	for b.Loop() {
		sinkReq = copyRequest(req, ctx)
	}
}

func BenchmarkFloorGRPC(b *testing.B) {
	cb, lim := newBreaker(), newLimiter()
	invoke := func() error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		sinkErr = floorGRPC(cb, lim, invoke)
	}
}

func BenchmarkFloorHTTP(b *testing.B) {
	cb, lim := newBreaker(), newLimiter()
	req, err := http.NewRequest(http.MethodGet, "http://users/x", nil)
	require.NoError(b, err)
	ctx := context.WithValue(context.Background(), ctxKey{}, 1)
	b.ReportAllocs()
	for b.Loop() {
		_, sinkErr = floorHTTP(cb, lim, req, ctx)
	}
}
