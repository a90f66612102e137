package proxy

import (
	"context"

	"google.golang.org/grpc"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/internal/attempt"
)

// endpointBreaker is the native path's breaker: the innermost stream
// interceptor, below grpc's balancer pick, so each attempt's stream goes
// through the breaker of the endpoint it was opened to (the attempt
// record's last endpoint), as each attempt of the HTTP path does. The
// breaker is also discovery's Health, so the outbound balancers skip an
// endpoint whose breaker is open, and a service whose every endpoint is
// ejected is refused by discovery: no_endpoints, the same answer as the
// HTTP path's (DESIGN.md). circuit_open remains for the race in which an
// endpoint's half-open probe slots are taken between the pick and here;
// the stream opened is then abandoned before anything is sent on it (the
// send log's sender starts only for a stream returned), and ends when the
// call's context does.
//
// A NewStream that fails is not counted: a failed pick is discovery's
// refusal, which breakers never count, and grpc-go retries a stream whose
// transport failed before it was sent. While the endpoint's breaker is
// closed, the stream is counted when it ends without a goroutine of its
// own (breaker.TrackStreamAtEnd): one goroutine and its three channel
// hand-offs fewer per call.
func endpointBreaker(b *breaker.Breaker) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		rec, _ := attempt.FromContext(ctx)
		if rec == nil || rec.LastEndpoint() == "" {
			return cs, nil
		}
		return b.TrackStreamAtEnd(ctx, rec.LastEndpoint(), cs, desc.ServerStreams)
	}
}
