package ambassador

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/classify"
)

// DialOptions gives a grpc client the same policies as NewTransport: the
// retry and ratelimit interceptors (in that order, retry outermost), the
// service timeout on unary calls, the discovery resolver (scheme
// "outbound") with the balancer chosen by service config, the per-endpoint
// breaker at the balancer's pick (each attempt is admitted and counted by
// the breaker of the endpoint it goes to, and endpoints whose breaker is
// open are skipped: when every endpoint is ejected a call fails with
// codes.Unavailable and discovery.ErrNoEndpoints), and
// transport credentials for the protocol (cleartext h2c for "" and h2c; TLS
// with the tls files, re-read at each handshake, for h2), and response
// metadata bounded by MaxResponseHeaderBytes. Dial the target
// "outbound:///" + c.Name:
//
//	opts, err := ambassador.DialOptions(cfg)
//	conn, err := grpc.NewClient("outbound:///users", opts...)
//
// The options hold no goroutine of their own: discovery's (source watch,
// health checks) run while grpc holds the resolver, from when a ClientConn
// first connects or leaves idle mode until it closes or enters idle mode
// (discovery.WithStartOnUse), so options that were never dialed cost none,
// and grpc's idle mode stays as grpc configures it (grpc.WithIdleTimeout).
// TLS files are read at each handshake instead of being watched. Metric
// callbacks stay registered for the life of the process; to release them use
// NewStack, (*Stack).DialOptions and (*Stack).Close.
// Protocol http1 is refused: gRPC needs HTTP/2.
func DialOptions(c ServiceConfig, opts ...Option) ([]grpc.DialOption, error) {
	if c.Protocol == ProtocolHTTP1 {
		return nil, fmt.Errorf("ambassador: service %q: gRPC needs protocol h2c or h2, not http1", c.Name)
	}
	opts = append(opts[:len(opts):len(opts)], func(o *options) { o.disc = append(o.disc, discovery.WithStartOnUse()) })
	s, err := NewStack(c, opts...)
	if err != nil {
		return nil, err
	}
	dopts, err := s.DialOptions()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	if s.tls != nil {
		// No watcher: reloadingCreds re-reads the files at each handshake.
		_ = s.tls.Close()
	}
	return dopts, nil
}

// DialOptions returns the grpc dial options of the stack (see the package
// function DialOptions; dial "outbound:///" + the service's name); the
// stack keeps ownership of its goroutines, which (*Stack).Close stops.
func (s *Stack) DialOptions() ([]grpc.DialOption, error) {
	var creds credentials.TransportCredentials
	switch {
	case s.cfg.Protocol == ProtocolHTTP1:
		return nil, fmt.Errorf("ambassador: service %q: gRPC needs protocol h2c or h2, not http1", s.name)
	case s.tls != nil:
		creds = &reloadingCreds{src: s.tls}
	case s.cfg.usesTLS():
		// A WithBase stack has no TLS material of its own.
		return nil, fmt.Errorf("ambassador: service %q: gRPC over TLS needs the stack's own transport (no WithBase)", s.name)
	default:
		creds = insecure.NewCredentials()
	}
	unary := []grpc.UnaryClientInterceptor{s.unaryTimeout}
	var stream []grpc.StreamClientInterceptor
	if s.retry != nil {
		unary = append(unary, s.retry.UnaryClientInterceptor())
		stream = append(stream, s.retry.StreamClientInterceptor())
	}
	if s.limiter != nil {
		unary = append(unary, s.limiter.UnaryClientInterceptor())
		stream = append(stream, s.limiter.StreamClientInterceptor())
	}
	out := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithChainUnaryInterceptor(unary...),
		grpc.WithMaxHeaderListSize(MaxResponseHeaderBytes),
	}
	if len(stream) > 0 {
		out = append(out, grpc.WithChainStreamInterceptor(stream...))
	}
	if s.breaker == nil {
		return append(out, s.disc.DialOptions()...), nil
	}
	// The breaker is the discovery service's Health and, here, its
	// CallGate: each call is admitted and counted by the breaker of the
	// endpoint grpc's balancer picked, so one bad endpoint is ejected, not
	// the service (an interceptor would see only the target).
	return append(out, s.disc.GatedDialOptions(s.breaker)...), nil
}

// unaryTimeout bounds a unary call by the service timeout. Streams are
// bounded by the caller's context only: a stream may rightly live long.
func (s *Stack) unaryTimeout(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, cancel := classify.WithOwnTimeout(ctx, s.timeout) // a call it cuts is the endpoint's failure
	defer cancel()
	return invoker(ctx, method, req, reply, cc, opts...)
}

// reloadingCreds are grpc TLS credentials that take the current TLS
// material at every handshake, so rotated files apply to new connections.
// When the source no longer watches its files (DialOptions closes it), the
// handshake re-reads them.
type reloadingCreds struct {
	src        *tlsSource
	serverName string // set by OverrideServerName
}

func (c *reloadingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	// grpc's TLS credentials verify the authority they are given, so a
	// configured server name goes in as the authority.
	switch {
	case c.serverName != "":
		authority = c.serverName
	case c.src.cfg.ServerName != "":
		authority = c.src.cfg.ServerName
	}
	refreshTLS(c.src)
	host, _, err := net.SplitHostPort(authority)
	if err != nil {
		host = authority
	}
	return credentials.NewTLS(c.src.clientConfig(host, []string{"h2"})).ClientHandshake(ctx, authority, raw)
}

func (c *reloadingCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("ambassador: client-only TLS credentials")
}

func (c *reloadingCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (c *reloadingCreds) Clone() credentials.TransportCredentials {
	cp := *c
	return &cp
}

// OverrideServerName implements credentials.TransportCredentials.
func (c *reloadingCreds) OverrideServerName(name string) error {
	c.serverName = name
	return nil
}

// refreshTLS re-reads src's files when its watcher is stopped, keeping the
// previous material when they do not load.
func refreshTLS(src *tlsSource) {
	select {
	case <-src.stop:
	default:
		return // the watcher keeps the material current
	}
	m, err := src.load()
	if err != nil {
		src.logger.Error("ambassador: TLS files not reloaded; the previous certificates stay in use", "err", err)
		return
	}
	src.cur.Store(m)
}
