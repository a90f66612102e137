package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/outbound-go/outbound/ambassador"
)

// Option configures a Server with what is not data.
type Option func(*serverOptions)

type serverOptions struct {
	logger  *slog.Logger
	access  *slog.Logger // the access log's; nil: logger
	mp      metric.MeterProvider
	metrics http.Handler
	ready   func()
	stack   []ambassador.Option
	tracer  trace.Tracer // nil: no server spans
}

// WithLogger sets the logger of the access log and of the server's own
// messages; it is also passed to every service stack. Default:
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *serverOptions) {
		if l != nil {
			o.logger = l
			o.stack = append(o.stack, ambassador.WithLogger(l))
		}
	}
}

// WithMeterProvider passes mp to every service stack and records
// http.server.request.duration and RunReloading's reload counter with it.
// Default: the global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *serverOptions) {
		o.mp = mp
		o.stack = append(o.stack, ambassador.WithMeterProvider(mp))
	}
}

// WithTracerProvider turns on tracing with tp: one server span per inbound
// request ("ambassador <method>"), a child of the caller's trace context
// as the global propagator extracts it (W3C traceparent once the main set
// it), and, through every service stack, a client span per attempt below
// it (see ambassador.WithTracerProvider). Without it there are no spans.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *serverOptions) {
		if tp == nil {
			return
		}
		o.tracer = tp.Tracer(tracerName)
		o.stack = append(o.stack, ambassador.WithTracerProvider(tp))
	}
}

// WithStackOptions passes opts to every service stack the server builds
// (ambassador.WithBase, for instance).
func WithStackOptions(opts ...ambassador.Option) Option {
	return func(o *serverOptions) { o.stack = append(o.stack, opts...) }
}

// WithMetricsHandler sets the handler of the admin listener's /metrics,
// typically promhttp's handler over the registry of the OpenTelemetry
// Prometheus exporter. Without it /metrics answers 404.
func WithMetricsHandler(h http.Handler) Option {
	return func(o *serverOptions) { o.metrics = h }
}

// WithReady registers f to be called once every listener is bound, before
// the first request is served. Addrs and AdminAddr are valid from then on.
func WithReady(f func()) Option {
	return func(o *serverOptions) { o.ready = f }
}

// Server is the ambassador process as a value: listeners that route
// requests to service stacks, and an admin listener.
//
// NewServer builds one ambassador.Stack per service; Run binds the listeners and
// serves until its context is done; Reload swaps in a new configuration
// while it runs. Its methods are safe for concurrent use.
//
// Every listener speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on
// one port. A listener with service: sends every request to that service;
// one with routes: takes the first route whose host (compared without case
// and port; an absolute URI's host wins over the Host header) and path
// prefix match, and a split: route picks one of its services by weight for
// each request. A request that matches nothing gets 404 with
// X-Outbound-Error: no_route and causes no outbound connection.
//
// Requests are proxied by httputil.ReverseProxy to http://<service>/<path>,
// so the service's discovery layer picks the endpoint of each attempt;
// gRPC calls on connections that begin with a gRPC request, on listeners
// whose services are all h2c, are served by grpc-go's transport and take
// the native gRPC path instead (see the package doc, # gRPC).
// Bodies stream both ways, hop-by-hop headers are dropped, trailers and
// upgrades (WebSocket) pass through, and an upstream's own X-Outbound-Error
// is removed from its headers, trailers and 1xx responses (at most 5 of
// which are relayed). An offer to upgrade to h2c is never forwarded: the
// h2c token leaves the Upgrade header and HTTP2-Settings is removed, so the
// request reaches the upstream as a plain request (or with its other
// offers, such as websocket) and no upstream can turn the client's
// connection into an HTTP/2 connection past the routes and policies. An
// HTTP/1.x client connection is closed after answering a request with a
// Transfer-Encoding body (RFC 9112 §6.1), so a request framed one way by
// Content-Length and another by Transfer-Encoding cannot carry a second,
// smuggled request. Client connections are capped and idle ones closed as
// limits says (see the package doc). When the stack fails, the answer is
// made here, with
// X-Outbound-Error naming the reason (see the Reason constants); a gRPC
// client gets a trailers-only gRPC status instead (UNAVAILABLE,
// RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, UNIMPLEMENTED for no_route) with
// the reason in its x-outbound-error metadata. A grpc-timeout header bounds
// the upstream call; once it has passed the answer is DEADLINE_EXCEEDED
// (upstream_timeout), also when the upstream, which learnt the same
// deadline, reset the stream first. max_concurrent_requests refuses the
// excess of a service at once with 503 overloaded.
//
// HTTP/2 requests that RFC 9113 §8.2.2 calls malformed (a connection-specific
// header field such as Connection or Transfer-Encoding, TE other than
// "trailers") never reach a handler: net/http's HTTP/2 server answers them
// 400 itself, so they are not proxied, carry no X-Outbound-Error and write
// no access-log line.
//
// Each request writes one access-log line (route, service, endpoint,
// status, attempts, duration, and the reason when the ambassador answered).
type Server struct {
	opts serverOptions

	mu       sync.Mutex // serializes Reload, Run's start and Close
	cfg      *Config
	addrs    []string // listener addresses in the order of the first config
	table    atomic.Pointer[table]
	bound    atomic.Bool
	draining atomic.Bool
	loaded   atomic.Pointer[loadInfo] // the config in use, for /status and /config
	closed   bool
	running  bool

	boundAddrs []net.Addr
	adminAddr  net.Addr
	ready      chan struct{}

	shuttingDown atomic.Bool   // in limits.shutdown_delay (shutdown.go)
	endDelay     chan struct{} // closed by EndShutdownDelay
	endDelayOnce sync.Once

	tunnels tunnels // hijacked client connections: WebSocket (tunnels.go)
	// handlers counts the HTTP listeners' handlers running, so that the
	// drain returns only after a request it cut has written its line.
	handlers sync.WaitGroup

	reqMetrics *serverMetrics // http.server.request.duration
	tcpMetrics *tcpMetrics    // outbound.tcp.* (tcpmetrics.go)
}

