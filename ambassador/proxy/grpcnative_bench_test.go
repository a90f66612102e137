package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// BenchmarkGRPCHop is one unary call through the ambassador to a grpc-go
// upstream, all in this process over loopback: on the native path (with
// the access log, and without: native-nolog), on the ReverseProxy path
// (which host_header: preserve still takes), and through floor, a bare
// grpc-go pass-through proxy with no policies (grpc-go's own transport on
// both sides: what the native path cannot go below). The allocations are
// the client's, the proxy's and the upstream's together; the differences
// between the cases are the proxies'. cpu-ns/op is the CPU time of the
// whole process (client, proxy and upstream) per call: on a shared machine
// it moves much less than ns/op.
func BenchmarkGRPCHop(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		benchGRPCHop(b, parallel)
	}
}

func benchGRPCHop(b *testing.B, parallel bool) {
	for _, c := range []struct {
		name, extra string
		opts        []proxy.Option
	}{
		{"native", "protocol: h2c\nretry: {}\nbreaker: {}", nil},
		{"native-nolog", "protocol: h2c\nretry: {}\nbreaker: {}", []proxy.Option{proxy.WithAccessLog(slog.New(slog.DiscardHandler))}},
		{"reverseproxy", "protocol: h2c\nretry: {}\nbreaker: {}\nhost_header: preserve", nil},
		{"floor", "", nil},
	} {
		name := c.name
		if parallel {
			name += "/c32"
		} else {
			name += "/c1"
		}
		b.Run(name, func(b *testing.B) {
			var addr string
			if c.name == "floor" {
				addr = startFloorProxy(b, startRawUpstream(b, &rawUpstreamSvc{}))
			} else {
				addr = benchAmbassador(b, c.extra, c.opts...)
			}
			cc := rawClient(b, addr)
			in, out := []byte("ping"), []byte(nil)
			ctx := context.Background()
			require.NoError(b, cc.Invoke(ctx, "/t.T/Unary", &in, &out))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			defer func() { b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op") }()
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
func benchAmbassador(b *testing.B, extra string, opts ...proxy.Option) string {
	up := startRawUpstream(b, &rawUpstreamSvc{})
	svc := "    discovery: {static: [" + up + "]}\n    " + strings.ReplaceAll(extra, "\n", "\n    ") + "\n"
	cfg, err := proxy.ParseConfig([]byte(fmt.Sprintf("admin: {address: 127.0.0.1:0}\nlisteners: [{address: 127.0.0.1:0, service: up}]\nservices:\n  up:\n%s", svc)), b.TempDir())
	require.NoError(b, err)
	s, err := proxy.NewServer(cfg, append([]proxy.Option{proxy.WithLogger(quietLogger())}, opts...)...)
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

// startFloorProxy runs, until b ends, the floor of BenchmarkGRPCHop: a
// grpc.Server whose UnknownServiceHandler forwards every call to upstream
// as a full-duplex stream of the same method on one grpc.ClientConn, the
// messages undecoded, the caller's on a goroutine of their own, with no
// policy, metric or log. It returns its address.
func startFloorProxy(b *testing.B, upstream string) string {
	cc, err := grpc.NewClient(upstream, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(bytesCodec{})))
	require.NoError(b, err)
	gs := grpc.NewServer(grpc.ForceServerCodecV2(bytesCodec{}), grpc.NumStreamWorkers(64),
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
			method, _ := grpc.MethodFromServerStream(ss)
			ctx, cancel := context.WithCancel(ss.Context())
			defer cancel()
			in, _ := metadata.FromIncomingContext(ctx)
			out := metadata.MD{}
			for k, v := range in {
				if k[0] != ':' && k != "content-type" && k != "user-agent" && k != "te" {
					out[k] = v
				}
			}
			cs, err := cc.NewStream(metadata.NewOutgoingContext(ctx, out), bidiDesc, method)
			if err != nil {
				return err
			}
			go func() {
				for {
					var m []byte
					if err := ss.RecvMsg(&m); err != nil {
						if errors.Is(err, io.EOF) {
							_ = cs.CloseSend()
						} else {
							cancel()
						}
						return
					}
					if cs.SendMsg(&m) != nil {
						return
					}
				}
			}()
			for {
				var m []byte
				if err := cs.RecvMsg(&m); err != nil {
					ss.SetTrailer(cs.Trailer())
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
				if err := ss.SendMsg(&m); err != nil {
					return err
				}
			}
		}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(ln)
	}()
	b.Cleanup(func() {
		gs.Stop()
		<-done
		_ = cc.Close()
	})
	return ln.Addr().String()
}
