package discovery

import (
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
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
	for _, b := range []struct {
		name string
		kind balancerKind
	}{
		{GRPCBalancerRoundRobin, kindRoundRobin},
		{GRPCBalancerEWMA, kindEWMA},
		{GRPCBalancerLeastRequest, kindLeastRequest},
	} {
		balancer.Register(endpointsBuilder{base.NewBalancerBuilder(b.name, pickerBuilder{b.kind}, base.Config{})})
	}
}

// endpointsBuilder makes grpc's base balancer read resolver.State.Endpoints:
// base reads State.Addresses only, and a resolver that sends Endpoints alone
// (ours does, as grpc asks of new resolvers) would leave it with none.
type endpointsBuilder struct{ balancer.Builder }

func (b endpointsBuilder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	return endpointsBalancer{b.Builder.Build(cc, opts)}
}

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
