package grpcbench_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func instantInvoker(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
	return nil
}

// BenchmarkGRPCInstant is the interceptor's own cost per unary call.
func BenchmarkGRPCInstant(b *testing.B) {
	for _, c := range contenders() {
		if c.inConn {
			continue
		}
		b.Run(c.name+"/serial", func(b *testing.B) {
			inv, cc := bind(c.build(b).unary, instantInvoker), idleConn(b)
			ctx := context.Background()
			req, reply := &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := inv(ctx, checkMethod, req, reply, cc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			inv, cc := bind(c.build(b).unary, instantInvoker), idleConn(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, reply := &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}
				for pb.Next() {
					if err := inv(ctx, checkMethod, req, reply, cc); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGRPCLoopback is a health Check against a real grpc server on
// 127.0.0.1 through a ClientConn carrying each contender.
func BenchmarkGRPCLoopback(b *testing.B) {
	addr := startServer(b, nil)
	for _, c := range contenders() {
		b.Run(c.name+"/serial", func(b *testing.B) {
			client := dial(b, addr, c.build(b))
			ctx := context.Background()
			req := &healthpb.HealthCheckRequest{}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := client.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			client := dial(b, addr, c.build(b))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := &healthpb.HealthCheckRequest{}
				for pb.Next() {
					if _, err := client.Check(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
