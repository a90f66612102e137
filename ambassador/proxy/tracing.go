package proxy

import (
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the server spans.
const tracerName = "github.com/outbound-go/outbound/ambassador/proxy"

// startServerSpan starts the server span of inbound request r, a child of
// the trace context the caller sent (extracted with the global
// propagator), and returns r with the span in its context.
func (s *Server) startServerSpan(r *http.Request) (*http.Request, trace.Span) {
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := s.opts.tracer.Start(ctx, "ambassador "+r.Method,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("server.address", r.Host),
			attribute.String("network.protocol.version", protoVersion(r)),
		))
	return r.WithContext(ctx), span
}

// endServerSpan records the answer on span and ends it: the status code,
// the route and service when the request was routed, and an error status
// for a 5xx answer.
func endServerSpan(span trace.Span, status int, rt *route, entry *serviceEntry) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
	}
	if rt != nil {
		span.SetAttributes(attribute.String("outbound.route", rt.name))
	}
	if entry != nil {
		span.SetAttributes(attribute.String("service", entry.name))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

func protoVersion(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return "2"
	}
	return "1.1"
}
