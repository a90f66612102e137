// Package outbound is an embeddable library of ambassador middlewares for the
// calls a Go service makes to other services, and the small ambassador process
// built from them.
//
// This package holds no code; it is the map. The policies live in their own
// packages, each an http.RoundTripper wrapper and a pair of gRPC client
// interceptors that are useful alone and stack into one client:
//
//   - retry: attempts with exponential backoff and jitter, per-try timeouts,
//     body replay, Retry-After, a retry budget and hedging.
//   - ratelimit: token buckets per destination host, waiting or rejecting.
//   - discovery: static, DNS, SRV and watched-file endpoint sources, balanced
//     by round robin, least request or peak EWMA, with active health checks.
//   - breaker: a circuit breaker per concrete endpoint.
//   - ambassador: Chain and NewTransport compose them; Server runs the same
//     stack as a localhost reverse proxy.
//
// # The stack and why it is ordered so
//
//	app ─▶ retry ─▶ ratelimit ─▶ discovery ─▶ breaker ─▶ transport ─▶ endpoint
//
// retry is outermost because it owns the logical request: it decides whether
// another attempt is worth sending and drains every response it discards.
// ratelimit sits under it so that retries spend tokens like first attempts do.
// discovery picks a concrete endpoint per attempt, avoiding the ones this
// request already tried and the ones whose breaker is open. breaker is
// innermost and keys by that endpoint, so one bad instance is ejected without
// taking its healthy siblings down.
//
// Local refusals — an open breaker, an empty token bucket, a service with no
// ready endpoint — are returned at once and never retried with backoff.
//
// # Use
//
//	rt, err := ambassador.NewTransport(ambassador.ServiceConfig{Name: "users", ...})
//	client := &http.Client{Transport: rt}
//	resp, err := client.Get("http://users/v1/users/42")
package outbound
