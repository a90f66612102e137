package proxy

import (
	"context"
	"errors"
	"io"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/mdcarrier"
)

// attemptTracer gives every attempt of a native gRPC call the client span
// the HTTP path's attempts get from otelhttp (ambassador.WithTracerProvider):
// a child of the server span carrying service, outbound.attempt,
// outbound.endpoint and http.request.resend_count, whose trace context goes
// to the upstream as traceparent. It sits below the retry layer, so it sees
// each attempt; it is in the chain only when tracing is on.
type attemptTracer struct {
	tracer  trace.Tracer
	service attribute.KeyValue
}

func (a *attemptTracer) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	rec, n := attempt.FromContext(ctx)
	if n < 1 {
		n = 1 // no retry layer: the only attempt
	}
	ctx, span := a.tracer.Start(ctx, "grpc "+method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(a.service,
			attribute.String("rpc.system", "grpc"),
			attribute.String("rpc.method", method),
			attribute.Int("outbound.attempt", n),
			attribute.Int("http.request.resend_count", n-1)))
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	otel.GetTextMapPropagator().Inject(ctx, mdcarrier.Carrier(md))
	ctx = metadata.NewOutgoingContext(ctx, md)
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if rec != nil && rec.LastEndpoint() != "" {
		span.SetAttributes(attribute.String("outbound.endpoint", rec.LastEndpoint()))
	}
	if err != nil {
		span.SetStatus(otelcodes.Error, err.Error())
		span.End()
		return nil, err
	}
	ts := &tracedStream{ClientStream: cs, span: span}
	context.AfterFunc(ctx, func() { ts.end(nil) }) // an attempt given up on
	return ts, nil
}

// tracedStream ends its attempt's span when the stream ends.
type tracedStream struct {
	grpc.ClientStream
	span trace.Span
	once sync.Once
}

func (s *tracedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.end(err)
	}
	return err
}

func (s *tracedStream) end(err error) {
	s.once.Do(func() {
		if err != nil && !errors.Is(err, io.EOF) {
			s.span.SetStatus(otelcodes.Error, err.Error())
		}
		s.span.End()
	})
}
