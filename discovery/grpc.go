package discovery

import (
	"fmt"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"
)

// Scheme is the gRPC resolver scheme of ResolverBuilder: targets look like
// "outbound:///users".
const Scheme = "outbound"

// Names of the gRPC balancers this package registers with grpc when it is
// initialised (see grpcbalancer.go). They run the same choice as the HTTP
// side (weights, readiness, avoiding tried endpoints) over grpc's ready
// connections.
const (
	GRPCBalancerRoundRobin   = "outbound_round_robin"
	GRPCBalancerEWMA         = "outbound_ewma"
	GRPCBalancerLeastRequest = "outbound_least_request"
)

// Target returns the gRPC target of the service, "outbound:///" + name.
func (s *Service) Target() string { return Scheme + ":///" + s.name }

// ResolverBuilder returns a gRPC resolver.Builder (scheme "outbound") that
// feeds the service's endpoint set to grpc and pushes every change, as
// resolver.State.Endpoints (one address each, carrying the endpoint's
// weight for the outbound balancers). It is not registered globally; pass
// it with grpc.WithResolvers (DialOptions does). It resolves only the target
// s.Target(). A resolver it builds holds the Service's goroutines from
// Build to Close when the Service was made WithStartOnUse.
func (s *Service) ResolverBuilder() resolver.Builder { return resolverBuilder{s: s} }

// DialOptions returns the options that connect a grpc.ClientConn to this
// service: the resolver and a default service config selecting the balancer
// of the Config (round_robin, least_request, ewma → outbound_round_robin,
// outbound_least_request, outbound_ewma: the same choice as the HTTP side,
// registered with grpc when the package is initialised), and a stream
// interceptor that makes the balancer count a client-streaming call by the
// end its caller sees (grpc can report one the endpoint refused as a
// success); put them after your own interceptor options, so that it is the
// innermost. Use them with s.Target():
//
//	conn, err := grpc.NewClient(s.Target(), append(s.DialOptions(), creds)...)
func (s *Service) DialOptions() []grpc.DialOption { return s.dialOptions(resolverBuilder{s: s}) }

func (s *Service) dialOptions(rb resolverBuilder) []grpc.DialOption {
	name := GRPCBalancerRoundRobin
	switch s.kind {
	case kindEWMA:
		name = GRPCBalancerEWMA
	case kindLeastRequest:
		name = GRPCBalancerLeastRequest
	}
	return []grpc.DialOption{
		grpc.WithResolvers(rb),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, name)),
		grpc.WithChainStreamInterceptor(streamEnds),
	}
}

type resolverBuilder struct {
	s    *Service
	gate CallGate // nil: none (see GatedDialOptions)
}

func (b resolverBuilder) Scheme() string { return Scheme }

func (b resolverBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	if got := target.Endpoint(); got != b.s.name {
		return nil, fmt.Errorf("discovery: resolver of service %q cannot resolve %q", b.s.name, got)
	}
	r := &grpcResolver{s: b.s, cc: cc, gate: b.gate}
	b.s.lmu.Lock()
	b.s.listeners[r] = struct{}{}
	b.s.lmu.Unlock()
	b.s.acquire()
	r.push()
	return r, nil
}

type grpcResolver struct {
	s      *Service
	cc     resolver.ClientConn
	gate   CallGate
	mu     sync.Mutex // serialises push: every push sends the newest snapshot
	closed atomic.Bool
}

type epKey struct{}
type weightKey struct{}

// push sends the current snapshot to grpc.
func (r *grpcResolver) push() {
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := r.s.snap.Load()
	if snap == nil || r.closed.Load() {
		return
	}
	if snap.err != nil {
		r.cc.ReportError(fmt.Errorf("discovery: service %q has no endpoints yet: %w", r.s.name, snap.err))
		return
	}
	eps := make([]resolver.Endpoint, len(snap.members))
	for i, m := range snap.members {
		a := attributes.New(epKey{}, m.ep).WithValue(weightKey{}, m.weight)
		if r.gate != nil {
			a = a.WithValue(gateKey{}, r.gate)
		}
		eps[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: m.ep.addr, Attributes: a}}}
	}
	_ = r.cc.UpdateState(resolver.State{Endpoints: eps})
}

func (r *grpcResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close unsubscribes and drops the resolver's hold on the Service's
// goroutines; it never waits for a push in progress (grpc may call it while
// holding locks a push needs).
func (r *grpcResolver) Close() {
	if r.closed.Swap(true) {
		return
	}
	r.s.lmu.Lock()
	delete(r.s.listeners, r)
	r.s.lmu.Unlock()
	r.s.release()
}

func (s *Service) notifyResolvers() {
	s.lmu.Lock()
	rs := make([]*grpcResolver, 0, len(s.listeners))
	for r := range s.listeners {
		rs = append(rs, r)
	}
	s.lmu.Unlock()
	for _, r := range rs {
		r.push()
	}
}
