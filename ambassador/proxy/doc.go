// Package proxy is the outbound ambassador process as a library: a
// localhost reverse proxy that sends every request it takes through the
// client stack of package ambassador, one ambassador.Stack per configured
// service. examples/ambassador is its thin main (flags, signals, logging);
// everything else lives here.
//
// # How it stacks
//
//	client ─▶ listener ─▶ route ─▶ service stack (retry → ratelimit → discovery → breaker) ─▶ endpoint
//
// A listener (HTTP/1.1 and h2c on one port) sends every request to one
// service or routes by Host and path prefix, with weighted splits; the
// service's ambassador.Stack picks the endpoint of each attempt. proxy
// imports ambassador and never the other way round: an application that
// only wraps its own calls never compiles the process.
//
// # Use
//
//	cfg, err := proxy.LoadConfig("ambassador.yaml")
//	if err != nil { ... }            // a *ConfigError: every problem, with its key and line
//	srv, err := proxy.NewServer(cfg, proxy.WithLogger(logger))
//	if err != nil { ... }
//	err = srv.Run(ctx)               // serves until ctx is done, then drains
//
// Server.Reload swaps in a new Config while it runs; Server.RunReloading is
// Run that reloads the config file on a signal and, optionally, whenever
// the file changes (the ambassador's SIGHUP and -watch).
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
// # gRPC
//
// gRPC calls take the native path where they can: served by grpc-go's own
// server transport and forwarded on a grpc.ClientConn per service, not by
// net/http's HTTP/2 server and httputil.ReverseProxy.
//
// Which connections: each accepted connection of an HTTP listener is
// sniffed before its first request (in its own goroutine, counted by
// max_client_connections from the start, bounded by read_header_timeout
// and by max_header_bytes + 64 KiB of buffered bytes; a client that sends
// no request by then is closed). Anything but the HTTP/2 preface goes to
// net/http's server. After the preface the ambassador sends its SETTINGS
// and reads up to the first request's headers: a gRPC request
// (content-type application/grpc or application/grpc+…, not grpc-web)
// hands the whole connection to grpc-go's server, anything else to
// net/http's, which reads the same bytes again. A connection keeps its
// server for its whole life: a plain request on a connection that began
// with gRPC gets grpc-go's answer (HTTP 415 with grpc-status
// INVALID_ARGUMENT), and gRPC on a connection that began with a plain
// request (or over HTTP/1.1, or through an h2c upgrade, which is not
// taken) is proxied by ReverseProxy as any request.
//
// Which listeners: a listener hands gRPC-first connections to grpc-go only
// if every service it routes to (its service:, every route's service and
// split) can be served natively: protocol h2c, host_header endpoint (or
// unset), and no base transport of WithStackOptions (which DialOptions
// cannot carry). Services of protocol h2 (TLS upstreams), with
// host_header preserve or a literal, or on a WithBase transport keep the
// ReverseProxy path for all their gRPC. The rule is evaluated on the
// routing table current when a connection is sniffed; a connection already
// grpc-go's whose call a reload routes to a service that cannot be served
// natively gets UNAVAILABLE no_endpoints.
//
// A call on grpc-go's side is routed by its :authority and path (host and
// path_prefix, split by weight) with the same matcher as HTTP requests,
// looked up on the current table per call (a call in flight keeps its
// entry across a reload), takes a bulkhead slot, and writes its access-log
// line, http.server.request.duration and server span as any request. One
// generic handler opens a stream for the same method on the service's
// grpc.ClientConn (built from the stack: its retry and ratelimit
// interceptors, the discovery resolver and balancer, and its breaker at
// grpc's pick, keyed by the endpoint each attempt goes to, as on the HTTP
// path and as Stack.DialOptions does: discovery's GatedDialOptions) and
// copies messages both ways undecoded (a pass-through codec), then the
// upstream's headers, trailers and status, without its x-outbound-error.
// The caller's metadata goes on without the hop's own (user-agent,
// grpc-timeout, content-type, pseudo-headers); its grpc-timeout bounds the
// call, as does the service timeout. At the caller's deadline grpc-go's
// server transport resets the caller's stream (RST_STREAM CANCEL) unless
// the DEADLINE_EXCEEDED answer is written first; the caller's own deadline
// fires at the same moment. So the policies act on gRPC outcomes: a
// retriable code (retriable_grpc_codes) is retried after
// grpc-retry-pushback-ms until the first response message, with the
// messages sent so far replayed (they are kept in memory until then: a
// client-streaming upload through a service with retry: is held whole
// until its answer begins); the codes the breaker counts as failures
// (UNAVAILABLE among them) count against the endpoint, whose open breaker
// ejects it from the balancer's picks: with every endpoint ejected a call
// is UNAVAILABLE no_endpoints, as on the HTTP path; the stack's refusals
// are gRPC statuses with x-outbound-error (and grpc-retry-pushback-ms for
// rate_limited), and a call whose grpc-timeout passed is DEADLINE_EXCEEDED
// upstream_timeout. A connection failure to the upstream is grpc-go's own
// UNAVAILABLE status, without x-outbound-error. Messages
// are held whole in memory (up to 2 GiB each, as grpc allows), where the
// ReverseProxy path streams bytes; the upstream sees grpc-go's user-agent
// and the service name as :authority. The access log's bytes_in and
// bytes_out count message bytes.
//
// grpc-go's side closes connections idle for limits.idle_timeout
// (keepalive MaxConnectionIdle) and at shutdown drains with GracefulStop
// (GOAWAY; calls in flight run on) for up to limits.drain_timeout, then
// stops, cutting what is left.
//
// # Transcoding
//
// transcode: on a listener or route whose service speaks gRPC (protocol
// h2c or h2) takes JSON over HTTP: POST /pkg.Service/Method with the
// request message as protojson (and the google.api.http bindings of the
// descriptors) becomes a gRPC call on one grpc.ClientConn per service,
// dialed on first use with the service's own Stack.DialOptions, so the
// call shares the service's breakers, limiter, retry budget and endpoints
// and is retried on retriable_grpc_codes; the service timeout is its
// deadline. Descriptors come from the upstream's server reflection,
// fetched on the first call of each routing table (so again after a
// reload), or from a descriptor_set file read at load time. The answer is
// JSON (NDJSON for server streaming), a gRPC error its usual HTTP status
// with a {"code", "message", "details"} body, and the ambassador's own
// refusals (bad_request, no_route, rate_limited, ...) carry
// X-Outbound-Error as usual; application/grpc requests on a transcode
// route are proxied unchanged. See internal/transcode for the details and
// the status table. The route in metrics, traces and the access log is
// the gRPC method.
//
// # Shutdown
//
// When Run's context is done (the ambassador's SIGTERM or SIGINT) the
// server first waits limits.shutdown_delay (default 0): it keeps accepting
// and serving new connections while /readyz answers 503 "server: shutting
// down", so a load balancer or kubelet takes it out of rotation while an
// app in the same pod, which got SIGTERM at the same moment, still makes
// its last outbound calls. Then it stops accepting and drains in-flight
// requests, WebSocket tunnels and tcp pairs for up to limits.drain_timeout
// (default 30s), closes what is left, and Run returns
// nil (exit 0). Server.EndShutdownDelay ends the delay at once; the
// ambassador calls it on a second SIGTERM or SIGINT, so a second signal
// means "drain now" (the drain itself still gets its drain_timeout). Keep
// shutdown_delay + drain_timeout under the pod's
// terminationGracePeriodSeconds.

