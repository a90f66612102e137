package ambassador

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/outbound-go/outbound/internal/attempt"
)

// clientSpanKind is the start option of every attempt span.
var clientSpanKind = trace.WithSpanKind(trace.SpanKindClient)

// startSpan starts the client span of one attempt, a child of the span in
// req's context, named "HTTP <method>" as otelhttp named it, and returns a
// copy of req under the span's context whose header (a copy: the caller's
// is never written) carries the trace context for the upstream. A
// recording span gets otelhttp's request attributes (http.request.method,
// url.full without user info, server.address, server.port unless the
// scheme's default, network.protocol.version) and the stack's: service,
// outbound.attempt (from 1), outbound.endpoint (the host:port discovery
// picked) and http.request.resend_count (outbound.attempt-1).
func (t *clientTelemetry) startSpan(req *http.Request) (*http.Request, trace.Span) {
	ctx, span := t.tracer.Start(req.Context(), spanName(req.Method), clientSpanKind)
	if span.IsRecording() {
		span.SetAttributes(t.requestAttrs(ctx, req)...)
	}
	out := req.WithContext(ctx)
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = http.Header{}
	}
	t.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
	return out, span
}

// spanName is "HTTP " + method, without building the string for the
// methods every service sees.
func spanName(method string) string {
	switch method {
	case http.MethodGet, "":
		return "HTTP GET"
	case http.MethodPost:
		return "HTTP POST"
	case http.MethodPut:
		return "HTTP PUT"
	case http.MethodDelete:
		return "HTTP DELETE"
	case http.MethodHead:
		return "HTTP HEAD"
	case http.MethodPatch:
		return "HTTP PATCH"
	}
	return "HTTP " + method
}

// requestAttrs are the attributes of a recording attempt span known before
// the attempt is sent.
func (t *clientTelemetry) requestAttrs(ctx context.Context, req *http.Request) []attribute.KeyValue {
	_, n := attempt.FromContext(ctx)
	if n < 1 {
		n = 1 // no retry layer: the only attempt
	}
	u := req.URL
	if u.User != nil {
		c := *u
		c.User = nil
		u = &c
	}
	host, port := splitHostPort(req.URL.Host)
	method := knownMethod(req.Method)
	kvs := make([]attribute.KeyValue, 0, 11)
	kvs = append(kvs,
		attribute.String("http.request.method", method),
		attribute.String("url.full", u.String()),
		attribute.String("server.address", host),
		t.service,
		attribute.Int("outbound.attempt", n),
		attribute.String("outbound.endpoint", req.URL.Host),
		attribute.Int("http.request.resend_count", n-1))
	if method != req.Method && req.Method != "" {
		kvs = append(kvs, attribute.String("http.request.method.original", req.Method))
	}
	https := u.Scheme == "https"
	if port > 0 && !(https && port == 443) && !(!https && port == 80) {
		kvs = append(kvs, attribute.Int("server.port", port))
	}
	if _, version := netProtocol(req.Proto); version != "" {
		kvs = append(kvs, attribute.String("network.protocol.version", version))
	}
	return kvs
}

// endSpan records the outcome of the attempt on span. A failed attempt's
// span ends at once, with error.type and an error status; a response's
// span ends when its body is read to the end or closed (the body is
// wrapped for that, keeping io.Writer for a switched protocol), with
// http.response.status_code and, for a status of 400 or more, error.type
// and an error status.
func endSpan(ctx context.Context, span trace.Span, resp *http.Response, err error) *http.Response {
	if err != nil {
		if span.IsRecording() {
			span.SetAttributes(attribute.String("error.type", errorType(ctx, err)))
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		return resp
	}
	if resp == nil || !span.IsRecording() || resp.Body == nil {
		span.End()
		return resp
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 || resp.StatusCode < 100 {
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	if name, version := netProtocol(resp.Proto); version != "" {
		span.SetAttributes(attribute.String("network.protocol.version", version))
		if name != "http" && name != "" {
			span.SetAttributes(attribute.String("network.protocol.name", name))
		}
	}
	b := &spanBody{rc: resp.Body, span: span}
	if _, ok := resp.Body.(io.Writer); ok {
		resp.Body = &spanRWBody{b}
	} else {
		resp.Body = b
	}
	return resp
}

// spanBody ends the attempt's span when the response body is read to its
// end or closed, whichever comes first.
type spanBody struct {
	rc    io.ReadCloser
	span  trace.Span
	ended atomic.Bool
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.end()
	} else if err != nil && !b.ended.Load() {
		b.span.SetStatus(codes.Error, err.Error())
	}
	return n, err
}

func (b *spanBody) Close() error {
	b.end()
	return b.rc.Close()
}

func (b *spanBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.span.End()
	}
}

// spanRWBody is a spanBody over a writable body (101 Switching Protocols:
// net/http's body is then the connection).
type spanRWBody struct{ *spanBody }

func (b *spanRWBody) Write(p []byte) (int, error) { return b.rc.(io.Writer).Write(p) }
