package proxy_test

import (
	"context"
	"net"
	"net/http"
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
)

// unavailableUpstream is a grpc server that answers every call UNAVAILABLE
// at once (trailers-only: HTTP 200, grpc-status in the headers) and counts
// the calls.
func unavailableUpstream(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var calls atomic.Int64
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
		calls.Add(1)
		return status.Error(codes.Unavailable, "overloaded")
	}))
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String(), &calls
}

// TestGRPCUnavailableTripsTheBreaker: gRPC proxied through the ambassador
// to an endpoint that answers UNAVAILABLE counts against that endpoint's
// breaker, as the same call through DialOptions' interceptors would; once
// it is open, its only endpoint is ejected and the ambassador answers
// UNAVAILABLE itself: no_endpoints on the ReverseProxy path (DESIGN.md:
// every endpoint ejected), circuit_open on the native gRPC path, where the
// refusal is the breaker interceptor's of ambassador.DialOptions.
func TestGRPCUnavailableTripsTheBreaker(t *testing.T) {
	up, calls := unavailableUpstream(t)
	addr, _ := oneServiceAmbassador(t, []string{up}, "protocol: h2c\nretry: {max_attempts: 1}\nbreaker: {consecutive_failures: 2, open_timeout: 1m}", "")
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
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
	assert.Contains(t, []string{proxy.ReasonNoEndpoints, proxy.ReasonCircuitOpen}, out.reason, "the ambassador's own refusal")
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
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })

	addr, _ := oneServiceAmbassador(t, []string{lis.Addr().String()}, "protocol: h2c\nretry: {}", "")
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	out, err := rawGRPCCall(ctx, c, addr, "/test.Any/Call", "5S")
	require.NoError(t, err)
	assert.Equal(t, grpcOutcome{status: "0"}, out)
	assert.Equal(t, int64(2), calls.Load(), "retried once")
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "after the pushback")
}
