// Package floor measures what the building blocks of a resilient call cost
// on the machine at hand, before any policy logic: a clock read, one
// gobreaker Execute, one x/time/rate token, the request copy a middleware
// makes to carry a context of its own, and the smallest compositions of
// them that a retry → ratelimit → breaker chain built on these
// dependencies must run per call.
//
// # Why
//
// Issue 7 sets absolute time targets for outbound's stacks (≤ 500 ns over
// bare for the HTTP stack, ≤ 300 ns for the gRPC chain). These benchmarks
// say how much of such a budget the dependencies DESIGN.md chose take on
// their own: the floor no stack built on them can go below. On a virtual
// machine where a clock read costs 70 ns or more, gobreaker's two reads per
// call are a large part of it.
//
// # What is measured
//
//   - Clock: time.Now.
//   - GobreakerExecute: a closed gobreaker/v2 CircuitBreaker running a
//     function that returns at once (two clock reads, two lock pairs).
//   - RateAllow: an x/time/rate Limiter with a rate nothing exceeds, Allow
//     (reads the clock) and AllowN with a reading passed in.
//   - RequestCopy: http.Request.WithContext plus a URL copy, what a layer
//     pays to send a request under a context of its own with a host it may
//     rewrite, without touching the caller's request.
//   - FloorGRPC: per call, one clock read shared by the limiter, AllowN and
//     gobreaker's Execute around an invoker that returns at once.
//   - FloorHTTP: per request, the request copy, one clock read shared by the
//     limiter, AllowN and Execute around a RoundTripper that returns a
//     canned response.
//
// The code lives in the package's _test.go files; this file only documents
// it.
package floor
