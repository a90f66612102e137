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
// # Concurrency
//
// A Stack is safe for concurrent use; Close stops its goroutines and may be
// called more than once. Config values are plain data.
package ambassador
