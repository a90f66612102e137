package ambassador

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// Protocols a service's endpoints speak (ServiceConfig.Protocol).
const (
	// ProtocolHTTP1 is HTTP/1.1, over TLS when tls is set. The default.
	ProtocolHTTP1 = "http1"
	// ProtocolH2C is HTTP/2 with prior knowledge over cleartext TCP (gRPC without TLS).
	ProtocolH2C = "h2c"
	// ProtocolH2 is HTTP/2 over TLS, negotiated by ALPN.
	ProtocolH2 = "h2"
	// ProtocolTCP is raw TCP (a database, a cache), over TLS when tls is
	// set. Only the process's tcp listeners use such a service (see
	// NewTCPStack); NewTransport, NewStack and DialOptions refuse it.
	ProtocolTCP = "tcp"
)

// DefaultTimeout bounds a logical request when ServiceConfig.Timeout is 0.
const DefaultTimeout = 15 * time.Second

// ServiceConfig describes one upstream service and the policies in front of
// it. Name is the logical host: a Stack built from it sends http://<Name>/…
// to the service's endpoints. In the process config the key under services
// fills Name.
//
// An absent (nil) Retry, RateLimit or Breaker leaves that policy out of the
// stack; a present one, even empty, is the policy with its defaults. In
// YAML a bare key with no value ("retry:", a null) counts as present: the
// policy with its defaults (for ratelimit, an error, as rps is required).
type ServiceConfig struct {
	// Name is the logical host name of the service, such as "users".
	Name string `yaml:"name"`
	// Discovery names exactly one endpoint source and the balancer.
	Discovery discovery.Config `yaml:"discovery"`
	// Protocol is http1 (""), h2c or h2; gRPC needs h2c or h2; tcp is
	// raw TCP for the process's tcp listeners (see NewTCPStack).
	Protocol string `yaml:"protocol"`
	// TLS, when any field is set, originates TLS to the endpoints (mTLS
	// with CertFile and KeyFile). Protocol h2 implies TLS.
	TLS TLSConfig `yaml:"tls"`
	// Timeout bounds the whole logical request, retries and the reading of
	// the response body included; 0 means 15s; at most 24h
	// (MaxServiceTimeout).
	Timeout time.Duration `yaml:"timeout"`
	// MaxConnections caps connections per endpoint; 0 means unlimited; at
	// most 1e6 (MaxConnectionsLimit).
	MaxConnections int `yaml:"max_connections"`
	// MaxConcurrentRequests caps in-flight requests to the whole service in
	// the ambassador process (which refuses the excess with 503 overloaded);
	// 0 means unlimited; at most 1e6. It is a setting of the process
	// (package ambassador/proxy) kept with the service's other settings.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// HostHeader chooses the Host header sent upstream on every attempt:
	// "" or HostEndpoint, HostPreserve, or a literal host name or
	// host:port such as "api.example.com" (see HostEndpoint). It does not
	// change the TLS server name: that is TLS.ServerName.
	HostHeader string `yaml:"host_header"`
	// Retry configures retries; nil leaves retry out of the stack.
	Retry *retry.Config `yaml:"retry"`
	// RateLimit configures rate limiting; nil leaves it out. Its rps is required.
	RateLimit *ratelimit.Config `yaml:"ratelimit"`
	// Breaker configures per-endpoint circuit breakers; nil leaves them out.
	Breaker *breaker.Config `yaml:"breaker"`
	// TCP holds the connection settings of a protocol tcp service, used by
	// the process's tcp listeners; it must be empty for other protocols.
	TCP TCPConfig `yaml:"tcp"`
}

