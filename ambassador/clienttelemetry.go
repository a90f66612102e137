package ambassador

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/outbound-go/outbound/internal/attempt"
)

// clientTelemetry sits just above the base transport (under the breaker)
// and records each attempt through the OpenTelemetry API directly, in the
// shape otelhttp's transport gave it: http.client.request.duration and
// http.client.request.body.size (see clientMetrics) when a meter provider
// was given, and when a tracer provider was given a client span per
// attempt (see attemptSpan) whose context goes to the upstream with the
// global propagator. Attribute sets of the metrics are built once per
// combination; an attempt with metrics only allocates nothing (a request
// body of unknown length: one counting wrapper).
type clientTelemetry struct {
	next    http.RoundTripper
	metrics *clientMetrics // nil: no metrics
	tracer  trace.Tracer   // nil: no spans
	prop    propagation.TextMapPropagator
	service attribute.KeyValue
}

// newClientTelemetry wraps next; mp and tp may each be nil (not both).
func newClientTelemetry(next http.RoundTripper, service string, mp metric.MeterProvider, tp trace.TracerProvider) (*clientTelemetry, error) {
	t := &clientTelemetry{next: next, service: attribute.String("service", service), prop: otel.GetTextMapPropagator()}
	if mp != nil {
		m, err := newClientMetrics(mp, service)
		if err != nil {
			return nil, err
		}
		t.metrics = m
	}
	if tp != nil {
		t.tracer = tp.Tracer(scopeName)
	}
	return t, nil
}

func (t *clientTelemetry) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	measure := t.metrics != nil && t.metrics.enabled(ctx)
	if !measure && t.tracer == nil {
		return t.next.RoundTrip(req)
	}
	var start time.Time
	if measure {
		var ok bool
		if start, ok = attempt.Now(ctx); !ok {
			start = time.Now()
		}
	}
	out := req
	var span trace.Span
	if t.tracer != nil {
		out, span = t.startSpan(req)
	}
	var counted *countingBody
	if measure && bodyLenUnknown(out) {
		if out == req {
			out = shallowCopy(req)
		}
		counted = &countingBody{rc: out.Body}
		out.Body = counted
	}
	resp, err := t.next.RoundTrip(out)
	if measure {
		k := t.metrics.key(ctx, out, resp, err)
		secs := time.Since(start).Seconds()
		if counted == nil {
			t.metrics.record(ctx, k, secs, max(out.ContentLength, 0))
		} else {
			counted.publish(t.metrics, ctx, k, secs)
		}
	}
	if span != nil {
		resp = endSpan(out.Context(), span, resp, err)
	}
	return resp, err
}

// bodyLenUnknown reports whether req has a body whose length is not in
// ContentLength.
func bodyLenUnknown(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody && req.ContentLength <= 0
}

// shallowCopy returns a copy of req with the same context, for a change of
// its Body that the caller must not see.
func shallowCopy(req *http.Request) *http.Request {
	r := new(http.Request)
	*r = *req
	return r
}

// countingBody counts the bytes the transport reads from a request body of
// unknown length; the attempt's body size is recorded once both the
// transport returned (publish) and the body is closed (net/http closes it,
// possibly later and on another goroutine), whichever comes last.
type countingBody struct {
	rc io.ReadCloser

	mu        sync.Mutex
	n         int64
	closed    bool
	published bool
	recorded  bool
	m         *clientMetrics
	ctx       context.Context
	k         clientKey
	secs      float64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	b.n += int64(n)
	b.mu.Unlock()
	return n, err
}

func (b *countingBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.maybeRecord()
	return b.rc.Close()
}

func (b *countingBody) publish(m *clientMetrics, ctx context.Context, k clientKey, secs float64) {
	b.mu.Lock()
	b.m, b.ctx, b.k, b.secs, b.published = m, ctx, k, secs, true
	b.mu.Unlock()
	b.maybeRecord()
}

func (b *countingBody) maybeRecord() {
	b.mu.Lock()
	ready := b.closed && b.published && !b.recorded
	if ready {
		b.recorded = true
	}
	n := b.n
	b.mu.Unlock()
	if ready {
		b.m.record(b.ctx, b.k, b.secs, n)
	}
}
