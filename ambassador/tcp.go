package ambassador

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/confcheck"
	"github.com/outbound-go/outbound/retry"
)

// DefaultConnectTimeout bounds one connect of a tcp service (the TLS
// handshake included) when TCPConfig.ConnectTimeout is 0.
const DefaultConnectTimeout = 5 * time.Second

// ErrTCPService is returned by NewTransport, NewStack and DialOptions for a
// service of protocol tcp: its endpoints speak raw TCP, not HTTP or gRPC.
// Build it with NewTCPStack instead (the process's tcp listeners do).
var ErrTCPService = errors.New("protocol tcp is raw TCP: NewTransport and DialOptions need http1, h2c or h2 (tcp services are for the process's tcp listeners)")

// TCPConfig is the tcp: block of a service of protocol tcp: how the
// process's tcp listeners connect client connections to its endpoints.
// Zero values mean the defaults shown.
type TCPConfig struct {
	// ConnectTimeout bounds one connect attempt, the TLS handshake
	// included; 0 means 5s; at most 24h.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// IdleTimeout closes a pair with no bytes either way for this long; 0
	// means never; at most 24h.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// QueueTimeout is how long a new client connection waits for a slot
	// when every ready endpoint is at max_connections; 0 means it is
	// closed at once; at most 24h.
	QueueTimeout time.Duration `yaml:"queue_timeout"`
}

// ConnectTimeoutOrDefault returns ConnectTimeout, or DefaultConnectTimeout when it is 0.
func (t TCPConfig) ConnectTimeoutOrDefault() time.Duration {
	if t.ConnectTimeout <= 0 {
		return DefaultConnectTimeout
	}
	return t.ConnectTimeout
}

// checkTCP checks the tcp block, and what a tcp service cannot use.
func (s ServiceConfig) checkTCP(ck confcheck.Checker) {
	if s.Protocol != ProtocolTCP {
		if s.TCP != (TCPConfig{}) {
			ck.Add("tcp", "only for protocol tcp (protocol is %q)", s.Protocol)
		}
		return
	}
	ck.CheckRange("tcp.connect_timeout", int64(s.TCP.ConnectTimeout), int64(MaxServiceTimeout), MaxServiceTimeout.String())
	ck.CheckRange("tcp.idle_timeout", int64(s.TCP.IdleTimeout), int64(MaxServiceTimeout), MaxServiceTimeout.String())
	ck.CheckRange("tcp.queue_timeout", int64(s.TCP.QueueTimeout), int64(MaxServiceTimeout), MaxServiceTimeout.String())
	if s.RateLimit != nil {
		ck.Add("ratelimit", "not supported for protocol tcp")
	}
	if s.Discovery.HealthCheck.Path != "" {
		ck.Add("discovery.health_check.path", "HTTP health checks need an HTTP service, not protocol tcp")
	}
	if s.HostHeader != "" {
		ck.Add("host_header", "not used by protocol tcp")
	}
}

// TCPStack holds the policies of one tcp service: discovery (with the
// breaker as its Health), the breaker, the retry policy (its max_attempts
// and backoff pace connect attempts) and the TLS material, reloaded when
// its files change. It does not pick or connect by itself: the process's
// tcp listeners (package ambassador/proxy) do, with Dial for each attempt.
// It is safe for concurrent use; Close releases its goroutines.
type TCPStack struct {
	cfg     ServiceConfig
	tls     *tlsSource
	disc    *discovery.Service
	breaker *breaker.Breaker
	retry   *retry.Policy

	closeOnce sync.Once
	closeErr  error
}

// NewTCPStack validates c, which must have protocol tcp, and builds its
// policies (WithBase does not apply). The caller must Close it.
func NewTCPStack(c ServiceConfig, opts ...Option) (*TCPStack, error) {
	if c.Protocol != ProtocolTCP {
		return nil, fmt.Errorf("ambassador: service %q: NewTCPStack needs protocol tcp, not %q", c.Name, c.Protocol)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("ambassador: service %q: %w", c.Name, err)
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
	t := &TCPStack{cfg: c}
	var s Stack
	err := s.buildPolicies(c, o)
	t.disc, t.breaker, t.retry = s.disc, s.breaker, s.retry
	if err == nil && c.TLS.enabled() {
		t.tls, err = newTLSSource(c.TLS, logger.With("service", c.Name))
	}
	if err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("ambassador: service %q: %w", c.Name, err)
	}
	return t, nil
}

// Config returns the service config the stack was built from.
func (t *TCPStack) Config() ServiceConfig { return t.cfg }

// Discovery returns the stack's discovery service (never nil).
func (t *TCPStack) Discovery() *discovery.Service { return t.disc }

// Breaker returns the stack's breaker, nil when breaker is not configured.
func (t *TCPStack) Breaker() *breaker.Breaker { return t.breaker }

// Retry returns the stack's retry policy, nil when retry is not configured
// (one connect attempt).
func (t *TCPStack) Retry() *retry.Policy { return t.retry }

// Dial connects to addr, and when tls is set completes the TLS handshake
// with the current certificates (mTLS with cert_file and key_file), all
// within the tcp connect_timeout and ctx. A failed handshake is returned as
// a dial *net.OpError, as a refused connect is.
func (t *TCPStack) Dial(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.TCP.ConnectTimeoutOrDefault())
	defer cancel()
	d := &net.Dialer{KeepAlive: baseKeepAlive}
	if t.tls != nil {
		return t.tls.dial(ctx, d, "tcp", addr, nil)
	}
	return d.DialContext(ctx, "tcp", addr)
}

// Close stops the stack's goroutines (discovery, breaker housekeeping,
// certificate reloads). It is safe to call more than once.
func (t *TCPStack) Close() error {
	t.closeOnce.Do(func() {
		var errs []error
		if t.disc != nil {
			errs = append(errs, t.disc.Close())
		}
		if t.breaker != nil {
			errs = append(errs, t.breaker.Close())
		}
		if t.retry != nil {
			errs = append(errs, t.retry.Close())
		}
		if t.tls != nil {
			errs = append(errs, t.tls.Close())
		}
		t.closeErr = errors.Join(errs...)
	})
	return t.closeErr
}
