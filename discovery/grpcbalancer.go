package discovery

import (
	"sync"
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
	pb := pickerBuilder{kind: b.kind, conns: t}
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

// connTracker is the base balancer's ClientConn, keeping the balancer's
// connections that are being set up (idle or connecting, and not failed
// since: base keeps a failed connection in TRANSIENT_FAILURE while it
// retries, and so does the tracker; or ready, until base's picker with
// them is out). The picker asks it when every ready
// endpoint is ejected: a call then waits for a connection still being set
// up to an endpoint that may take it, rather than failing at once. Every
// change of a connection's state reaches grpc as a new balancer state
// (base sends one each time), so a waiting call is picked again then.
type connTracker struct {
	balancer.ClientConn

	mu      sync.Mutex
	pending map[*trackedConn]struct{}

	// published is the picker last handed to grpc (a publishedPicker). A
	// pick can still run on the one before: it loaded it just before
	// grpc swapped them, and the tracker already counts what the new one
	// holds; such a pick must let grpc pick again (see current).
	published atomic.Value
}

// publishedPicker holds a picker for atomic.Value, whose stored type must
// not change.
type publishedPicker struct{ p balancer.Picker }

// current reports whether p is the picker grpc has now; false also before
// any picker was handed over.
func (t *connTracker) current(p balancer.Picker) bool {
	v, _ := t.published.Load().(publishedPicker)
	return v.p == p
}

// trackedConn is one connection's state as the tracker follows it (state
// under the tracker's mu); its listener runs on grpc's serialiser, one
// state change at a time.
type trackedConn struct {
	ep    *endpoint // nil for an address from a foreign resolver
	state connectivity.State
}

// NewSubConn counts the new connection as being set up (base connects it
// at once) and follows its states ahead of base's own listener.
func (t *connTracker) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	c := &trackedConn{state: connectivity.Idle}
	if len(addrs) > 0 {
		c.ep, _ = addrs[0].Attributes.Value(epKey{}).(*endpoint)
	}
	next := opts.StateListener
	opts.StateListener = func(s balancer.SubConnState) {
		t.follow(c, s.ConnectivityState)
		if next != nil {
			next(s)
		}
	}
	t.setPending(c, true)
	// base creates its connections with this method (one address each), so
	// the tracker must be on it, deprecated or not.
	//lint:ignore SA1019 grpc's base balancer calls NewSubConn; the tracker wraps what it calls
	sc, err := t.ClientConn.NewSubConn(addrs, opts)
	if err != nil {
		t.setPending(c, false)
	}
	return sc, err
}

// follow moves c to state s, with base's rule that a failed connection
// stays failed until it is ready. A connection that has just become ready
// stays counted until base hands grpc the picker that holds it
// (UpdateState): a pick in between runs on the picker before, which has no
// place for it, and must wait for the next one rather than fail.
func (t *connTracker) follow(c *trackedConn, s connectivity.State) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.state == connectivity.TransientFailure && (s == connectivity.Connecting || s == connectivity.Idle) {
		return
	}
	c.state = s
	t.setPendingLocked(c, s == connectivity.Idle || s == connectivity.Connecting || s == connectivity.Ready)
}

// UpdateState passes base's new state to grpc; from then on its picker
// holds the connections that are ready, which are set up.
func (t *connTracker) UpdateState(s balancer.State) {
	t.published.Store(publishedPicker{s.Picker})
	t.ClientConn.UpdateState(s)
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.pending {
		if c.state == connectivity.Ready {
			delete(t.pending, c)
		}
	}
}

func (t *connTracker) setPending(c *trackedConn, on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setPendingLocked(c, on)
}

func (t *connTracker) setPendingLocked(c *trackedConn, on bool) {
	if on {
		if t.pending == nil {
			t.pending = make(map[*trackedConn]struct{})
		}
		t.pending[c] = struct{}{}
	} else {
		delete(t.pending, c)
	}
}

// waitable reports whether a connection being set up leads to an endpoint
// that may take a call (its health checks and Health allow it). It runs
// only when a pick found no ready endpoint; Health is asked outside the
// lock.
func (t *connTracker) waitable() bool {
	t.mu.Lock()
	eps := make([]*endpoint, 0, len(t.pending))
	for c := range t.pending {
		if c.ep == nil {
			t.mu.Unlock()
			return true
		}
		eps = append(eps, c.ep)
	}
	t.mu.Unlock()
	for _, ep := range eps {
		if ep.ready() {
			return true
		}
	}
	return false
}