// TLSConfig configures TLS origination to a service's endpoints. The files
// are PEM, each a regular file (or a symbolic link to one) of at most
// MaxTLSFileSize (1 MiB): a FIFO, a device or a larger file is an error,
// never read. They are re-read when they change on disk, and a bad new
// file keeps the previous material in use (the error is logged).
type TLSConfig struct {
	// CAFile holds the CA certificates that verify the endpoints; "" means
	// the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile is the client certificate chain for mTLS; needs KeyFile.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the client certificate's private key; needs CertFile.
	KeyFile string `yaml:"key_file"`
	// ServerName is the name verified in the endpoints' certificates (and
	// sent as SNI); "" means the endpoint's host (for gRPC, the target's authority).
	ServerName string `yaml:"server_name"`
}

// enabled reports whether any field is set, which turns TLS origination on.
func (t TLSConfig) enabled() bool { return t != TLSConfig{} }

// timeoutOrDefault returns Timeout, or DefaultTimeout when it is 0.
func (c ServiceConfig) timeoutOrDefault() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// usesTLS reports whether the endpoints are reached over TLS.
func (c ServiceConfig) usesTLS() bool { return c.Protocol == ProtocolH2 || c.TLS.enabled() }

// Option customises NewStack, NewTransport and DialOptions with what is not
// data: the base transport, telemetry providers, the logger.
type Option func(*options)

type options struct {
	base   http.RoundTripper
	mp     metric.MeterProvider
	tp     trace.TracerProvider
	logger *slog.Logger
	disc   []discovery.Option // DialOptions: start discovery on use
}

// WithBase sets the transport under the stack. By default the stack builds
// a tuned *http.Transport from the service's protocol, tls and
// max_connections; with WithBase those keys are the base's business (the
// stack still switches the URL scheme to https when tls or h2 is
// configured). Hosts other than the service's name go straight to the base.
// DialOptions of a stack with WithBase cannot originate TLS.
func WithBase(rt http.RoundTripper) Option { return func(o *options) { o.base = rt } }

// WithMeterProvider sets the meter provider of every policy in the stack
// (the global one by default). Given explicitly, it also turns on the
// client metrics http.client.request.duration (s) and
// http.client.request.body.size (By), one measurement per attempt with the
// semantic conventions' attributes (as otelhttp records them) and service.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.mp = mp } }

// WithTracerProvider turns on a client span per attempt ("HTTP GET", with
// the semantic conventions' attributes as otelhttp sets them), created with
// tp, whose context is propagated to the upstream with the global
// propagator. Each attempt's span carries service,
// outbound.attempt (from 1), outbound.endpoint (the host:port discovery
// picked) and http.request.resend_count (outbound.attempt-1), and is a
// child of the span in the request's context.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// WithLogger sets the logger of the stack and its policies (slog.Default()
// by default).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Stack is the recommended client stack for one service:
//
//	retry → ratelimit → discovery → breaker → base transport
//
// bounded by the service's timeout. It is an http.RoundTripper, safe for
// concurrent use, and owns goroutines (endpoint refresh, health checks,
// certificate reloads): Close releases them.
type Stack struct {
	cfg         ServiceConfig
	name        string
	timeout     time.Duration
	chain       http.RoundTripper
	passthrough http.RoundTripper
	base        http.RoundTripper
	owned       *http.Transport
	tls         *tlsSource

	retry   *retry.Policy
	limiter *ratelimit.Limiter
	disc    *discovery.Service
	breaker *breaker.Breaker

	closeOnce sync.Once
	closeErr  error
}

var (
	_ http.RoundTripper = (*Stack)(nil)
	_ io.Closer         = (*Stack)(nil)
)

