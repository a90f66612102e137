package grpcbench_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafegrpc"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	grpcretry "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

const (
	maxAttempts = 3
	baseDelay   = time.Millisecond
	maxDelay    = 10 * time.Millisecond
)

// gstack is one built contender: its interceptors, outermost first (none
// for bare), and dial options (grpc-go's built-in retry is configured there).
type gstack struct {
	unary []grpc.UnaryClientInterceptor
	dial  []grpc.DialOption
}

type contender struct {
	name string
	// retries: the contender must turn UNAVAILABLE-then-OK into OK.
	retries bool
	// inConn: the contender lives in the ClientConn, so it has no row on the
	// instant invoker.
	inConn bool
	build  func(tb testing.TB) gstack
}

func fatalIf(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("building contender: %v", err)
	}
}

// builtinServiceConfig enables grpc-go's own retry for the health service
// with the same shape as every other contender.
const builtinServiceConfig = `{"methodConfig": [{
  "name": [{"service": "grpc.health.v1.Health"}],
  "retryPolicy": {
    "maxAttempts": 3,
    "initialBackoff": "0.001s",
    "maxBackoff": "0.01s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"]
  }
}]}`

func contenders() []contender {
	return []contender{
		{name: "bare", build: func(tb testing.TB) gstack { return gstack{} }},
		{name: "outbound", retries: true, build: buildOutbound},
		{name: "go-grpc-middleware-retry", retries: true, build: func(tb testing.TB) gstack {
			return gstack{unary: []grpc.UnaryClientInterceptor{grpcretry.UnaryClientInterceptor(
				grpcretry.WithMax(maxAttempts-1),
				grpcretry.WithBackoff(grpcretry.BackoffExponentialWithJitterBounded(baseDelay, 0.1, maxDelay)),
				grpcretry.WithCodes(codes.Unavailable),
			)}}
		}},
		{name: "grpc-builtin-retry", retries: true, inConn: true, build: func(tb testing.TB) gstack {
			return gstack{dial: []grpc.DialOption{grpc.WithDefaultServiceConfig(builtinServiceConfig)}}
		}},
		{name: "failsafe-go", retries: true, build: func(tb testing.TB) gstack {
			rp := failsafegrpc.NewRetryPolicyBuilder[any]().
				WithMaxAttempts(maxAttempts).
				WithBackoff(baseDelay, maxDelay).
				Build()
			cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(5).WithDelay(30 * time.Second).Build()
			rl := ratelimiter.NewBursty[any](1_000_000_000, time.Second)
			return gstack{unary: []grpc.UnaryClientInterceptor{failsafegrpc.NewUnaryClientInterceptor[any](rp, cb, rl)}}
		}},
		{name: "naive", retries: true, build: buildNaive},
	}
}

// buildOutbound is outbound's recommended unary chain: retry outermost, then
// the rate limiter (every attempt spends a token), then the breaker.
func buildOutbound(tb testing.TB) gstack {
	p, err := retry.New(retry.Config{MaxAttempts: maxAttempts, BaseDelay: baseDelay, MaxDelay: maxDelay})
	fatalIf(tb, err)
	l, err := ratelimit.New(ratelimit.Config{RPS: 1e9})
	fatalIf(tb, err)
	br, err := breaker.New(breaker.Config{})
	fatalIf(tb, err)
	tb.Cleanup(func() {
		_ = l.Close()
		_ = br.Close()
	})
	return gstack{unary: []grpc.UnaryClientInterceptor{p.UnaryClientInterceptor(), l.UnaryClientInterceptor(), br.UnaryClientInterceptor()}}
}

// bind returns an invoker that runs ics (outermost first) around invoker.
// The per-layer closures are built once, so the instant benchmarks time the
// interceptors themselves, not the chaining (inside a ClientConn grpc-go
// chains with grpc.WithChainUnaryInterceptor, which the loopback benchmarks
// use).
func bind(ics []grpc.UnaryClientInterceptor, invoker grpc.UnaryInvoker) grpc.UnaryInvoker {
	next := invoker
	for i := len(ics) - 1; i >= 0; i-- {
		ic, inner := ics[i], next
		next = func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
			return ic(ctx, method, req, reply, cc, inner, opts...)
		}
	}
	return next
}

// idleConn is a real ClientConn that is never used to send: interceptors
// that read cc (its target, for keys) get a genuine value.
func idleConn(tb testing.TB) *grpc.ClientConn {
	cc, err := grpc.NewClient("passthrough:///127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

const checkMethod = "/grpc.health.v1.Health/Check"

// flakyHealth answers UNAVAILABLE to its first `fail` Checks, then SERVING.
type flakyHealth struct {
	healthpb.UnimplementedHealthServer
	fail  int64
	count atomic.Int64
}

func (f *flakyHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if f.count.Add(1) <= f.fail {
		return nil, status.Error(codes.Unavailable, "flaky: try again")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// startServer runs a grpc server with hs as its health service on
// 127.0.0.1:0 and returns its address; hs nil means grpc's own health server.
func startServer(tb testing.TB, hs healthpb.HealthServer) string {
	tb.Helper()
	if hs == nil {
		hs = health.NewServer()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return ln.Addr().String()
}

// dial opens a ClientConn to addr carrying the contender.
func dial(tb testing.TB, addr string, s gstack) healthpb.HealthClient {
	tb.Helper()
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, s.dial...)
	if len(s.unary) > 0 {
		opts = append(opts, grpc.WithChainUnaryInterceptor(s.unary...))
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cc.Close() })
	return healthpb.NewHealthClient(cc)
}
