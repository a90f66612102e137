// Command grpcbackend is the upstream of the gRPC proxy benchmark
// (benchmarks/proxy/grpc.sh): a gRPC server on a loopback address that
// serves the standard health service, answering SERVING to every Check.
//
// Usage:
//
//	grpcbackend -addr 127.0.0.1:18090
package main

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

func main() { loopback.Main("grpcbackend", "127.0.0.1:18090", run) }

func run(ctx context.Context, ln net.Listener) error {
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	return loopback.ServeUntil(ctx, func() error { return srv.Serve(ln) }, func() error {
		srv.GracefulStop()
		return nil
	})
}
