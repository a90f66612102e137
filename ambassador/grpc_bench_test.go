package ambassador_test

import (
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
)

// BenchmarkDialOptionsCheck is a unary health Check through
// ambassador.DialOptions to two real loopback servers, with and without a
// breaker section: the breaker's cost per call where it runs, next to a
// real call's.
func BenchmarkDialOptionsCheck(b *testing.B) {
	a, _ := startHealth(b, codes.OK)
	c, _ := startHealth(b, codes.OK)
	for _, tc := range []struct {
		name string
		br   *breaker.Config
	}{{"no_breaker", nil}, {"breaker", &breaker.Config{}}} {
		b.Run(tc.name, func(b *testing.B) {
			opts, err := ambassador.DialOptions(ambassador.ServiceConfig{
				Name: "users", Discovery: discovery.Config{Static: []string{a, c}}, Breaker: tc.br,
			}, quietLogs)
			if err != nil {
				b.Fatal(err)
			}
			conn, err := grpc.NewClient("outbound:///users", opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := healthpb.NewHealthClient(conn)
			req := &healthpb.HealthCheckRequest{}
			ctx := b.Context()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := client.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
