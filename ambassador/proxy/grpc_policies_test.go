package proxy_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/internal/testkit"
)

// TestGRPCUnavailableTripsTheBreaker: gRPC proxied through the ambassador
// to an endpoint that answers UNAVAILABLE counts against that endpoint's
// breaker, as the same call through DialOptions' interceptors would; once
// it is open, its only endpoint is ejected and the ambassador answers
// UNAVAILABLE itself with no_endpoints (DESIGN.md: every endpoint
// ejected), on the native gRPC path as on the ReverseProxy path.
func TestGRPCUnavailableTripsTheBreaker(t *testing.T) {
	up, calls := testkit.UnavailableGRPC(t)
	addr, _ := oneServiceAmbassador(t, []string{up}, "protocol: h2c\nretry: {max_attempts: 1}\nbreaker: {consecutive_failures: 2, open_timeout: 1m}", "")
	c := h2cClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 2 {
		out, err := rawGRPCCall(ctx, c, addr, "/test.Any/Call", "5S")
		require.NoError(t, err)
		assert.Equal(t, grpcOutcome{status: "14"}, out, "call %d: the upstream's own UNAVAILABLE", i)
	}
	out, err := rawGRPCCall(ctx, c, addr, "/test.Any/Call", "5S")
	require.NoError(t, err)
	assert.Equal(t, "14", out.status)
	assert.Equal(t, proxy.ReasonNoEndpoints, out.reason, "the ambassador's own refusal")
	assert.Equal(t, int64(2), calls.Load(), "the third call never reached the endpoint")
}

// TestGRPCPushbackRetried: an UNAVAILABLE carrying grpc-retry-pushback-ms
// is retried after the pushback, through the ambassador as through
// DialOptions (a gRPC call is retried by its code, whatever its HTTP verb).
func TestGRPCPushbackRetried(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var calls atomic.Int64
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		if calls.Add(1) == 1 {
			stream.SetTrailer(metadata.Pairs("grpc-retry-pushback-ms", "50"))
			return status.Error(codes.Unavailable, "come back in 50ms")
		}
		return nil
	}))
	testkit.ServeGRPC(t, srv, lis)

	addr, _ := oneServiceAmbassador(t, []string{lis.Addr().String()}, "protocol: h2c\nretry: {}", "")
	c := h2cClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	out, err := rawGRPCCall(ctx, c, addr, "/test.Any/Call", "5S")
	require.NoError(t, err)
	assert.Equal(t, grpcOutcome{status: "0"}, out)
	assert.Equal(t, int64(2), calls.Load(), "retried once")
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "after the pushback")
}

// TestNativeGRPCBreakerEjectsOneEndpoint: on the native gRPC path the
// breaker keys by endpoint, as on the HTTP path: of two endpoints, the one
// answering UNAVAILABLE is ejected after consecutive_failures (its own
// failures: the other's successes do not reset them) and later calls all
// go to the other, where a breaker keyed by the whole service kept sending
// every other call to the failing endpoint. (A call may be refused
// no_endpoints while the healthy endpoint's connection is still being
// made: grpc's balancer picks among ready connections only.)
func TestNativeGRPCBreakerEjectsOneEndpoint(t *testing.T) {
	bad, badCalls := testkit.UnavailableGRPC(t)
	good := &rawUpstreamSvc{}
	addr, _ := oneServiceAmbassador(t, []string{bad, startRawUpstream(t, good)}, "protocol: h2c\nretry: {max_attempts: 1}\nbreaker: {consecutive_failures: 2, open_timeout: 1m}", "")
	cc := rawClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in := []byte("x")
	okAfter := 0 // successes once the failing endpoint had failed twice
	for i := 0; i < 500 && okAfter < 20; i++ {
		var out []byte
		err := cc.Invoke(ctx, "/t.T/Unary", &in, &out)
		require.NoError(t, ctx.Err())
		if err == nil && badCalls.Load() >= 2 {
			okAfter++
		}
	}
	assert.Equal(t, 20, okAfter, "calls kept succeeding after the ejection")
	assert.Equal(t, int64(2), badCalls.Load(), "the ejected endpoint got no further call")
}