// NewServer builds the service stacks and routing of c. c should come from
// LoadConfig or ParseConfig, which validate it. Call Run to serve, or Close
// to release the stacks without serving.
func NewServer(c *Config, opts ...Option) (*Server, error) {
	if c == nil {
		return nil, errors.New("ambassador: nil config")
	}
	s := &Server{ready: make(chan struct{}), endDelay: make(chan struct{})}
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.logger == nil {
		s.opts.logger = slog.Default()
		s.opts.stack = append([]ambassador.Option{ambassador.WithLogger(s.opts.logger)}, s.opts.stack...)
	}
	mp := s.opts.mp
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	var err error
	if s.reqMetrics, err = newServerMetrics(mp); err != nil {
		return nil, fmt.Errorf("ambassador: http.server.request.duration: %w", err)
	}
	if s.tcpMetrics, err = newTCPMetrics(mp); err != nil {
		return nil, fmt.Errorf("ambassador: outbound.tcp metrics: %w", err)
	}
	if len(c.Listeners) == 0 {
		return nil, errors.New("ambassador: listeners: at least one listener is needed")
	}
	seen := map[string]bool{}
	for i, l := range c.Listeners {
		if seen[l.Address] && !strings.HasSuffix(l.Address, ":0") {
			return nil, fmt.Errorf("ambassador: listeners[%d].address: %q is used twice", i, l.Address)
		}
		seen[l.Address] = true
		s.addrs = append(s.addrs, l.Address)
	}
	t, err := s.buildTable(c, nil)
	if err != nil {
		return nil, err
	}
	s.cfg = c
	s.loaded.Store(newLoadInfo(c))
	s.table.Store(t)
	return s, nil
}

// buildTable builds the routing table of c, reusing the entries of old
// whose ambassador.ServiceConfig did not change.
func (s *Server) buildTable(c *Config, old *table) (*table, error) {
	t := &table{services: make(map[string]*serviceEntry, len(c.Services))}
	var built []*serviceEntry
	for name, sc := range c.Services {
		sc.Name = name
		if old != nil {
			if oe := old.services[name]; oe != nil && reflect.DeepEqual(oe.cfg, sc) {
				t.services[name] = oe
				t.order = append(t.order, name)
				continue
			}
		}
		e, err := s.newServiceEntry(name, sc)
		if err != nil {
			for _, b := range built {
				b.close()
			}
			return nil, fmt.Errorf("ambassador: services.%s: %w", name, err)
		}
		built = append(built, e)
		t.services[name] = e
		t.order = append(t.order, name)
	}
	slices.Sort(t.order)
	if err := sameListenerAddresses(s.addrs, c.Listeners); err != nil {
		for _, b := range built {
			b.close()
		}
		return nil, err
	}
	tcs := s.newTranscoders()
	// Match listeners by address (in order, for repeated ":0" addresses).
	byAddr := make(map[string][]ListenerConfig, len(c.Listeners))
	for _, l := range c.Listeners {
		byAddr[l.Address] = append(byAddr[l.Address], l)
	}
	for _, addr := range s.addrs {
		ls := byAddr[addr]
		l := ls[0]
		byAddr[addr] = ls[1:]
		for _, name := range append([]string{l.Service}, routeServices(l)...) {
			if name != "" && t.services[name] == nil {
				for _, b := range built {
					b.close()
				}
				return nil, fmt.Errorf("ambassador: listener %s: no service %q", addr, name)
			}
		}
		lr := buildRoutes(l, t.services)
		if err := tcs.attach(lr, l); err != nil {
			for _, b := range built {
				b.close()
			}
			return nil, err
		}
		t.listeners = append(t.listeners, lr)
	}
	return t, nil
}

