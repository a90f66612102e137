// Package discovery turns a logical service name into a concrete endpoint
// for every attempt: it keeps a live endpoint set from a Source, balances
// attempts across it, and keeps unready endpoints out of the pick set.
//
// # What it protects against
//
// A client that dials one address cannot survive that instance going away,
// and a client that spreads load blindly keeps feeding an instance that is
// slow, failing or ejected. A Service follows the set a Source reports
// (static list, DNS A/AAAA, DNS SRV, watched file, the keys under a prefix
// in etcd), and for every attempt picks a ready endpoint with the
// configured balancer.
//
// # Etcd
//
// Etcd (discovery.etcd) lists a key prefix and watches it from the listed
// revision on: each key is one endpoint, a bare host:port or the JSON that
// etcd's naming/endpoints Manager writes (a numeric Metadata.weight is the
// weight), so services that register themselves with a lease come and go
// as the lease lives. Deletes and expired leases are followed as they
// happen; a lost connection keeps the last set, and the watch resumes or,
// after a compaction, lists again. Watch owns its etcd client: it dials on
// start and closes it on return. Values that are not endpoints are skipped
// and logged through WithLogger's logger.
//
// # Where it sits in the stack
//
//	app ─▶ retry ─▶ ratelimit ─▶ discovery ─▶ breaker ─▶ transport ─▶ endpoint
//
// discovery runs once per attempt, under retry: the attempt record retry
// keeps in the request context says which endpoints this logical request has
// already tried, and discovery picks another one while another ready one
// exists (it records its pick there). When every ready endpoint has been
// tried, it takes the one tried longest ago: a third attempt over two
// endpoints goes back to the first, not to the one that just failed. breaker sits under it, keyed by the
// concrete endpoint; plugged in with WithHealth(breaker), an endpoint whose
// breaker is open is skipped.
//
// # Balancers
//
//   - round_robin (default): weighted and smooth. Each endpoint-set update
//     precomputes one cycle in which every endpoint appears weight times,
//     its slots spread evenly (earliest virtual deadline first); a pick
//     indexes it with an atomic counter. Weight sums above 65,536 (or 4×
//     the endpoint count) are scaled down. Weights below 1 count as 1 and
//     above 1,000,000 as 1,000,000, for every balancer.
//   - least_request: power of two random choices on in-flight requests
//     divided by weight.
//   - ewma: power of two random choices on peak-EWMA latency × (in-flight+1)
//     divided by weight (the Finagle/Linkerd technique). A slower answer
//     raises the average at once, a faster one lowers it with a 500ms time
//     constant (Finagle and Linkerd use 10s; the shorter constant lets an
//     endpoint win its traffic back sooner after one latency spike), and an
//     idle endpoint's cost decays toward zero on the same scale so it is
//     probed again. A new endpoint costs nothing while idle
//     and a large penalty while it has a request in flight, so it gets one
//     request at a time until it has answered. Failures count as slow: a
//     transport error, 5xx or 429 (gRPC: UNAVAILABLE, RESOURCE_EXHAUSTED,
//     INTERNAL, UNKNOWN, DATA_LOSS, DEADLINE_EXCEEDED) is recorded as at
//     least 1s of latency and raises a recent-failure count (halved by each
//     success, decaying with the same time constant) that multiplies the
//     cost by 1 + 10 × count. An endpoint that fails fast therefore gets less
//     traffic, not more, even while its healthy siblings have latency spikes.
//     A request the caller cancelled, or one that failed because reading
//     the caller's request body failed (a malformed or aborted upload), is
//     the caller's failure and is not recorded at all.
//
// A pick is O(1) in the number of endpoints and allocates nothing: it reads
// an immutable snapshot behind an atomic pointer (an update builds a new one
// and never blocks picks), samples a few candidates and checks their
// readiness. Only when every sampled candidate is unready or already tried
// does it fall back to one scan of the whole set; a service whose endpoints
// are nearly all ejected pays O(n) per pick until they return.
//
// # Readiness
//
// An endpoint takes traffic when both checks pass: the passive one (the
// Health given with WithHealth, typically a breaker) and, when
// health_check.path is set, the active one — one goroutine per Service GETs
// http://<endpoint><path> on every endpoint every interval with the timeout
// (each round uses up to 8 short-lived workers and waits for them); a 2xx
// or 3xx passes. One failure takes the endpoint
// out, one pass puts it back. New endpoints are ready until a check fails.
//
// # Defaults
//
// refresh 30s (DNS sources), balancer round_robin, health_check off
// (interval 5s, timeout 1s once path is set), endpoint weight 1.
//
// # Errors
//
// With no ready endpoint an attempt fails at once, unsent, with a
// *NoEndpointsError: errors.Is(err, ErrNoEndpoints) holds, it is a local
// refusal retry does not retry, and its gRPC status is codes.Unavailable.
// Config.Validate names every bad key (exactly one source; host:port
// addresses, dns, srv and resolver checked as DNS and SRV check them, so
// FromConfig never refuses what Validate accepts; a known balancer; refresh
// and the health-check interval and timeout 0 or between 1ms and 24h). An
// endpoint file is read only when it is a regular file of at most 16 MiB.
// Each problem is a *FieldError (Section "discovery", Field the key,
// empty for the source count), joined with errors.Join.
//
// # Metrics
//
// The observable gauge outbound.discovery.endpoints ({endpoint}) counts a
// Service's endpoints by service and ready (true, false), from the meter
// provider of WithMeterProvider (the global one by default).
//
// # Clock, logger and Close
//
// retry, ratelimit, breaker and discovery take the same three hooks; plain
// data belongs in Config. WithClock replaces the wall clock with a Clock
// (Now, and Sleep that ends early with ctx); in this package it paces
// health-check rounds and the re-resolution of the dns and srv sources.
// WithLogger sets the logger for endpoint-set changes, source errors and
// health-check transitions; without it the Service logs nothing, and never
// writes to slog.Default(). Close stops the goroutines the Service started
// and waits for them; it is safe to call more than once and returns nil or
// the first error. It also closes the idle connections of the health-check
// client the Service made.
//
// # Concurrency
//
// A Service is safe for concurrent use. Its goroutines (the source's watch
// and the health checks) stop when Close returns. With WithStartOnUse they
// run only while used: while grpc holds a resolver built from the Service
// (a ClientConn that is connected and not idle), or from the first HTTP
// pick on.
//
// # HTTP and gRPC
//
// Service.RoundTripper rewrites requests for http://<name>/… to the picked
// endpoint (see its doc for the Host header); other hosts pass through.
// For gRPC, Service.DialOptions (or GatedDialOptions, which also asks a
// CallGate such as a circuit breaker before each pick and tells it how the
// call ended) supplies a resolver (scheme "outbound",
// passed with grpc.WithResolvers, never registered globally) and selects the
// balancer: outbound_round_robin, outbound_least_request and outbound_ewma
// make the same choice as HTTP (weights, readiness, tried endpoints) over
// grpc's ready connections, and share the endpoints' load and latency state
// with the HTTP side of the same Service. A stream counts as in flight, and
// its latency is measured, until it ends; a client-streaming call ends with
// the outcome its caller's RecvMsg returns (or the caller's cancellation),
// not the success grpc reports to balancers when a send is what first saw
// the endpoint's refusal. The resolver reports
// resolver.State.Endpoints (grpc's own pick_first and round_robin read them
// too). grpc finds balancers named in a service config only in its global
// registry, whose Register may not run beside other grpc calls, so importing
// this package registers the three balancers once, in its one init function;
// nothing else is registered.
//
// # Use
//
//	svc, err := discovery.NewService("users", discovery.Static("10.0.0.1:8080", "10.0.0.2:8080"),
//		discovery.Config{Balancer: discovery.EWMA})
//	if err != nil { ... }
//	defer svc.Close()
//	client := &http.Client{Transport: svc.RoundTripper(http.DefaultTransport)}
//	resp, err := client.Get("http://users/v1/users/42")
package discovery
