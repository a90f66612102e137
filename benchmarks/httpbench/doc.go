// Package httpbench measures what an outbound HTTP call pays for resilience:
// outbound's policies, alone and as the full stack, side by side with the
// libraries users would pick instead.
//
// # What is measured
//
// Every contender is an http.RoundTripper built over the same base transport.
// Two bases are used:
//
//   - noop: returns a fresh canned 200 with http.NoBody at once, so the
//     figure is the middleware's own cost per call;
//   - loopback: a keep-alive http.Transport to a server on 127.0.0.1, so the
//     figure is what the middleware adds to a real, cheap round trip.
//
// The contenders are: bare (the base alone); outbound's retry, ratelimit
// (rps 1e9), discovery (3 static endpoints) and breaker, each alone; the
// full outbound stack (retry → ratelimit → discovery → breaker) with limits
// so high nothing is refused; failsafe-go's failsafehttp with a retry policy,
// a circuit breaker and a rate limiter; hashicorp/go-retryablehttp; and the
// "naive" stack users hand-write from gobreaker, x/time/rate and backoff.
// Each runs serially and under b.RunParallel.
//
// Refusal benchmarks measure the cost of saying no: a breaker that is open,
// a limiter with no token, a retry budget that is spent.
//
// # Checks before timing
//
// A benchmark of a stack that does nothing is worthless, so the tests of
// this package prove, against a real loopback server, that every contender
// that claims to retry turns an upstream 503-then-200 into a 200 after
// exactly two upstream requests, that the others pass a 503 through after
// one, and that each refusal benchmark really is refused.
//
// # Running
//
//	cd benchmarks && go test -run='^$' -bench=. -benchmem -count=6 ./httpbench | tee new.txt
//
// The code lives in the package's _test.go files; this file only documents it.
package httpbench
