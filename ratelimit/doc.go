// Package ratelimit keeps a client under the request rate its upstreams
// granted it, with token buckets from golang.org/x/time/rate, for HTTP
// (an http.RoundTripper) and gRPC (client interceptors).
//
// # What it protects against
//
// A client that sends faster than an upstream allows is throttled by it
// (429, RESOURCE_EXHAUSTED) or, worse, overloads it. A Limiter spends one
// token per request from a bucket that refills at Config.RPS tokens per
// second and holds at most Config.Burst; a request without a token is
// refused locally, or waits for one, and never reaches the upstream early.
// When the upstream asks to back off anyway — a 429 or 503 with
// Retry-After, or a gRPC grpc-retry-pushback-ms trailer — the key is paused
// until then, so the client stops hammering a host that said "later".
//
// # Where it sits in the stack
//
//	app ─▶ retry ─▶ ratelimit ─▶ discovery ─▶ breaker ─▶ transport
//
// Under retry, so every attempt spends a token; above discovery, so the key
// is the logical host (the service name), not one endpoint of it. Its
// refusal, ErrLimited, is a local refusal: retry returns it at once instead
// of retrying it with backoff.
//
// # Configuration and defaults
//
//	ratelimit:
//	  rps: 100                   # required, 0.001 to 1e9; fractions allowed: 0.5 = one every 2 s
//	  burst: 0                   # 0 = ceil(rps); at most 1e9
//	  max_wait: 0s               # 0 = reject at once; > 0 = wait up to this (at most 1h), never past the deadline
//	  scope: host                # host (default): one bucket per req.URL.Host; global: one bucket
//	  ignore_retry_after: false  # true = upstream Retry-After / pushback does not pause the key
//	  max_keys: 10000            # bound on the number of per-host buckets; at most 1e7
//	  redis: {address: "", key: "", timeout: 50ms}   # see "Shared on Redis"
//
// In the host scope buckets are created on first use and kept at most
// max_keys at once. There is no background goroutine: when a new key finds
// no room, buckets that have refilled completely and are not paused are
// dropped first (nothing is lost: a new bucket would be identical); if that
// is not enough, other unpaused buckets are forgotten (that host starts
// again with a full bucket). A key costs about 130 bytes of heap
// (BenchmarkAllowed reports B/key).
//
// An upstream pause is capped at five minutes (Config.MaxPause, yaml
// max_pause, changes it). In the global scope a pause asked by any upstream pauses everything.
//
// # Waiting or rejecting
//
// With max_wait 0 a request finds a token or is refused with a
// *LimitedError, which wraps ErrLimited and carries RetryAfter: how long
// until a token (or the end of a pause) frees up. With max_wait > 0 the
// request reserves a token; if the reservation would make it wait longer
// than max_wait, or past its context's deadline, the reservation is
// cancelled (its token goes back to the bucket) and the request is refused
// at once, without sleeping. Otherwise it sleeps until its turn; if its
// context ends first, the token goes back and the error wraps the context's
// error (errors.Is(err, context.Canceled) holds).
//
// # Observability
//
// Counter outbound.ratelimit.decisions with attribute result (allowed,
// waited, rejected) and histogram outbound.ratelimit.wait (seconds, one
// observation per request that waited), both with attribute service when
// WithService is given. The allowed path allocates nothing. A Limiter shared
// on Redis also counts outbound.ratelimit.store_errors (attribute service):
// Redis calls that failed or timed out. Snapshot lists
// the buckets for a status page.
//
// # Clock, logger and Close
//
// retry, ratelimit, breaker and discovery take the same three hooks; plain
// data belongs in Config. WithClock replaces the wall clock with a Clock
// (Now, and Sleep that ends early with ctx); in this package it reads the
// time for token refills, pauses and deadlines and does the waiting.
// WithLogger sets the logger for upstream pauses (Debug); without it the
// Limiter logs nothing, and never writes to slog.Default(). Close stops the
// goroutines the Limiter started and waits for them; it is safe to call more
// than once and returns nil or the first error. A local Limiter starts
// none, so its Close returns nil; a Limiter shared on Redis closes its Redis
// client (and the connection pool's goroutines).
//
// # Concurrency
//
// A Limiter is safe for concurrent use. Buckets are sharded behind
// read-write locks; an existing key takes only a read lock and the bucket's
// own mutex.
//
// # HTTP and gRPC
//
// RoundTripper keys by req.URL.Host (WithKeyFunc chooses another key). The
// interceptors key by the ClientConn's target (WithGRPCMethodKey adds the
// method) and return refusals as status errors with codes.ResourceExhausted
// that still match ErrLimited with errors.Is. A stream takes one token when
// it is created, whatever the number of messages it carries.
//
// # Shared on Redis
//
// With redis.address set, every Limiter using the same Redis server and key
// enforces one limit between them — N replicas respect the rate an upstream
// granted them all, not N times it:
//
//	ratelimit:
//	  rps: 50
//	  redis:
//	    address: 127.0.0.1:6379
//	    key: ""        # "" = "outbound:ratelimit:<service>"; the host scope adds ":<host>"
//	    timeout: 50ms  # per Redis call, connecting included; at most 10s
//
// The bucket lives in one Redis hash per key and is updated by one Lua
// script (EVALSHA, falling back to EVAL when the server does not have it),
// on the Redis server's clock (TIME): the processes' clocks do not matter.
// A Limiter does not pay a round trip per request: each call leases a small
// batch of tokens, spent locally — a quarter of the burst split between
// the Limiters that took from the key in the last two seconds, at most a
// tenth of a second of the rate, at least one. When the shared bucket is
// empty, requests are refused locally until about one lease has refilled,
// so an overloaded key costs each Limiter at most one call per lease's
// worth of time (N × rps / lease calls a second in all), not one per
// refusal. In
// the host scope each destination host has its own Redis key, and the
// local side is bounded by max_keys like local buckets.
//
// Overshoot: tokens are only ever taken from the shared bucket, so over a
// long run the Limiters admit no more than rps × time + burst between
// them. Over a short window they may admit more by the leases taken before
// it and spent in it: at most one lease per Limiter, so at most
// rps × window + burst + N × lease, with lease ≤ max(1, min(⌊burst /
// (4 × takers)⌋, ⌈rps / 10⌉)). For rps 50 (burst 50) and three processes
// the lease is 4: at most 12 tokens over. A lease a Limiter never spends
// (it goes idle, or closes) is lost: that errs low, not high.
//
// With max_wait > 0 a request that finds no token borrows one from the
// shared bucket (which goes negative by at most max_wait of tokens, never
// past the request's deadline) and waits for it; unlike the local bucket,
// a wait abandoned by its context does not give the token back.
//
// When Redis fails or is slower than redis.timeout, the Limiter falls back
// to its local bucket at the same rps and burst (fail open, not
// unlimited), counts outbound.ratelimit.store_errors, logs once per outage
// at Warn (and once at Info when Redis is back) through WithLogger, and
// tries Redis again at most once a second. N processes then admit up to N
// times the rate until Redis answers. Upstream pauses (Retry-After,
// pushback) stay local to the process that saw them. Snapshot reports the
// leased tokens of each key while Redis answers. Close closes the Redis
// client; the Limiter then limits on its local buckets alone.
//
// go-redis writes a few messages of its own (a failed dial) through its
// package-level logger, to stderr unless the program sets one with
// redis.SetLogger; the ambassador sends them to its log at Debug.
//
// # Use
//
//	lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 5, MaxWait: 100 * time.Millisecond})
//	if err != nil {
//		return err
//	}
//	client := &http.Client{Transport: lim.RoundTripper(http.DefaultTransport)}
//	conn, err := grpc.NewClient(target, grpc.WithUnaryInterceptor(lim.UnaryClientInterceptor()), ...)
package ratelimit