// # Admin
//
// The admin listener serves / (a list of its endpoints), /healthz, /readyz,
// /metrics (WithMetricsHandler), /status (Server.Status as JSON: per
// endpoint the discovery and breaker state and the attempts seen, requests,
// failures and last_error; per process the Version, the config file's path
// and SHA-256 as LoadConfig read it, and when it was applied) and /config
// (the config in use as YAML, credential-like values REDACTED; file paths
// are shown, their contents never).
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
// others. The same holds for the in-process stack (package ambassador).
//
// # Traces
//
// With WithTracerProvider every inbound request gets one server span
// ("ambassador <method>", attributes http.request.method, url.path,
// server.address, http.response.status_code, outbound.route, service), a
// child of the caller's trace context as the global propagator extracts it
// (W3C traceparent when the main sets that propagator). Below it each
// attempt of the service stack is a client span with service,
// outbound.attempt, outbound.endpoint and http.request.resend_count, which
// is also the parent the upstream sees in its traceparent; gRPC calls take
// the same path. Without the option there are no spans, and the caller's
// traceparent passes to the upstream unchanged.

// # Access log
//
// Each request is one record, message "request", at info (debug when the
// client went away, warn when the handler panicked), with the attributes
// remote (the client's address), host, method, path, route, service,
// endpoint (the last one tried), status, grpc_status (when the answer
// carried one, in its headers or trailers), attempts, bytes_in (request
// body bytes read), bytes_out (response body bytes written), duration_ms
// (a float), trace_id (the request span's, else the caller's W3C
// traceparent's; left out when there is none) and error (the
// X-Outbound-Error reason; left out when there is none). It goes to the
// logger of WithAccessLog, by default the one of WithLogger; a handler
// that is not enabled at the record's level costs one Enabled call. The
// record (and the http.server.request.duration measurement) is made after
// a proxied HTTP/1 answer with a Content-Length has been flushed to the
// client, so a slow log handler does not delay it.

