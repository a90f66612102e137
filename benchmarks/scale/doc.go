// Package scale measures how outbound's per-key state grows: a discovery
// pick over 10, 1,000 and 100,000 endpoints, and a breaker and a rate
// limiter holding 1, 1,000 and 100,000 distinct keys.
//
// # What is measured
//
// Each benchmark goes through the policy's RoundTripper over a no-op base
// that returns a fresh canned 200 (one allocation of its own, the same in
// every row). Discovery is called with the service name as the host; the
// breaker and the limiter are called round-robin over one pre-built request
// per key (host 127.x.y.z:8080, never dialed).
//
// Memory per key (or per endpoint) is the live-heap growth, read with
// runtime.ReadMemStats after a runtime.GC before the policy is built and
// after every key has been touched once, divided by the number of keys; it
// is reported as the custom metric B/key (B/endpoint for discovery).
//
// The code lives in the package's _test.go files; this file only documents it.
package scale