// A native call the caller cancels mid-stream is the caller's doing: the
// endpoint's breaker (consecutive_failures: 1) does not count it as a
// failure, so the only endpoint stays in the picks.
func TestNativeGRPCCallerCancelDoesNotEject(t *testing.T) {
	u := &rawUpstreamSvc{hold: make(chan struct{})}
	addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, u)}, "protocol: h2c\nbreaker: {consecutive_failures: 1, open_timeout: 1m}", "")
	cc := rawClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		sctx, scancel := context.WithCancel(ctx)
		st, err := cc.NewStream(sctx, &grpc.StreamDesc{ServerStreams: true}, "/t.T/Hold")
		require.NoError(t, err)
		in := []byte("x")
		require.NoError(t, st.SendMsg(&in))
		require.NoError(t, st.CloseSend())
		var out []byte
		require.NoError(t, st.RecvMsg(&out), "stream %d", i)
		scancel() // gone mid-stream, before "second"
		assert.Equal(t, codes.Canceled, status.Code(st.RecvMsg(&out)))
	}
	in, out := []byte("x"), []byte(nil)
	require.Eventually(t, func() bool { return u.calls.Load() == 3 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, cc.Invoke(ctx, "/t.T/Unary", &in, &out), "the endpoint was not ejected")
	assert.Equal(t, int64(4), u.calls.Load())
}

// A native gRPC call cut by the service's timeout, while the caller's own
// deadline is further off, is the endpoint's failure: an endpoint that
// takes calls and never answers is ejected after consecutive_failures,
// and the calls after go to the other one.
func TestNativeGRPCServiceTimeoutEjectsTheHungEndpoint(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var hung atomic.Int64
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		hung.Add(1)
		<-stream.Context().Done() // never answers
		return stream.Context().Err()
	}))
	testkit.ServeGRPC(t, srv, lis)
	good := &rawUpstreamSvc{}
	addr, _ := oneServiceAmbassador(t, []string{lis.Addr().String(), startRawUpstream(t, good)},
		"protocol: h2c\ntimeout: 200ms\nbreaker: {consecutive_failures: 2, open_timeout: 1m}", "")
	cc := rawClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in := []byte("x")
	okAfter := 0 // successes once the hung endpoint had been cut twice
	for i := 0; i < 200 && okAfter < 20; i++ {
		var out []byte
		err := cc.Invoke(ctx, "/t.T/Unary", &in, &out)
		require.NoError(t, ctx.Err())
		if err == nil && hung.Load() >= 2 {
			okAfter++
		}
	}
	assert.Equal(t, 20, okAfter, "calls kept succeeding after the ejection")
	assert.Equal(t, int64(2), hung.Load(), "the hung endpoint got no further call")
}

// Over HTTP as over gRPC: a request the service's timeout cut (504
// upstream_timeout) is the hung endpoint's failure, and after
// consecutive_failures every request goes to the other endpoint.
func TestServiceTimeoutEjectsTheHungHTTPEndpoint(t *testing.T) {
	var hung atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		<-r.Context().Done() // never answers
	}))
	t.Cleanup(hang.Close)
	addr, _ := oneServiceAmbassador(t, []string{hang.Listener.Addr().String(), named(t, "good")},
		"timeout: 200ms\nbreaker: {consecutive_failures: 2, open_timeout: 1m}", "")
	c := client(t)
	var codes []int
	for range 12 {
		code, _, _ := fetch(t, c, http.MethodGet, "http://"+addr+"/", "")
		codes = append(codes, code)
	}
	assert.Equal(t, int64(2), hung.Load(), "the hung endpoint got no further request (answers: %v)", codes)
	timeouts := 0
	for _, code := range codes {
		if code == http.StatusGatewayTimeout {
			timeouts++
		}
	}
	assert.Equal(t, 2, timeouts, "answers: %v", codes)
}
