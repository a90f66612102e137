package transcodebench_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// upstream serves grpc.health.v1 (service "users" SERVING) and server
// reflection on 127.0.0.1.
func upstream(tb testing.TB) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("users", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	tb.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

// ambassador runs the process with one transcode listener (reflection)
// for the upstream and returns the listener's address.
func ambassador(tb testing.TB, up string) string {
	cfg, err := proxy.ParseConfig([]byte("admin: {address: 127.0.0.1:0}\n"+
		"listeners: [{address: 127.0.0.1:0, service: health, transcode: {}}]\n"+
		"services:\n  health: {protocol: h2c, discovery: {static: ["+up+"]}}\n"), "")
	require.NoError(tb, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		tb.Fatalf("Run: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return s.Addrs()[0].String()
}

const checkBody = `{"service":"users"}`

// jsonCheck makes one JSON Check through the ambassador.
func jsonCheck(c *http.Client, url string) error {
	resp, err := c.Post(url, "application/json", strings.NewReader(checkBody))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"SERVING"`) {
		return &unexpected{resp.StatusCode, string(b)}
	}
	return nil
}

type unexpected struct {
	code int
	body string
}

func (e *unexpected) Error() string { return http.StatusText(e.code) + ": " + e.body }

// BenchmarkCheck: Check calls/s through the ambassador, JSON transcoded
// vs native gRPC, from 8 goroutines per core (RunParallel), one upstream.
func BenchmarkCheck(b *testing.B) {
	addr := ambassador(b, upstream(b))
	b.Run("json", func(b *testing.B) {
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		url := "http://" + addr + "/grpc.health.v1.Health/Check"
		require.NoError(b, jsonCheck(c, url)) // descriptors fetched before timing
		b.SetParallelism(8)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := jsonCheck(c, url); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	})
	b.Run("grpc", func(b *testing.B) {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(b, err)
		defer cc.Close()
		hc := healthpb.NewHealthClient(cc)
		req := &healthpb.HealthCheckRequest{Service: "users"}
		_, err = hc.Check(context.Background(), req)
		require.NoError(b, err)
		b.SetParallelism(8)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := hc.Check(context.Background(), req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	})
}
