package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// BenchmarkGRPCHop is one unary call through the ambassador to a grpc-go
// upstream, all in this process over loopback: on the native path, and on
// the ReverseProxy path (which host_header: preserve still takes). The
// allocations are the client's, the ambassador's and the upstream's
// together; the difference between the two is the ambassador's.
func BenchmarkGRPCHop(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		benchGRPCHop(b, parallel)
	}
}

func benchGRPCHop(b *testing.B, parallel bool) {
	for _, c := range []struct{ name, extra string }{
		{"native", "protocol: h2c\nretry: {}\nbreaker: {}"},
		{"reverseproxy", "protocol: h2c\nretry: {}\nbreaker: {}\nhost_header: preserve"},
	} {
		name := c.name
		if parallel {
			name += "/c32"
		} else {
			name += "/c1"
		}
		b.Run(name, func(b *testing.B) {
			addr := benchAmbassador(b, c.extra)
			cc := rawClient(b, addr)
			in, out := []byte("ping"), []byte(nil)
			ctx := context.Background()
			require.NoError(b, cc.Invoke(ctx, "/t.T/Unary", &in, &out))
			b.ReportAllocs()
			b.ResetTimer()
			if parallel {
				b.SetParallelism(16) // 32 calls in flight on 2 cores, as grpc.sh's -c 32
				b.RunParallel(func(pb *testing.PB) {
					in, out := []byte("ping"), []byte(nil)
					for pb.Next() {
						if err := cc.Invoke(ctx, "/t.T/Unary", &in, &out); err != nil {
							b.Error(err)
							return
						}
					}
				})
				return
			}
			for b.Loop() {
				if err := cc.Invoke(ctx, "/t.T/Unary", &in, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchAmbassador runs an ambassador with one h2c service (extra: its
// further keys, one a line) in front of a raw upstream until b ends.
func benchAmbassador(b *testing.B, extra string) string {
	up := startRawUpstream(b, &rawUpstreamSvc{})
	svc := "    discovery: {static: [" + up + "]}\n    " + strings.ReplaceAll(extra, "\n", "\n    ") + "\n"
	cfg, err := proxy.ParseConfig([]byte(fmt.Sprintf("admin: {address: 127.0.0.1:0}\nlisteners: [{address: 127.0.0.1:0, service: up}]\nservices:\n  up:\n%s", svc)), b.TempDir())
	require.NoError(b, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	return s.Addrs()[0].String()
}
