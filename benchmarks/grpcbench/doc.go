// Package grpcbench measures what a unary gRPC call pays for resilience:
// outbound's interceptor chain (retry → ratelimit → breaker) side by side
// with go-grpc-middleware v2's retry interceptor, grpc-go's built-in retry
// (service config retryPolicy) and failsafe-go's failsafegrpc interceptor.
//
// # What is measured
//
//   - instant: the interceptor called directly with an invoker that returns
//     at once, so the figure is the interceptor's own cost; grpc-go's
//     built-in retry lives inside the ClientConn, not in an interceptor, and
//     has no row here;
//   - loopback: a grpc.health.v1 Check against a real grpc server on
//     127.0.0.1 through a ClientConn carrying the contender.
//
// Each runs serially and under b.RunParallel.
//
// # Checks before timing
//
// The tests prove that each contender retries UNAVAILABLE once and then
// succeeds (two upstream calls), on the instant invoker and on the real
// server, so no benchmark times a stack that does nothing.
//
// The code lives in the package's _test.go files; this file only documents it.
package grpcbench