// sameListenerAddresses refuses a reload whose listeners are not the
// addresses the process started with (in any order, each as many times),
// naming the listener that is new or the address that is gone.
func sameListenerAddresses(started []string, ls []ListenerConfig) error {
	left := make(map[string]int, len(started))
	for _, a := range started {
		left[a]++
	}
	for i, l := range ls {
		if left[l.Address] == 0 {
			return fmt.Errorf("ambassador: listeners[%d].address: %s is not a listener the process started with; the set of listener addresses cannot change without a restart", i, l.Address)
		}
		left[l.Address]--
	}
	for _, a := range started {
		if left[a] > 0 {
			return fmt.Errorf("ambassador: listeners: no listener on %s, which the process started with; the set of listener addresses cannot change without a restart", a)
		}
	}
	return nil
}

func routeServices(l ListenerConfig) []string {
	var out []string
	for _, r := range l.Routes {
		out = append(out, r.Service)
		for _, sp := range r.Split {
			out = append(out, sp.Service)
		}
	}
	return out
}

// Reload swaps in c for new requests. Services whose ambassador.ServiceConfig is
// unchanged keep their stack (breakers, limiters, endpoint state); removed
// and changed ones are closed once their in-flight requests finish. Listener
// addresses, limits and the admin address are fixed at start: a c that
// changes the set of listener addresses is refused. On error the running
// configuration stays.
func (s *Server) Reload(c *Config) error {
	if c == nil {
		return errors.New("ambassador: nil config")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("ambassador: server closed")
	}
	if err := sameListenerProtocols(s.cfg, c); err != nil {
		return err
	}
	old := s.table.Load()
	t, err := s.buildTable(c, old)
	if err != nil {
		return err
	}
	s.table.Store(t)
	if !reflect.DeepEqual(s.cfg.Limits, c.Limits) || s.cfg.Admin != c.Admin {
		s.opts.logger.Warn("reload: changes to limits and admin take effect at the next restart")
	}
	s.cfg = c
	s.loaded.Store(newLoadInfo(c))
	for name, oe := range old.services {
		if t.services[name] != oe {
			oe.retire()
		}
	}
	return nil
}

// Addrs returns the bound addresses of the listeners in config order, once
// Run has bound them (see WithReady); nil before.
func (s *Server) Addrs() []net.Addr {
	select {
	case <-s.ready:
		return slices.Clone(s.boundAddrs)
	default:
		return nil
	}
}

// AdminAddr returns the bound address of the admin listener once Run has
// bound it; nil before.
func (s *Server) AdminAddr() net.Addr {
	select {
	case <-s.ready:
		return s.adminAddr
	default:
		return nil
	}
}

// Ready is closed once every listener is bound.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Close releases the service stacks of a server that is not running (Run
// does it itself when it returns). In-flight requests keep their stacks
// until they finish.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, e := range s.table.Load().services {
		e.retire()
	}
	return nil
}

