package discovery

import (
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// init registers the outbound balancers with grpc. It is this package's one
// init function, and the one place it is justified: grpc finds a balancer
// named in a service config (loadBalancingConfig, which DialOptions sets
// with grpc.WithDefaultServiceConfig) only in its global registry, and
// balancer.Register is documented as init-time only and not safe to call
// concurrently with anything else in grpc, such as a grpc.NewClient on
// another goroutine. grpc v1.85 has no per-channel way to supply a balancer
// builder. Registering here, before any main or test runs, is therefore the
// safe option; the names are prefixed "outbound_" so they cannot replace a
// balancer of grpc's own.
func init() {
	for _, b := range []endpointsBuilder{
		{GRPCBalancerRoundRobin, kindRoundRobin},
		{GRPCBalancerEWMA, kindEWMA},
		{GRPCBalancerLeastRequest, kindLeastRequest},
	} {
		balancer.Register(b)
	}
}

// endpointsBuilder builds grpc's base balancer (one connection per
// address, a picker over the ready ones) with our picker, reading
// resolver.State.Endpoints and following its connections' set-up.
type endpointsBuilder struct {
	name string
	kind balancerKind
}

func (b endpointsBuilder) Name() string { return b.name }

// Build gives each balancer its own picker builder, which knows through a
// connTracker whether the balancer still has connections being set up.
func (b endpointsBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	t := &connTracker{ClientConn: cc}
	pb := pickerBuilder{kind: b.kind, pending: &t.pending}
	return endpointsBalancer{base.NewBalancerBuilder(b.name, pb, base.Config{}).Build(t, opts)}
}

// endpointsBalancer makes grpc's base balancer read resolver.State.Endpoints:
// base reads State.Addresses only, and a resolver that sends Endpoints alone
// (ours does, as grpc asks of new resolvers) would leave it with none.
type endpointsBalancer struct{ balancer.Balancer }

// UpdateClientConnState gives the base balancer the endpoints' addresses
// when the resolver sent Endpoints without Addresses.
func (b endpointsBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	if len(s.ResolverState.Addresses) == 0 && len(s.ResolverState.Endpoints) > 0 {
		s.ResolverState.Addresses = endpointAddresses(s.ResolverState.Endpoints)
	}
	return b.Balancer.UpdateClientConnState(s)
}

// endpointAddresses flattens endpoints into addresses, in order.
func endpointAddresses(eps []resolver.Endpoint) []resolver.Address {
	var out []resolver.Address
	for _, ep := range eps {
		out = append(out, ep.Addresses...)
	}
	return out
}

// connTracker is the base balancer's ClientConn, counting the balancer's
// connections that are being set up (idle or connecting, and not failed
// since: base keeps a failed connection in TRANSIENT_FAILURE while it
// retries, and so does the count). The picker reads the count: when every
// ready endpoint is ejected, a call waits for a connection still being set
// up rather than failing at once. Every change of a connection's state
// reaches grpc as a new balancer state (base sends one each time), so a
// waiting call is picked again when the count changes.
type connTracker struct {
	balancer.ClientConn
	pending atomic.Int32 // read by pickers; written by state listeners, which grpc serialises
}

// NewSubConn counts the new connection as being set up (base connects it
// at once) and follows its states ahead of base's own listener.
func (t *connTracker) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	cur := connectivity.Idle
	next := opts.StateListener
	opts.StateListener = func(s balancer.SubConnState) {
		t.follow(&cur, s.ConnectivityState)
		if next != nil {
			next(s)
		}
	}
	t.pending.Add(1)
	sc, err := t.ClientConn.NewSubConn(addrs, opts)
	if err != nil {
		t.pending.Add(-1)
	}
	return sc, err
}

// follow moves one connection from state *cur to s, keeping the count, with
// base's rule that a failed connection stays failed until it is ready.
func (t *connTracker) follow(cur *connectivity.State, s connectivity.State) {
	old := *cur
	if old == connectivity.TransientFailure && (s == connectivity.Connecting || s == connectivity.Idle) {
		return
	}
	*cur = s
	was, is := settingUp(old), settingUp(s)
	switch {
	case is && !was:
		t.pending.Add(1)
	case was && !is:
		t.pending.Add(-1)
	}
}

func settingUp(s connectivity.State) bool {
	return s == connectivity.Idle || s == connectivity.Connecting
}
