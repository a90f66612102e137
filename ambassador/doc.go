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
// certificate and key for mTLS, the server name. The files are re-read when
// they change on disk; a bad new file is logged and the previous
// certificates keep serving.
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