// NewTransport returns the recommended stack for service c as an
// http.RoundTripper; its dynamic type is *Stack, which also implements
// io.Closer. Requests to http://<c.Name>/… go through the stack; requests
// to any other host go untouched to the WithBase transport, or without one
// to http.DefaultTransport (the service's own transport, with its TLS
// material and protocol, is kept for the service's endpoints).
func NewTransport(c ServiceConfig, opts ...Option) (http.RoundTripper, error) {
	s, err := NewStack(c, opts...)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// NewStack validates c (a *ConfigError lists every problem, with paths
// relative to the service) and builds its stack. Each policy is present
// only when its section is non-nil; the breaker, when present, is the
// discovery service's Health, so endpoints with an open breaker are skipped.
func NewStack(c ServiceConfig, opts ...Option) (*Stack, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("ambassador: service %q: %w", c.Name, err)
	}
	if c.Protocol == ProtocolTCP {
		return nil, fmt.Errorf("ambassador: service %q: %w", c.Name, ErrTCPService)
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	logger := o.logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Stack{cfg: c, name: c.Name, timeout: c.timeoutOrDefault()}
	fail := func(err error) (*Stack, error) {
		_ = s.Close()
		return nil, fmt.Errorf("ambassador: service %q: %w", c.Name, err)
	}

	if c.usesTLS() && o.base == nil {
		ts, err := newTLSSource(c.TLS, logger.With("service", c.Name))
		if err != nil {
			return fail(err)
		}
		s.tls = ts
	}
	s.base = o.base
	if s.base == nil {
		s.owned = newBaseTransport(c, s.tls)
		s.base = s.owned
	}
	s.passthrough = o.base
	if s.passthrough == nil {
		s.passthrough = http.DefaultTransport
	}

	below := guardResends(s.base, s.owned != nil && (c.Protocol == ProtocolH2 || c.Protocol == ProtocolH2C))
	if o.mp != nil || o.tp != nil {
		ct, err := newClientTelemetry(below, c.Name, o.mp, o.tp)
		if err != nil {
			return fail(fmt.Errorf("telemetry: %w", err))
		}
		below = ct
	}
	if c.usesTLS() {
		below = httpsScheme{below}
	}

	if err := s.buildPolicies(c, o); err != nil {
		return fail(err)
	}

	mws := make([]Middleware, 0, 4)
	if s.retry != nil {
		mws = append(mws, s.retry.RoundTripper)
	}
	if s.limiter != nil {
		mws = append(mws, s.limiter.RoundTripper)
	}
	mws = append(mws, s.disc.RoundTripper)
	if s.breaker != nil {
		mws = append(mws, s.breaker.RoundTripper)
	}
	s.chain = Chain(below, mws...)
	return s, nil
}

// buildPolicies builds the breaker, discovery, ratelimit and retry of c
// into s, each only when c has its section (discovery always).
func (s *Stack) buildPolicies(c ServiceConfig, o options) error {
	if c.Breaker != nil {
		var bo []breaker.Option
		if o.mp != nil {
			bo = append(bo, breaker.WithMeterProvider(o.mp))
		}
		bo = append(bo, breaker.WithService(c.Name))
		if o.logger != nil {
			bo = append(bo, breaker.WithLogger(o.logger))
		}
		b, err := breaker.New(*c.Breaker, bo...)
		if err != nil {
			return fmt.Errorf("breaker: %w", err)
		}
		s.breaker = b
	}

	src, err := discovery.FromConfig(c.Discovery)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	var do []discovery.Option
	if s.breaker != nil {
		do = append(do, discovery.WithHealth(s.breaker))
	}
	if o.mp != nil {
		do = append(do, discovery.WithMeterProvider(o.mp))
	}
	if o.logger != nil {
		do = append(do, discovery.WithLogger(o.logger))
	}
	do = append(do, c.hostOptions()...)
	do = append(do, o.disc...)
	svc, err := discovery.NewService(c.Name, src, c.Discovery, do...)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	s.disc = svc

	if c.RateLimit != nil {
		lo := []ratelimit.Option{ratelimit.WithService(c.Name)}
		if o.mp != nil {
			lo = append(lo, ratelimit.WithMeterProvider(o.mp))
		}
		if o.logger != nil {
			lo = append(lo, ratelimit.WithLogger(o.logger))
		}
		l, err := ratelimit.New(*c.RateLimit, lo...)
		if err != nil {
			return fmt.Errorf("ratelimit: %w", err)
		}
		s.limiter = l
	}
	if c.Retry != nil {
		ro := []retry.Option{retry.WithService(c.Name)}
		if o.mp != nil {
			ro = append(ro, retry.WithMeterProvider(o.mp))
		}
		if o.logger != nil {
			ro = append(ro, retry.WithLogger(o.logger))
		}
		p, err := retry.New(*c.Retry, ro...)
		if err != nil {
			return fmt.Errorf("retry: %w", err)
		}
		s.retry = p
	}
	return nil
}

// RoundTrip sends a request for the service's logical host through the
// stack, bounded by the service timeout: the deadline covers every attempt
// and the reading of the response body, and is released when the body is
// read to its end or closed. The logical host matches ignoring case and the
// scheme's default port (http://USERS/x, http://users:80/x and
// https://users:443/x are the service; http://users:8080/x is not). A
// request for any other host goes to the base transport untouched. When the timeout fires, errors.Is(err,
// context.DeadlineExceeded) holds.
func (s *Stack) RoundTrip(req *http.Request) (*http.Response, error) {
	req, ok := s.serviceRequest(req)
	if !ok {
		return s.passthrough.RoundTrip(req)
	}
	if dl, ok := req.Context().Deadline(); ok && time.Until(dl) <= s.timeout {
		// The caller's deadline is the tighter bound: nothing to add.
		return s.chain.RoundTrip(req)
	}
	parent := req.Context()
	now := time.Now()
	c := &stackCall{lazyCtx: lazyCtx{parent: parent, deadline: now.Add(s.timeout)}}
	var (
		resp *http.Response
		err  error
	)
	if crt, ok := s.chain.(attempt.ContextRoundTripper); ok {
		// The retry layer copies the request for every attempt anyway:
		// hand it the context instead of copying the request here too,
		// and its call state, allocated with ours.
		// The clock reading is shared too (budget, rate limiter).
		// The first attempt's context is the re-send guard's, so the
		// guard sends that attempt's request without a copy.
		c.call.UseURL(&c.url)
		c.call.UseFirstParent(c.link())
		resp, err = crt.RoundTripContext(c, req, now, &c.call)
	} else {
		resp, err = s.chain.RoundTrip(req.WithContext(c.link()))
	}
	if err != nil {
		timedOut := c.Err() != nil && parent.Err() == nil
		c.release()
		if timedOut && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("ambassador: service %q: timeout %s: %w: %w", s.name, s.timeout, context.DeadlineExceeded, err)
		}
		return nil, err
	}
	// An upgraded connection belongs to the caller from here on: the
	// timeout bounded the handshake only.
	return c.holdFor(resp, &c.body), nil
}

