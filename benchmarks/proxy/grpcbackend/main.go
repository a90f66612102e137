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
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "loopback host:port to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "grpcbackend:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ln, err := loopback.Listen(addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	srv.GracefulStop()
	return <-errc
}
