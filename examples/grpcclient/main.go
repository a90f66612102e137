// Command grpcclient shows the in-process gRPC use of package ambassador:
// DialOptions gives a grpc client the retry, rate-limit and breaker
// interceptors and the discovery resolver of one service in a few lines.
//
// It starts two local grpc servers with the standard health service, dials
// them as the logical service "users" through the target outbound:///users,
// makes a few calls and prints what came back.
//
//	go run ./examples/grpcclient -calls 4
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/retry"
)

var calls = flag.Int("calls", 4, "number of health checks to send")

func main() {
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "grpcclient:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var addrs []string
	for range 2 {
		addr, stop, err := startServer()
		if err != nil {
			return err
		}
		defer stop()
		addrs = append(addrs, addr)
	}

	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// The whole client side: one ServiceConfig, DialOptions, NewClient.
	opts, err := ambassador.DialOptions(ambassador.ServiceConfig{
		Name:      "users",
		Protocol:  ambassador.ProtocolH2C,
		Discovery: discovery.Config{Static: addrs},
		Timeout:   2 * time.Second,
		Retry:     &retry.Config{MaxAttempts: 3},
		Breaker:   &breaker.Config{ConsecutiveFailures: 5},
	}, ambassador.WithLogger(quiet))
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient("outbound:///users", opts...)
	if err != nil {
		return err
	}
	defer conn.Close()

	client := healthpb.NewHealthClient(conn)
	for i := range *calls {
		var p peer.Peer
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "users"}, grpc.Peer(&p))
		if err != nil {
			return fmt.Errorf("call %d: %w", i+1, err)
		}
		fmt.Printf("call %d: %s from %v\n", i+1, resp.GetStatus(), p.Addr)
	}
	return nil
}

// startServer runs a grpc server with the health service on a free
// loopback port.
func startServer() (addr string, stop func(), err error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("users", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	return lis.Addr().String(), func() { srv.Stop(); <-done }, nil
}
