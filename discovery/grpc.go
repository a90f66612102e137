package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/internal/attempt"
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
func (s *Service) ResolverBuilder() resolver.Builder { return resolverBuilder{s} }

// DialOptions returns the options that connect a grpc.ClientConn to this
// service: the resolver and a default service config selecting the balancer
// of the Config (round_robin, least_request, ewma → outbound_round_robin,
// outbound_least_request, outbound_ewma: the same choice as the HTTP side,
// registered with grpc when the package is initialised). Use them with
// s.Target():
//
//	conn, err := grpc.NewClient(s.Target(), append(s.DialOptions(), creds)...)
func (s *Service) DialOptions() []grpc.DialOption {
	name := GRPCBalancerRoundRobin
	switch s.kind {
	case kindEWMA:
		name = GRPCBalancerEWMA
	case kindLeastRequest:
		name = GRPCBalancerLeastRequest
	}
	return []grpc.DialOption{
		grpc.WithResolvers(s.ResolverBuilder()),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, name)),
	}
}

type resolverBuilder struct{ s *Service }

func (b resolverBuilder) Scheme() string { return Scheme }

func (b resolverBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	if got := target.Endpoint(); got != b.s.name {
		return nil, fmt.Errorf("discovery: resolver of service %q cannot resolve %q", b.s.name, got)
	}
	r := &grpcResolver{s: b.s, cc: cc}
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
	eps := make([]resolver.Endpoint, len(snap.members))
	for i, m := range snap.members {
		eps[i] = resolver.Endpoint{Addresses: []resolver.Address{{
			Addr:       m.ep.addr,
			Attributes: attributes.New(epKey{}, m.ep).WithValue(weightKey{}, m.weight),
		}}}
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

type pickerBuilder struct{ kind balancerKind }

// Build makes a picker over the ready connections. Endpoints that came from
// our resolver carry their shared state (load, latency, readiness), so HTTP
// and gRPC traffic of one Service score the same endpoints; addresses from
// another resolver get fresh state, reset whenever grpc rebuilds the picker.
func (b pickerBuilder) Build(info base.PickerBuildInfo) balancer.Picker {
	if len(info.ReadySCs) == 0 {
		return base.NewErrPicker(balancer.ErrNoSubConnAvailable)
	}
	p := &grpcPicker{kind: b.kind}
	var svc *Service
	for sc, sci := range info.ReadySCs {
		ep, _ := sci.Address.Attributes.Value(epKey{}).(*endpoint)
		if ep == nil {
			ep = newEndpoint(sci.Address.Addr, nil)
		} else if ep.svc != nil {
			svc = ep.svc
		}
		w, _ := sci.Address.Attributes.Value(weightKey{}).(int)
		p.snap.members = append(p.snap.members, newMember(ep, w, nil))
		p.scs = append(p.scs, sc)
	}
	if b.kind == kindRoundRobin {
		// A stable order, so the smooth schedule does not depend on map order.
		idx := make([]int, len(p.scs))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(i, j int) bool { return p.snap.members[idx[i]].ep.addr < p.snap.members[idx[j]].ep.addr })
		ms := make([]member, len(idx))
		scs := make([]balancer.SubConn, len(idx))
		for i, k := range idx {
			ms[i], scs[i] = p.snap.members[k], p.scs[k]
		}
		p.snap.members, p.scs = ms, scs
		p.snap.schedule = buildSchedule(ms)
		p.ctr.Store(rand.Uint64())
	} else {
		p.snap.schedule = buildSchedule(p.snap.members)
	}
	if svc != nil {
		p.errNone = svc.errNone
	} else {
		p.errNone = newNoEndpointsError("")
	}
	return p
}

type grpcPicker struct {
	kind    balancerKind
	ctr     atomic.Uint64 // round robin position
	snap    snapshot
	scs     []balancer.SubConn
	errNone error
}

// Pick uses the same choice as the HTTP RoundTripper over the ready
// connections, skipping endpoints the service's Health or health checks
// reject and avoiding endpoints the attempt record says were tried. With
// none ready it fails the RPC with codes.Unavailable (errors.Is(err,
// ErrNoEndpoints) holds for the caller).
func (p *grpcPicker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	var rec *attempt.Record
	if info.Ctx != nil {
		rec, _ = attempt.FromContext(info.Ctx)
	}
	i := choose(p.kind, &p.snap, &p.ctr, rec)
	if i < 0 {
		return balancer.PickResult{}, p.errNone
	}
	ep := p.snap.members[i].ep
	if rec != nil {
		rec.AddTried(ep.addr)
	}
	ep.inflight.Add(1)
	var start int64
	if info.Ctx != nil {
		start = sentAt(info.Ctx)
	} else {
		start = monoNow()
	}
	return balancer.PickResult{SubConn: p.scs[i], Done: func(di balancer.DoneInfo) {
		end := monoNow()
		rtt := time.Duration(end - start)
		ep.inflight.Add(-1)
		if di.Err == nil {
			ep.observeAt(end, rtt, false)
			return
		}
		if errors.Is(di.Err, context.Canceled) {
			return
		}
		switch status.Code(di.Err) {
		case codes.Canceled:
		case codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.Unknown,
			codes.DataLoss, codes.DeadlineExceeded:
			ep.observeAt(end, rtt, true)
			ep.failedWith(di.Err.Error())
		default: // an application answer: the endpoint worked
			ep.observeAt(end, rtt, false)
		}
	}}, nil
}
