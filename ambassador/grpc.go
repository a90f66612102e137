package ambassador

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
)

// DialOptions gives a grpc client the same policies as NewTransport: the
// retry, ratelimit and breaker interceptors (in that order, retry
// outermost), the service timeout on unary calls, the discovery resolver
// (scheme "outbound") with the balancer chosen by service config, and
// transport credentials for the protocol (cleartext h2c for "" and h2c; TLS
// with the tls files, reloaded on change, for h2). Dial the target
// "outbound:///" + c.Name:
//
//	opts, err := ambassador.DialOptions(cfg)
//	conn, err := grpc.NewClient("outbound:///users", opts...)
//
// The policies' goroutines live as long as the ClientConns dialed with the
// options: they stop when the last of those closes (the options switch off
// grpc's idle mode, which would otherwise close the resolver). Options that
// were never dialed hold them until the process ends; to manage that
// lifetime yourself use NewStack, (*Stack).DialOptions and (*Stack).Close.
// Protocol http1 is refused: gRPC needs HTTP/2.
func DialOptions(c ServiceConfig, opts ...Option) ([]grpc.DialOption, error) {
	if c.Protocol == ProtocolHTTP1 {
		return nil, fmt.Errorf("ambassador: service %q: gRPC needs protocol h2c or h2, not http1", c.Name)
	}
	s, err := NewStack(c, opts...)
	if err != nil {
		return nil, err
	}
	dopts, err := s.DialOptions()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	rb := s.disc.ResolverBuilder()
	if rb == nil {
		return dopts, nil
	}
	owner := &stackOwner{Builder: rb, stack: s}
	// Our resolver comes first: grpc takes the first builder of a scheme.
	return append([]grpc.DialOption{grpc.WithResolvers(owner), grpc.WithIdleTimeout(0)}, dopts...), nil
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
	if s.breaker != nil {
		unary = append(unary, s.breaker.UnaryClientInterceptor())
		stream = append(stream, s.breaker.StreamClientInterceptor())
	}
	out := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithChainUnaryInterceptor(unary...),
	}
	if len(stream) > 0 {
		out = append(out, grpc.WithChainStreamInterceptor(stream...))
	}
	return append(out, s.disc.DialOptions()...), nil
}

// unaryTimeout bounds a unary call by the service timeout. Streams are
// bounded by the caller's context only: a stream may rightly live long.
func (s *Stack) unaryTimeout(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return invoker(ctx, method, req, reply, cc, opts...)
}

// stackOwner ties a stack's lifetime to the ClientConns using its resolver:
// the stack closes when the last resolver built from it closes.
type stackOwner struct {
	resolver.Builder
	stack *Stack

	mu     sync.Mutex
	live   int
	closed bool
}

var errStackReleased = errors.New("ambassador: these DialOptions were released when their last ClientConn closed; call DialOptions again")

func (o *stackOwner) Build(t resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil, errStackReleased
	}
	o.live++
	o.mu.Unlock()
	r, err := o.Builder.Build(t, cc, opts)
	if err != nil {
		o.release()
		return nil, err
	}
	return &ownedResolver{Resolver: r, owner: o}, nil
}

func (o *stackOwner) release() {
	o.mu.Lock()
	o.live--
	last := o.live == 0
	if last {
		o.closed = true
	}
	o.mu.Unlock()
	if last {
		_ = o.stack.Close()
	}
}

type ownedResolver struct {
	resolver.Resolver
	owner *stackOwner
	once  sync.Once
}

func (r *ownedResolver) Close() {
	r.Resolver.Close()
	r.once.Do(r.owner.release)
}

// reloadingCreds are grpc TLS credentials that take the current TLS
// material at every handshake, so rotated files apply to new connections.
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
