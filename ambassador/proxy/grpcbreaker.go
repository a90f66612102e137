package proxy

import (
	"google.golang.org/grpc"

	"github.com/outbound-go/outbound/ambassador"
)

// discoveryOptions are the resolver and balancer options of the native
// path's connection to stack's service. With a breaker, the breaker is the
// discovery service's CallGate (GatedDialOptions), as in the stack's own
// DialOptions: each attempt is admitted and counted at grpc's pick by the
// breaker of the endpoint picked, so one bad endpoint is ejected, not the
// service, exactly as each attempt of the HTTP path is. The breaker is also
// discovery's Health, so the balancer skips an endpoint whose breaker is
// open, and a service whose every endpoint is ejected is refused by
// discovery: no_endpoints, the HTTP path's answer (DESIGN.md). While an
// endpoint's breaker is closed the gate takes no goroutine and no
// allocation per call; it counts the call from the outcome grpc reports
// to the picker when the stream ends.
func discoveryOptions(stack *ambassador.Stack) []grpc.DialOption {
	if b := stack.Breaker(); b != nil {
		return stack.Discovery().GatedDialOptions(b)
	}
	return stack.Discovery().DialOptions()
}
