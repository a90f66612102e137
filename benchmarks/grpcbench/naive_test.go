package grpcbench_test

import (
	"context"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errNaiveLimited is what the naive interceptor returns when its limiter
// says no.
var errNaiveLimited = status.Error(codes.ResourceExhausted, "naive: rate limited")

// buildNaive is the unary interceptor users write by hand, the gRPC twin of
// httpbench's naive stack: backoff.Retry over an operation that asks an
// x/time/rate limiter, then runs the call through a gobreaker circuit
// breaker; UNAVAILABLE is retried (and counts as a failure), every other
// error is permanent.
func buildNaive(tb testing.TB) gstack {
	lim := rate.NewLimiter(rate.Limit(1e9), 1_000_000_000)
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "upstream", Timeout: 30 * time.Second})
	ic := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval = baseDelay
		b.MaxInterval = maxDelay
		op := func() error {
			if !lim.Allow() {
				return backoff.Permanent(errNaiveLimited)
			}
			_, err := cb.Execute(func() (struct{}, error) {
				return struct{}{}, invoker(ctx, method, req, reply, cc, opts...)
			})
			if err != nil && status.Code(err) != codes.Unavailable {
				return backoff.Permanent(err)
			}
			return err
		}
		return backoff.Retry(op, backoff.WithContext(backoff.WithMaxRetries(b, maxAttempts-1), ctx))
	}
	return gstack{unary: []grpc.UnaryClientInterceptor{ic}}
}
