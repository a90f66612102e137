// Package breaker ejects failing endpoints: it keeps one circuit breaker per
// endpoint (a github.com/sony/gobreaker/v2 state machine per key) and refuses
// requests to an endpoint whose breaker is open, so that one bad endpoint is
// cut off without taking its healthy siblings down, and a failing upstream
// gets time to recover instead of a flood of doomed requests.
//
// # The model
//
// Each key's breaker is closed at first and lets every request through,
// counting successes and failures over a window of Interval. It trips
// (opens) after ConsecutiveFailures failures in a row, or, when
// FailureRatio is set, once at least MinRequests requests completed in the
// window and failures/(failures+successes) reached the ratio. An open
// breaker refuses every request for OpenTimeout, then turns half-open and
// lets exactly HalfOpenRequests probes through, however many requests
// arrive concurrently; that many successes close it, one failure opens it
// again for another OpenTimeout. A probe the caller gives up on (cancels,
// or lets its own deadline pass) counts as nothing, as the caller's
// cancellation does in every state: its slot goes to the next request. A
// probe cut by a timeout of this module's own (retry's per-try timeout,
// the ambassador's service timeout) is a failed probe, so a hanging
// upstream opens the breaker again.
//
// # Where it sits
//
// The breaker is the innermost policy, just above the base transport:
//
//	app ─▶ retry ─▶ ratelimit ─▶ discovery ─▶ breaker ─▶ transport
//
// so it sees every attempt against a concrete endpoint. Its key is the
// request's req.URL.Host (host:port) unless WithKeyFunc chooses another.
// Discovery asks Ready(endpoint) before picking an endpoint, which skips
// ejected endpoints without taking a probe slot; a refusal still happening
// below discovery is a local refusal that the retry layer returns at once.
//
// # Defaults
//
// Zero Config fields mean: consecutive_failures 5, failure_ratio off,
// min_requests 20, interval 10s, open_timeout 30s, half_open_requests 1,
// max_keys 10000. Validate bounds them: consecutive_failures and
// min_requests at most 1e6, half_open_requests at most 1000, interval and
// open_timeout at most 24h, failure_ratio in [0, 1], max_keys at most 1e7.
//
// # What counts as a failure
//
// HTTP: a transport error, unless the caller cancelled (context.Canceled or
// context.DeadlineExceeded while the request's own context is done) or a
// layer below refused locally, which count as nothing; a 5xx response other
// than 501. A timeout of this module's own that comes before the caller's
// deadline (retry's per-try timeout, the ambassador Stack's service
// timeout) is not the caller's doing: a request it cut is a failure, so an
// endpoint that takes requests and never answers is ejected. Every other response, 4xx included, is a success. The response
// is classified when its headers arrive; its body is the caller's. A gRPC
// call proxied over HTTP/2 that fails without a response message comes back
// "trailers-only", HTTP 200 with grpc-status in the headers: with the
// default rule it is classified by the gRPC failure codes below, as the
// interceptors classify a call.
// WithClassifier replaces the rule, with one exception no classifier
// changes: an attempt that failed because reading the caller's request
// body failed (a malformed chunked body, an upload the client aborted) is
// the caller's failure, never the endpoint's, and counts as nothing — not
// even as a failed probe while half-open — so no client can eject an
// endpoint for everyone by sending broken bodies.
//
// gRPC: the codes of DefaultGRPCFailureCodes (UNAVAILABLE,
// DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS), except
// DEADLINE_EXCEEDED and CANCELED when the caller's own context is done. A
// call that a layer above cut with a timeout of its own (retry's per-try
// timeout, the Stack's service timeout on unary calls, the ambassador
// process's on proxied calls) is not the caller's doing: it counts as
// DEADLINE_EXCEEDED, so an endpoint that hangs is ejected.
// Config.GRPCFailureCodes (yaml grpc_failure_codes) replaces the set.
//
// # Errors
//
// A refused request is not sent. The RoundTripper returns an *OpenError
// (with the key) that wraps ErrOpen; the interceptors return a status error
// with codes.Unavailable that also unwraps to the *OpenError, so both
// status.Code(err) == codes.Unavailable and errors.Is(err, ErrOpen) hold.
// Refusals are cheap: no allocation, no lock held beyond gobreaker's own.
//
// # Keys and memory
//
// Breakers are created on a key's first request. A key is dropped once no
// request has used it for max(interval, open_timeout) and none is in
// flight. For a closed breaker that loses nothing (its counts would start
// over anyway after an interval); an open one is never dropped before its
// open_timeout ran out, so an endpoint keeps being refused as long as it is
// asked for. A dropped key that comes back starts closed.
//
// The request path reads no clock for this: it marks the key used, and a
// sweep stamps the marked keys with the time and drops the unmarked ones
// whose stamp is too old, so a key goes between one and about one and a
// half max(interval, open_timeout) after its last use. Sweeps run when a
// new key arrives and the last sweep is older than half of
// max(interval, open_timeout), and whenever the table holds max_keys keys.
// If the table is still full after a sweep, the least recently used keys
// that are not open and have nothing in flight go, down to 15/16 of
// max_keys. If even that frees nothing (every key open or busy), the new
// key's requests pass through untracked until room frees up. So memory
// stays bounded by max_keys however many distinct hosts a client talks to
// over time (about 360 bytes a key, measured, plus the key string).
//
// # Observability
//
// Counters outbound.breaker.transitions (attributes endpoint, from, to) and
// outbound.breaker.rejections (endpoint), both with service when
// WithService is given, from WithMeterProvider or the global provider.
// WithOnStateChange registers a callback for every state change. gobreaker
// reports changes under its mutex; the Breaker only queues them there and
// hands them to the metrics and the callback afterwards, in order, on the
// goroutine of the call that caused or noticed the change. No lock is held
// while the callback runs, and it may call into the Breaker.
//
// # Clock, logger and Close
//
// retry, ratelimit, breaker and discovery take the same three hooks; plain
// data belongs in Config. WithClock replaces the wall clock with a Clock
// (Now, and Sleep that ends early with ctx); in this package it ages idle
// keys out of the key table, while OpenTimeout and Interval stay on the wall
// clock: gobreaker v2 reads time.Now itself and its Settings take no clock
// (tests run those in a testing/synctest bubble). WithLogger sets the logger
// for state changes (Debug); without it the Breaker logs nothing, and never
// writes to slog.Default(). Close stops the goroutines the Breaker started
// and waits for them; it is safe to call more than once and returns nil or
// the first error. A Breaker starts none of its own; its Close also drops
// every key.
//
// # Concurrency
//
// A Breaker is safe for concurrent use. Looking up an existing key takes a
// read lock on the key table and does not allocate; the request path then
// takes gobreaker's mutex twice (before and after the request), and
// gobreaker reads the clock each time. Neither an allowed request, nor a
// refusal (after a key's first), nor Ready allocates.
//
// # HTTP and gRPC
//
// RoundTripper wraps an http.RoundTripper. UnaryClientInterceptor and
// StreamClientInterceptor key by the endpoint part of cc.Target() ("host:port"
// for "dns:///host:port"), plus the method with WithGRPCMethodKey; behind a
// resolver that balances over many addresses that is the whole service, not
// one address. For per-endpoint breakers under a balancer, the Breaker is
// also a discovery.CallGate: StartCall and EndCall admit and count each
// call at the balancer's pick, keyed by the endpoint picked (the method
// key does not apply there). A connection dialed with
// (*discovery.Service).GatedDialOptions(b), on a Service made
// WithHealth(b), skips endpoints whose breaker is open, sends at most
// HalfOpenRequests probes to a half-open one (a call that finds the probe
// slots taken goes to another ready endpoint), and fails with
// discovery.ErrNoEndpoints (codes.Unavailable) when every endpoint is
// ejected; ambassador.DialOptions sets this up for a service with a
// breaker section, in place of the interceptors. A call through the gate
// is classified as the interceptors classify one, from the final error
// grpc reports to the balancer; while the breaker is closed it is counted
// when it ends without a goroutine or an allocation, while half-open its
// probe slot is held as a stream's is (below).
//
// A stream counts as one request, classified when it ends: a
// failure if it could not be created or ended with a failure code. Until
// then a small goroutine holds its place in gobreaker (whose
// CircuitBreaker counts a request when Execute's function returns); it ends
// when the stream's final status is read (RecvMsg returns an error, or the
// reply of a client-streaming call) or the caller's context is done, the
// same things grpc needs to release a stream. TrackStream puts a stream
// already opened through the breaker of a key of the caller's choosing,
// for callers that learn the endpoint only once grpc's balancer picked it;
// TrackStreamAtEnd does the same without the goroutine while the breaker
// is closed (the stream is counted when it ends), for a stream per call on
// a hot path.
//
//	b, err := breaker.New(breaker.Config{ConsecutiveFailures: 3, OpenTimeout: 10 * time.Second})
//	if err != nil {
//		return err
//	}
//	client := &http.Client{Transport: b.RoundTripper(http.DefaultTransport)}
//	conn, err := grpc.NewClient(target, grpc.WithUnaryInterceptor(b.UnaryClientInterceptor()))
package breaker
