// Package ambassador composes the outbound policies into one client stack,
// for an application to wrap its own HTTP and gRPC calls. The ambassador
// process, which runs the same stack for other programs on localhost, is
// package ambassador/proxy, built on this one.
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
// service has in the process config (package ambassador/proxy):
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
// untouched. The match ignores case and the scheme's default port
// (http://USERS/…, http://users:80/… and https://users:443/… are the
// service); any other port (http://users:8080/…) is another destination
// and passes through. A policy is in the stack only when its section is non-nil; an
// empty section is the policy with its defaults. The transport holds
// goroutines (endpoint refresh, health checks, certificate reloads), so the
// value NewTransport returns, a *Stack, is also an io.Closer.
//
// # The Host header
//
// ServiceConfig.HostHeader (the process config's host_header) chooses the
// Host each attempt sends, retries included: "" or HostEndpoint the picked
// endpoint's host:port (a caller's own req.Host other than the service
// name is kept), HostPreserve the caller's req.Host as set (in the
// ambassador process, the inbound request's Host), or a literal host name
// or host:port such as "api.example.com" for upstreams behind virtual
// hosting. It never changes TLS: SNI and certificate verification use
// TLSConfig.ServerName, or the endpoint's host when that is empty, so a
// literal host_header over TLS usually wants tls.server_name too.
//
// # Timeouts
//
// ServiceConfig.Timeout (default 15s) bounds the whole logical request:
// every attempt, the backoff between them, and the reading of the response
// body, which releases the deadline when it is read to its end or closed.
// When it fires, errors.Is(err, context.DeadlineExceeded) holds. A 101
// Switching Protocols response (a WebSocket, say) is bounded only up to the
// handshake. gRPC unary calls get the same bound; streams keep the caller's.
// The timeout is the Stack's own, not the caller's: an attempt it cuts
// while the caller's deadline is still further off counts against that
// endpoint's breaker (a caller whose own deadline is tighter gets no
// timeout of the Stack's, and its deadline counts as nothing), so an
// endpoint that takes requests and never answers is ejected even without
// a per-try timeout.
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
// the ambassador process answers 502 upstream_reset. The HTTP/2 transports re-send
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
// DialOptions gives a grpc client the same policies: retry and rate limit
// as interceptors, the circuit breaker per endpoint at the balancer's pick
// (discovery's GatedDialOptions), the discovery resolver and the balancer;
// dial "outbound:///" + name:
//
//	opts, err := ambassador.DialOptions(cfg)
//	conn, err := grpc.NewClient("outbound:///users", opts...)
//
// The options start no goroutine until dialed: discovery runs while grpc
// holds the resolver (grpc's idle mode, grpc.WithIdleTimeout, is left as it
// is), and TLS files are read at each handshake.
//
// # Raw TCP services
//
// protocol tcp marks a service whose endpoints speak raw TCP (a database, a
// cache): the ambassador process's tcp listeners join client connections
// to it. NewTransport, NewStack and DialOptions refuse it (ErrTCPService);
// NewTCPStack builds its discovery, breaker, retry policy and reloading
// TLS material, and Dial connects (TLS handshake included) within
// tcp.connect_timeout (TCPConfig). Such a service takes no ratelimit,
// host_header or HTTP health check.
//
// # Bad config
//
// NewStack, NewTransport and DialOptions validate the ServiceConfig first
// (ServiceConfig.Validate) and report every problem at once, one
// "KEY.PATH: message" per line of the error (the error is a
// *proxy.ConfigError of package ambassador/proxy); ServiceConfig.CheckFiles
// reads the files it names as NewStack will. Every number has a bound,
// named in its error and in the field's doc (MaxServiceTimeout,
// MaxConnectionsLimit, MaxTLSFileSize, and those of the policy packages).
// The policy packages report through one error type, FieldError (the same
// type in retry, ratelimit, breaker and discovery): Validate returns one
// per bad key, joined with errors.Join, and ServiceConfig.Validate places
// each under its section ("retry.budget.ratio: ...").
//
// # Client errors are the caller's
//
// A failure to read the caller's request body (an upload cut off, a
// malformed body) is the caller's: every layer tells it from an upstream
// failure, so the endpoint's breaker, its EWMA latency and the retry
// policy never count it.
//
// # Metrics
//
// The stack's layers record their own instruments (outbound.retry.attempts,
// outbound.ratelimit.decisions and outbound.ratelimit.wait,
// outbound.breaker.transitions and outbound.breaker.rejections,
// outbound.discovery.endpoints: see each package), all with service. With
// WithMeterProvider the stack also records http.client.request.duration (s)
// and http.client.request.body.size (By) once per attempt, with the
// attributes otelhttp gives them (http.request.method, server.address,
// server.port, url.scheme, network.protocol.*, http.response.status_code,
// error.type when there is no response) and service. It records them through
// the OpenTelemetry API itself, not through otelhttp: each combination's
// attribute set is built once, so a measurement allocates nothing.
// error.type is one of timeout, canceled, connect-failure, refused-stream,
// reset and _OTHER.
//
// # Concurrency
//
// A Stack is safe for concurrent use; Close stops its goroutines and may be
// called more than once. Config values are plain data.
package ambassador
