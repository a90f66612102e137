// Package ambassador composes the outbound policies into one client and runs
// that client as a localhost ambassador process.
//
// # Composition
//
// Chain stacks Middleware values over a base RoundTripper, the first one
// outermost. The recommended order is the one the other packages assume:
//
//	retry → ratelimit → discovery → breaker → base transport
//
// retry owns the logical request; ratelimit sees every attempt, so retries
// spend tokens too; discovery turns the logical host into a concrete endpoint
// for each attempt; breaker keys by that endpoint, so one bad endpoint is
// ejected rather than the whole service.
//
//	rt := ambassador.Chain(http.DefaultTransport, policy.RoundTripper, limiter.RoundTripper)
//	client := &http.Client{Transport: rt}
package ambassador