// # TCP listeners
//
// A listener with protocol: tcp takes service: only, a service of protocol
// tcp (an HTTP listener, route or split naming a tcp service, and a tcp
// listener naming another, are config errors at that service key). Each
// client connection is joined to one endpoint: discovery's balancer picks
// (an open connection counts as in flight, for least_request and /status),
// the connect (TLS handshake included when tls: is set; mTLS with
// cert_file and key_file, the files reloaded as for HTTP) is bounded by
// tcp.connect_timeout (5s), and a failed connect counts against that
// endpoint's breaker and is tried on another endpoint up to
// retry.max_attempts (1 without retry:), with the retry backoff between
// attempts. Nothing is read from the client before the upstream is
// connected, and once a byte has passed nothing is retried.
// max_connections caps connections per endpoint: when every ready endpoint
// is full a new client connection waits in arrival order up to
// tcp.queue_timeout (0: closed at once) for a slot; max_concurrent_requests
// caps the service's client connections (over it: closed at once);
// tcp.idle_timeout closes a pair with no byte either way for that long
// (0: never). Bytes are copied both ways at once through pooled 32 KiB
// buffers (measured cheaper than the kernel's splice path on loopback),
// EOF is passed on as a half-close, a reset as a reset, and an error
// either way closes both connections. A reload sends new connections to the new
// service while open pairs stay on the old one; shutdown stops accepting
// and lets open pairs run until limits.drain_timeout, then closes them.
// A listener's protocol cannot change by a reload. A tcp listener's client
// connections count against limits.max_client_connections like any other
// (limits.idle_timeout, for HTTP keep-alive, does not apply to them).
//
// Each client connection of a tcp listener writes one access-log record,
// message "tcp", with protocol (tcp), listener, remote, service, endpoint,
// attempts (connects), bytes_in (from the client), bytes_out (to the
// client), duration_ms, end (closed, reset, idle_timeout, drain; or, when
// never joined, refused, connect_failed, queued_timeout) and error (at
// warn, when it was not joined). /status shows per tcp service the client
// connections in in_flight and those waiting in queued.
//
// # Metrics
//
// A Server records, with the meter provider of WithMeterProvider (the
// global one by default), the histogram http.server.request.duration
// (seconds) once per inbound request, with http.request.method (one of
// RFC 9110's methods or PATCH, else _OTHER), http.response.status_code (the
// status sent; 499 when the client went away first), outbound.route (the
// route's name, as in the access log) and service (empty when no route
// matched); RunReloading counts reloads in outbound.config.reloads by
// result (success, failure). The service stacks add theirs (see package
// ambassador). tcp listeners record outbound.tcp.connections (counter, by
// service and result: connected, connect_failed, refused, queued_timeout),
// outbound.tcp.open_connections (up-down counter: pairs open now, by
// service) and outbound.tcp.transferred (bytes, by service and direction
// in or out, added when a pair closes).
//
// # Concurrency
//
// A Server's methods are safe for concurrent use. Config values are plain
// data.
package proxy
