package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// testService is a grpc service without generated code: one unary method
// whose behaviour the request's Service field selects.
type testService struct {
	calls    atomic.Int64
	canceled chan struct{} // closed-once signal: a sleeping call saw its context end
}

var testDesc = grpc.ServiceDesc{
	ServiceName: "test.Test",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Do",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(healthpb.HealthCheckRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(*testService).do(ctx, in.GetService())
		},
	}},
}

func (s *testService) do(ctx context.Context, what string) (*healthpb.HealthCheckResponse, error) {
	n := s.calls.Add(1)
	ok := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
	switch what {
	case "sleep":
		select {
		case <-ctx.Done():
			s.canceled <- struct{}{}
			return nil, ctx.Err()
		case <-time.After(10 * time.Second): // far beyond any deadline the tests set
			return ok, nil
		}
	case "flaky":
		if n == 1 {
			return nil, status.Error(codes.Unavailable, "first call fails")
		}
		return ok, nil
	case "trailer":
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-data-bin", string([]byte{0, 1, 2, 255})))
		return nil, status.Error(codes.Aborted, "custom message: ünïcode")
	}
	return ok, nil
}

// grpcUpstream starts a real grpc server with the health service and
// test.Test on a loopback port.
func grpcUpstream(t *testing.T) (string, *health.Server, *testService) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	ts := &testService{canceled: make(chan struct{}, 4)}
	s.RegisterService(&testDesc, ts)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String(), hs, ts
}

func grpcClient(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// h2cAmbassador starts the ambassador with one listener for a service
// "grpc" at upstream up over h2c, and returns the listener's address.
func h2cAmbassador(t *testing.T, up string) string {
	_, lis := serveOne(t, "grpc", up, `protocol: h2c`, "")
	return lis
}

func TestGRPCUnaryStreamingAndTrailers(t *testing.T) {
	up, hs, _ := grpcUpstream(t)
	cc := grpcClient(t, h2cAmbassador(t, up))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(cc)

	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	// Server streaming: Watch sends the current status, then every change.
	stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	msg, err := stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, msg.GetStatus())
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	msg, err = stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, msg.GetStatus())

	// Status, message and binary trailer metadata arrive intact.
	var trailer metadata.MD
	err = cc.Invoke(ctx, "/test.Test/Do", &healthpb.HealthCheckRequest{Service: "trailer"}, new(healthpb.HealthCheckResponse), grpc.Trailer(&trailer))
	st := status.Convert(err)
	assert.Equal(t, codes.Aborted, st.Code())
	assert.Equal(t, "custom message: ünïcode", st.Message())
	assert.Equal(t, []string{string([]byte{0, 1, 2, 255})}, trailer.Get("x-data-bin"))
}

func TestGRPCDeadlineBoundsUpstream(t *testing.T) {
	up, _, ts := grpcUpstream(t)
	cc := grpcClient(t, h2cAmbassador(t, up))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := cc.Invoke(ctx, "/test.Test/Do", &healthpb.HealthCheckRequest{Service: "sleep"}, new(healthpb.HealthCheckResponse))
	elapsed := time.Since(start)
	t.Logf("100ms grpc-timeout against a 10s upstream ended after %s", elapsed)
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	// Bounds far below the upstream's 10s, with room for a loaded machine
	// (the former 300ms/700ms were within reach of scheduling delays).
	assert.Less(t, elapsed, 2*time.Second, "the 100ms deadline, not the 10s upstream, ended the call")
	select {
	case <-ts.canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call was not cut short by the deadline")
	}
}

func TestGRPCTrailersOnlyUnavailableIsRetried(t *testing.T) {
	up, _, ts := grpcUpstream(t)
	_, lis := serveOne(t, "grpc", up, `protocol: h2c
retry: {base_delay: 1ms, max_delay: 5ms}`, "")
	cc := grpcClient(t, lis)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := cc.Invoke(ctx, "/test.Test/Do", &healthpb.HealthCheckRequest{Service: "flaky"}, new(healthpb.HealthCheckResponse))
	require.NoError(t, err)
	assert.Equal(t, int64(2), ts.calls.Load(), "one UNAVAILABLE, retried once")
}

func TestGRPCLocalRefusalsAreStatuses(t *testing.T) {
	up, _, _ := grpcUpstream(t)
	admin, lis, limited := freeAddr(t), freeAddr(t), freeAddr(t)
	runAmbassador(t, admin, fmt.Sprintf(`
admin: {address: %s}
listeners:
  - address: %s
    routes: [{host: elsewhere.internal, service: grpc}]
  - address: %s
    service: limited
services:
  grpc:
    discovery: {static: [%s]}
    protocol: h2c
  limited:
    discovery: {static: [%s]}
    protocol: h2c
    ratelimit: {rps: 0.2, burst: 1, scope: global}
`, admin, lis, limited, up, up))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	t.Run("no_route", func(t *testing.T) {
		var header, trailer metadata.MD
		err := grpcClient(t, lis).Invoke(ctx, "/test.Test/Do", &healthpb.HealthCheckRequest{}, new(healthpb.HealthCheckResponse),
			grpc.Header(&header), grpc.Trailer(&trailer))
		assert.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
		assert.Equal(t, []string{"no_route"}, append(header.Get("x-outbound-error"), trailer.Get("x-outbound-error")...))
	})
	t.Run("rate_limited", func(t *testing.T) {
		cc := grpcClient(t, limited)
		require.NoError(t, cc.Invoke(ctx, "/test.Test/Do", &healthpb.HealthCheckRequest{}, new(healthpb.HealthCheckResponse)))
		var header, trailer metadata.MD
		err := cc.Invoke(ctx, "/test.Test/Do", &healthpb.HealthCheckRequest{}, new(healthpb.HealthCheckResponse),
			grpc.Header(&header), grpc.Trailer(&trailer))
		assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		assert.Equal(t, []string{"rate_limited"}, append(header.Get("x-outbound-error"), trailer.Get("x-outbound-error")...))
	})
}

func TestWebSocketEcho(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	defer up.Close()
	_, lis := serveOne(t, "ws", hostOf(up.URL), "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hc := newClient(t)
	c, resp, err := websocket.Dial(ctx, "ws://"+lis+"/echo", &websocket.DialOptions{HTTPClient: hc})
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	defer c.CloseNow()
	for _, m := range []string{"hello", "through", "the ambassador"} {
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(m)))
		typ, got, err := c.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, websocket.MessageText, typ)
		assert.Equal(t, m, string(got))
	}
	require.NoError(t, c.Close(websocket.StatusNormalClosure, "bye"))
}

// An idle HTTP/2 client connection must not hold up the drain.
func TestSIGTERMWithIdleGRPCClient(t *testing.T) {
	up, _, _ := grpcUpstream(t)
	p, lis := serveOne(t, "grpc", up, `protocol: h2c`, `limits: {drain_timeout: 20s}`)
	cc := grpcClient(t, lis)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.exitCode(t, 15*time.Second))
	assert.Less(t, time.Since(start), 5*time.Second, "the idle connection was closed, not waited on")
}