// Run binds every listener and the admin listener, then serves until ctx is
// done. A listener that cannot be bound is a runtime error returned at once.
// When ctx is done Run keeps accepting and serving for limits.shutdown_delay
// (0 by default) while /readyz answers 503 "shutting down" (see
// EndShutdownDelay), then stops accepting, waits up to limits.drain_timeout
// for in-flight requests, WebSocket tunnels and tcp pairs, closes what is
// left and the service stacks, and returns nil.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	c := s.cfg
	closed, running := s.closed, s.running
	s.running = true
	s.mu.Unlock()
	if closed || running {
		return errors.New("ambassador: Run called on a closed or running server")
	}
	lim := c.Limits
	lim.MaxHeaderBytes = lim.MaxHeaderBytesOrDefault()
	lim.ReadHeaderTimeout = lim.ReadHeaderTimeoutOrDefault()
	lim.DrainTimeout = lim.DrainTimeoutOrDefault()
	adminAddr := c.AdminAddress()

	lns, err := s.bind(ctx, adminAddr)
	if err != nil {
		return err
	}
	servers := s.newHTTPServers(lns, lim)
	tcps := s.newTCPListeners(c, lns)
	natives := s.newNativeListeners(lns, tcps, lim) // grpcserve.go

	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve := srv.Serve
			ln := lns[i]
			if tcps[i] != nil {
				serve = func(net.Listener) error { return tcps[i].serve() }
			} else if natives[i] != nil {
				natives[i].start()
				ln = natives[i].router.httpLn
			}
			if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("ambassador: serve %s: %w", lns[i].Addr(), err)
			}
		}()
	}
	s.bound.Store(true)
	for i, a := range s.boundAddrs {
		s.opts.logger.Info("listening", "listener", s.addrs[i], "addr", a.String())
	}
	s.opts.logger.Info("admin listening", "addr", s.adminAddr.String())
	// Ready after the lines: whoever waits on Ready may read the log.
	close(s.ready)
	if s.opts.ready != nil {
		s.opts.ready()
	}

	var runErr error
	select {
	case <-ctx.Done():
		runErr = s.delayShutdown(lim.ShutdownDelay, errc)
	case runErr = <-errc:
	}

	waitNative := stopNative(natives, lim.DrainTimeout)
	s.drain(servers, tcps, lim.DrainTimeout)
	waitNative()
	wg.Wait()
	_ = s.Close()
	s.opts.logger.Info("stopped")
	return runErr
}

// bind listens on every listener's address and then adminAddr (last):
// binding everything first makes a port in use fail the start, not a
// request. On failure it closes what it bound and the server.
func (s *Server) bind(ctx context.Context, adminAddr string) ([]net.Listener, error) {
	var lc net.ListenConfig
	lns := make([]net.Listener, 0, len(s.addrs)+1)
	for _, addr := range append(slices.Clone(s.addrs), adminAddr) {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			_ = s.Close()
			return nil, fmt.Errorf("ambassador: listen %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// newHTTPServers makes the http.Server of each listener in lns (the admin
// listener last), wraps the proxy listeners in the client connection
// limit, and records the bound addresses.
func (s *Server) newHTTPServers(lns []net.Listener, lim LimitsConfig) []*http.Server {
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	errLog := slog.NewLogLogger(s.opts.logger.Handler(), slog.LevelDebug)
	conns := s.clientConnLimiter(lim)
	servers := make([]*http.Server, len(lns))
	for i := range lns {
		srv := &http.Server{
			Protocols:         protos,
			MaxHeaderBytes:    int(lim.MaxHeaderBytes),
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			IdleTimeout:       lim.IdleTimeoutOrDefault(),
			ErrorLog:          errLog,
		}
		if i < len(s.addrs) {
			lns[i] = conns.listener(lns[i])
			srv.ConnState = conns.connState
			srv.Handler = &listenerHandler{s: s, idx: i}
			s.boundAddrs = append(s.boundAddrs, lns[i].Addr())
		} else {
			srv.Handler = s.adminHandler()
			s.adminAddr = lns[i].Addr()
		}
		servers[i] = srv
	}
	return servers
}

// drain stops accepting and lets in-flight requests, tcp pairs and
// WebSocket tunnels finish for up to timeout, then closes what is left and
// waits for the handlers of what it closed; the admin listener (last)
// closes at once after.
func (s *Server) drain(servers []*http.Server, tcps []*tcpListener, timeout time.Duration) {
	s.draining.Store(true)
	s.opts.logger.Info("draining", "timeout", timeout.String())
	dctx, cancel := context.WithTimeout(context.Background(), timeout)
	var dwg sync.WaitGroup
	for i, srv := range servers[:len(servers)-1] {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			if tcps[i] != nil {
				tcps[i].shutdown(dctx)
				return
			}
			if err := srv.Shutdown(dctx); err != nil {
				s.opts.logger.Warn("drain timeout: closing remaining connections", "error", err)
				_ = srv.Close()
			}
		}()
	}
	dwg.Wait()
	s.tunnels.drain(dctx)
	cancel()
	// http.Server.Close closes the connections of the requests still in
	// flight but does not wait for their handlers; each returns as its
	// context ends, and writes its access-log line and metric on the way.
	s.handlers.Wait()
	_ = servers[len(servers)-1].Close() // admin
}
