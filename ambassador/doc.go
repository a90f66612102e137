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
// ejected rather than the whole service. The breaker is also discovery's
// Health: an endpoint whose breaker is open is not picked while another is
// ready.
//
//	rt := ambassador.Chain(http.DefaultTransport, policy.RoundTripper, limiter.RoundTripper)
//	client := &http.Client{Transport: rt}
//
// # One service, one transport
//
// NewTransport builds that stack from a ServiceConfig, the same struct a
// service has in the process config:
//
//	rt, err := ambassador.NewTransport(ambassador.ServiceConfig{
//		Name:      "users",
//		Discovery: discovery.Config{Static: []string{"10.0.0.7:8080", "10.0.0.8:8080"}},
//		Retry:     &retry.Config{},
//		Breaker:   &breaker.Config{},
//	})
//	if err != nil { ... }
//	defer rt.(io.Closer).Close()
//	client := &http.Client{Transport: rt}
//	resp, err := client.Get("http://users/v1/profile/7")
//
// Name is the logical host: http://users/… goes through the stack to the
// service's endpoints, and every other host goes to the base transport
// untouched. A policy is in the stack only when its section is non-nil; an
// empty section is the policy with its defaults. The transport holds
// goroutines (endpoint refresh, health checks, certificate reloads), so the
// value NewTransport returns, a *Stack, is also an io.Closer.
//
// # Timeouts
//
// ServiceConfig.Timeout (default 15s) bounds the whole logical request:
// every attempt, the backoff between them, and the reading of the response
// body, which releases the deadline when it is read to its end or closed.
// When it fires, errors.Is(err, context.DeadlineExceeded) holds. A 101
// Switching Protocols response (a WebSocket, say) is bounded only up to the
// handshake. gRPC unary calls get the same bound; streams keep the caller's.
//
// # The base transport
//
// Unless WithBase replaces it, the base is an *http.Transport tuned for
// proxying: keep-alive, 256 idle connections per endpoint, 90s idle
// timeout, no environment proxy and no transparent gzip. protocol picks
// HTTP/1.1 (http1, the default), HTTP/2 with prior knowledge over cleartext
// (h2c) or HTTP/2 over TLS by ALPN (h2); max_connections caps connections
// per endpoint. tls (or protocol h2) originates TLS: the CA file, the client
// certificate and key for mTLS, the server name. The files are PEM, regular
// files of at most 1 MiB each (MaxTLSFileSize). They are re-read when
// they change on disk; a bad new file is logged and the previous
// certificates keep serving.
//
// # Every send counts
//
// net/http's Transport re-sends a replayable request (idempotent, with no
// body or a GetBody) that fails on a reused connection, on the next pooled
// one, for as long as the pool lasts: a request that an upstream reads and
// drops would reach it once per idle connection. The Stack wraps its base
// transport, WithBase ones included, so that one RoundTrip of the base
// takes at most two connections (the send and one transport re-send);
// going for a third stops it, before a byte is written there, with an
// error matching ErrResendLimit. Retry treats that error as a reset
// (retry_on reset, idempotent requests), and every attempt it makes may
// again use one transport re-send: with max_attempts 3 a request reaches a
// failing upstream at most 6 times. The breaker counts it as a failure;
// the ambassador answers 502 upstream_reset. The HTTP/2 transports re-send
// only streams the server refused or never processed; the same bound stops
// them at the third connection they take (a connection shared by other
// streams is not closed, so one last stream may open and is reset at
// once), and there the error is a refused stream, retried for every method.
//
// A TLS handshake that fails (the endpoint's certificate does not verify
// against ca_file or server_name, the endpoint refuses the client
// certificate, it does not speak TLS) is a connect failure: the request
// was never sent, so it is retried on another endpoint like a refused
// connection, for every method, and the ambassador answers 502
// upstream_connect_failure.
//
// # gRPC
//
// DialOptions gives a grpc client the same policies as interceptors, the
// discovery resolver and the balancer; dial "outbound:///" + name:
//
//	opts, err := ambassador.DialOptions(cfg)
//	conn, err := grpc.NewClient("outbound:///users", opts...)
//
// The options start no goroutine until dialed: discovery runs while grpc
// holds the resolver (grpc's idle mode, grpc.WithIdleTimeout, is left as it
// is), and TLS files are read at each handshake.
//
// # The process config
//
// Config is the ambassador process's YAML: an admin listener, listeners
// (each sending every request to one service, or routing by Host and path
// prefix with optional weighted splits), services by name, and
// process-wide limits. LoadConfig is strict and reports every problem at
// once in a *ConfigError, one "KEY.PATH: message (line N)" per line:
//
//	services.users.retry.max_atempts: unknown key (did you mean max_attempts?) (line 12)
//	services.users.timeout: cannot decode "abc" as a duration (line 14)
//	listeners[1].routes[0].service: no service "pay" (line 31)
//
// Relative file paths in the config are relative to the file's directory.
// LoadConfig also reads the files the config names, as start-up will, so a
// file that start-up would refuse is a problem at its key:
//
//	services.users.tls.ca_file: /dev/zero is a device: not a regular file (line 9)
//
// Only regular files (or symbolic links to one) are read, never a FIFO or a
// device, and each is bounded: 1 MiB per TLS file (MaxTLSFileSize), 16 MiB
// per endpoint file and for the config itself (MaxConfigFileSize).
//
// Every number has a bound, named in its error and in the field's doc:
// split weights are integers in [0, 10000] with one positive
// (MaxSplitWeight); retry.max_attempts is at most 10, ratelimit.rps at
// least 0.001; durations, counts and sizes are capped where a larger value
// would overflow a later computation or mean nothing (see the Max*
// constants here and in the policy packages).
//
// # Client connections and what upstreams send back
//
// limits.max_client_connections caps the client connections open at once,
// one count across every listener but the admin listener (which is never
// capped, so /healthz answers at the cap). 0 derives the cap from the
// soft open-file limit n (RLIMIT_NOFILE): max((n-128)/2, n/4), at most
// 1048576, keeping 128 descriptors for listeners, admin and files and
// half of the rest for upstream connections (448 for n = 1024). At the cap
// a listener takes one more connection and, if an HTTP/1.1 keep-alive
// connection sits idle between requests, closes it and serves the new one
// at once; otherwise the new connection waits, unread, until a connection
// closes, and later ones wait in the kernel's accept backlog. Accept never
// spins and never fails with EMFILE because of idle clients; the wait is
// bounded by the client's own timeouts. limits.idle_timeout (default 2m)
// closes idle keep-alive connections.
//
// An upstream's own X-Outbound-Error is removed from its final headers,
// from its trailers (announced in a Trailer header or not, HTTP/1.1
// chunked and HTTP/2 alike) and from its 1xx responses. At most 5 1xx
// responses (103 Early Hints, 100 Continue, …; 101 is a final answer) are
// relayed per request; further ones are dropped and the final response is
// relayed as usual, while an upstream that never sends one meets the
// service's timeout (504 upstream_timeout).
//
// # Client errors are the client's
//
// The process tracks each request body it forwards (internal/inbound). A
// body that cannot be read — malformed chunked encoding, an upload cut off
// — fails the attempt on the caller's side: the answer is 400 bad_request,
// or nothing when the client went away (access log status 499, logged at
// debug), and the endpoint's breaker, its EWMA latency and the retry
// policy never count it, so no client can eject an endpoint for the
// others. The same holds for the in-process stack: every layer tells a
// failure to read the caller's body from an upstream failure.
//
// # Concurrency
//
// A Stack is safe for concurrent use; Close stops its goroutines and may be
// called more than once. Config values are plain data.
package ambassador
