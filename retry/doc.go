// Package retry sends failed outbound calls again — safely: bodies are
// replayed byte for byte, discarded responses are drained and closed,
// non-idempotent requests are not sent twice, and a retry budget keeps an
// outage from turning into a retry storm.
//
// # What it protects against
//
// Transient failures: a connection that could not be made (a failed or
// unverified TLS handshake included), an HTTP/2
// stream the server refused, a connection reset before the response, a
// 502/503/504 from a gateway, a gRPC UNAVAILABLE, a slow attempt cut by a
// per-try timeout. It also hedges: with hedge.delay set, a slow idempotent
// request gets an extra copy and the first response wins.
//
// # Where it sits
//
// Retry is the outermost layer of an outbound stack: it owns the logical
// request, and every attempt goes down through rate limiting (retries
// spend tokens too), discovery (which picks an endpoint not yet tried —
// the attempt number and the endpoints tried travel in the attempt's
// context) and the circuit breaker. A layer below that refuses the request
// locally (breaker open, rate limited, no endpoints) is never retried with
// backoff: its error is returned at once.
//
// # Defaults
//
// The zero Config is the default policy: 3 attempts; exponential backoff
// with ±50% jitter from 25ms, each delay capped at 250ms (from
// cenkalti/backoff's schedule, one per request, never past the request's
// deadline); retried conditions connect-failure, refused-stream, reset and
// gateway-error; gRPC code UNAVAILABLE; no per-try timeout; Retry-After (on
// 429 and 503) and grpc-retry-pushback-ms waited out up to 30s; bodies
// without GetBody buffered up to 1MiB; a budget of 0.2 retries per request
// plus 10 per second over a 10s window; no hedging.
//
// Validate bounds every value, so that no config turns one request into
// thousands of attempts or overflows a computation: max_attempts 1 to 10
// (MaxMaxAttempts), hedge.max_extra at most 10, every duration at most 1h
// (MaxDuration), budget.ttl 0 or at least 10ms, budget.min_per_second at
// most 1e6, max_body_buffer at most 256MiB. Each problem is a *FieldError
// naming its key, joined with errors.Join; errors.As finds them.
//
// Idempotent requests (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or any
// request with an Idempotency-Key header) are retried under every
// configured condition. Others (POST, PATCH, ...) only when the request
// never left (connect-failure, refused-stream), unless
// retry_non_idempotent is set. A per-try timeout is retried whatever
// retry_on says (for idempotent requests). A body larger than
// max_body_buffer is streamed once and the request is not retried.
// An attempt that failed because reading the caller's request body failed
// (a malformed chunked body, an upload the client aborted, a reader that
// broke) is the caller's failure, whatever error the transport made of it:
// it is returned at once with outcome not_retryable, never re-sent, even
// with GetBody.
//
// # Errors and outcomes
//
// Status codes are never errors: after the last attempt the last response
// is returned as it came, body unread. When the budget is spent the last
// response is returned at once; without one, the last error wrapped with
// ErrBudgetExhausted. A cancelled or expired caller context stops at once
// and returns an error matching the context's error with errors.Is.
//
// Every attempt is counted once in the counter outbound.retry.attempts
// with attribute outcome: success (the answer returned, whatever its
// status, when it matched no retried condition), retried (failed, another
// attempt follows), exhausted (no attempts or time left), budget_exhausted,
// not_retryable (failed but may not be sent again), hedged (an extra hedge
// copy; the original attempt that loses to a hedge counts as retried).
// WithService adds attribute service. Each attempt is an event
// "outbound.retry.attempt" on the caller's span with outbound.attempt,
// outbound.endpoint and, for re-sent attempts, http.request.resend_count;
// with WithTracerProvider each attempt is a child span of that name with
// the same attributes instead.
//
// Discarded responses are drained (at most 64 KiB) and closed so their
// connection is reused. Tests and simulations can replace the clock that
// times backoff and Retry-After waits with WithClock (see below).
//
// # Clock, logger and Close
//
// retry, ratelimit, breaker and discovery take the same three hooks; plain
// data belongs in Config. WithClock replaces the wall clock with a Clock
// (Now, and Sleep that ends early with ctx); in this package it reads the
// time (Retry-After dates, the budget window) and waits out backoff and
// Retry-After delays; hedge delays and per-try timeouts use real timers.
// WithLogger sets the logger for retries (Debug); without it the Policy logs
// nothing, and never writes to slog.Default(). Close stops the goroutines
// the Policy started and waits for them; it is safe to call more than once
// and returns nil or the first error. A Policy starts none, so its Close
// returns nil.
//
// # Concurrency
//
// A Policy is safe for concurrent use. Its RoundTripper, its interceptors
// and its hedges share one budget. Hedged attempts each run in their own
// goroutine with their own context; losers are cancelled, drained and
// closed in the background, and the winner's context is cancelled only
// when its body is closed.
//
// # HTTP and gRPC
//
// The RoundTripper retries HTTP requests. A gRPC-over-HTTP/2 response that
// is trailers-only (Grpc-Status in the headers) with a code in
// retriable_grpc_codes is retried like a gateway error, whatever the
// method; a gRPC response whose stream has begun is never retried.
//
// UnaryClientInterceptor retries unary calls. StreamClientInterceptor
// retries server-streaming calls only until the first response message
// arrives (the request message is kept, by reference, and sent again on
// the new stream); afterwards the stream is committed. Client-streaming
// and bidirectional calls pass through unretried. A caller that abandons a
// server stream without reading it to the end should cancel its context,
// as grpc requires anyway.
//
// # Example
//
//	p, err := retry.New(retry.Config{MaxAttempts: 3, PerTryTimeout: time.Second})
//	if err != nil {
//		return err
//	}
//	client := &http.Client{Transport: p.RoundTripper(http.DefaultTransport)}
//	conn, err := grpc.NewClient(target, grpc.WithUnaryInterceptor(p.UnaryClientInterceptor()))
package retry
