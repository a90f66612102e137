package discovery

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"

	"github.com/outbound-go/outbound/internal/refusal"
)

// CallGate admits and counts gRPC calls per endpoint at the balancer's
// pick, below grpc's choice of a connection: the one place where a gRPC
// call's endpoint is known (an interceptor sees only the target, the whole
// service). A breaker.Breaker implements it, so a service's breaker can eject
// one endpoint of a gRPC service as it does on the HTTP side. Give it with
// GatedDialOptions; it is consulted only by connections dialed with those.
//
// StartCall is called once an endpoint is chosen for a call (ctx is the
// call's context; endpoint is host:port). An error refuses the endpoint:
// the call is not sent there, and when no other ready endpoint takes it
// the call fails with that error. Otherwise EndCall is called exactly once
// with StartCall's call value when the call (or stream) ends, err being
// its final error, nil on success. A pick grpc did not use (the connection
// went away between the pick and the send) ends with a local refusal
// (internal/refusal), which a gate should count as nothing. Both must be
// safe for concurrent use and cheap: they run on every call.
type CallGate interface {
	StartCall(ctx context.Context, endpoint string) (call any, err error)
	EndCall(call any, ctx context.Context, err error)
}

// gateKey is the resolver address attribute carrying a connection's
// CallGate to the picker (the picker builder is shared by every
// connection using one balancer name).
type gateKey struct{}

// errNotUsed is what a CallGate's EndCall gets for a pick grpc did not use.
var errNotUsed = refusal.New("discovery: picked connection not used")

// GatedDialOptions is DialOptions with g put on every call the balancer
// picks an endpoint for (see CallGate): g admits the call to the chosen
// endpoint and counts its outcome. Give the same value to WithHealth when
// it is also a Health (a breaker is), so that the balancer skips the
// endpoints g would refuse instead of picking and losing them; with
// ambassador.DialOptions and a breaker section both are done. A nil g
// gives DialOptions.
func (s *Service) GatedDialOptions(g CallGate) []grpc.DialOption {
	return s.dialOptions(resolverBuilder{s: s, gate: g})
}

// doneErr is the error a CallGate's EndCall gets for di.
func doneErr(di balancer.DoneInfo) error {
	if di.Err == nil && !di.BytesSent && !di.BytesReceived {
		return errNotUsed
	}
	return di.Err
}