// CloseIdleConnections closes the idle connections of the base transport
// (http.Client.CloseIdleConnections calls it).
func (s *Stack) CloseIdleConnections() {
	if c, ok := s.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Close stops the stack's goroutines (discovery refresh and health checks,
// limiter and breaker housekeeping, certificate reloads) and closes idle
// connections of the transport it built. It is safe to call more than once.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.limiter != nil {
			errs = append(errs, s.limiter.Close())
		}
		if s.disc != nil {
			errs = append(errs, s.disc.Close())
		}
		if s.breaker != nil {
			errs = append(errs, s.breaker.Close())
		}
		if s.tls != nil {
			errs = append(errs, s.tls.Close())
		}
		if s.owned != nil {
			s.owned.CloseIdleConnections()
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Discovery returns the stack's discovery service (never nil).
func (s *Stack) Discovery() *discovery.Service { return s.disc }

// Breaker returns the stack's breaker, nil when breaker is not configured.
func (s *Stack) Breaker() *breaker.Breaker { return s.breaker }

// Limiter returns the stack's rate limiter, nil when ratelimit is not configured.
func (s *Stack) Limiter() *ratelimit.Limiter { return s.limiter }

// Retry returns the stack's retry policy, nil when retry is not configured.
func (s *Stack) Retry() *retry.Policy { return s.retry }
