package testkit

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// GRPCUpstream starts a grpc server with the health service on loopback;
// service "users" is SERVING. Calls to unknown methods block until their
// deadline.
func GRPCUpstream(t *testing.T, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	opts = append(opts, grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		<-stream.Context().Done()
		return status.FromContextError(stream.Context().Err()).Err()
	}))
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("users", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	ServeGRPC(t, srv, lis)
	return lis.Addr().String()
}

// HeaderOfSize returns a server option whose interceptor answers a call whose metadata
// has "x-size: N" with a response header "x-big" of N bytes, for tests of
// the bound on response metadata.
func HeaderOfSize() grpc.ServerOption {
	return grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("x-size"); len(v) == 1 {
			n, err := strconv.Atoi(v[0])
			if err != nil {
				return nil, err
			}
			if err := grpc.SetHeader(ctx, metadata.Pairs("x-big", strings.Repeat("a", n))); err != nil {
				return nil, err
			}
		}
		return h(ctx, req)
	})
}

// HeaderBound calls Health/Check on conn, whose upstream runs HeaderOfSize,
// asking for response metadata just under bound (it must arrive whole) and
// then twice bound, and returns the second call's error.
func HeaderBound(t *testing.T, conn *grpc.ClientConn, bound int) error {
	t.Helper()
	check := func(n int) (metadata.MD, error) {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-size", strconv.Itoa(n))
		var hdr metadata.MD
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "users"}, grpc.Header(&hdr))
		return hdr, err
	}
	under := bound - 4<<10
	hdr, err := check(under)
	require.NoError(t, err)
	require.Len(t, hdr.Get("x-big"), 1)
	require.Len(t, hdr.Get("x-big")[0], under, "metadata under the bound arrives whole")
	_, err = check(2 * bound)
	return err
}

// UnavailableGRPC starts a grpc server on loopback that answers every call
// UNAVAILABLE at once, without reading the request (trailers-only: HTTP
// 200, grpc-status in the headers), and counts the calls.
func UnavailableGRPC(t testing.TB) (string, *atomic.Int64) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	calls := new(atomic.Int64)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
		calls.Add(1)
		return status.Error(codes.Unavailable, "overloaded")
	}))
	ServeGRPC(t, srv, lis)
	return lis.Addr().String(), calls
}

// ServeGRPC serves srv on lis until the test ends, then stops it and waits
// for Serve to return.
func ServeGRPC(t testing.TB, srv *grpc.Server, lis net.Listener) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
}
