package retry

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/clock"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Clock is the time source of a Policy, the same shape in retry,
// ratelimit, breaker and discovery: Now reads the time (Retry-After dates,
// the budget window, deadlines), Sleep waits out a backoff or Retry-After
// delay and returns ctx.Err() (wrapped) if ctx ends first. Hedge delays and
// per-try timeouts always use real timers.
type Clock = clock.Clock

// Option configures what is not data: clock, providers, logger, service name.
type Option func(*options)

type options struct {
	clock   Clock
	meter   metric.MeterProvider
	tracer  trace.TracerProvider
	logger  *slog.Logger
	service string
}

// WithClock replaces the wall clock, so tests need not wait out backoff or
// Retry-After delays; nil keeps the wall clock.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithMeterProvider sets where outbound.retry.attempts is recorded (default:
// the global provider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meter = mp }
}

// WithTracerProvider makes every attempt a child span
// "outbound.retry.attempt" of the caller's span, created with this
// provider, instead of an event on the caller's span. The attempt's span is
// in the context the layers below see, so a propagating transport sends it
// upstream.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracer = tp }
}

// WithLogger sets the logger for debug lines about retries. Without it the
// Policy logs nothing (it never writes to slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithService adds the attribute service=name to the policy's metrics.
// It is an option, not a Config field: the name is the telemetry identity
// of the service the policy serves (in the process config, the key of
// services), not a setting of the policy.
func WithService(name string) Option { return func(o *options) { o.service = name } }

// Outcomes of an attempt, the values of the outcome attribute of
// outbound.retry.attempts.
const (
	OutcomeSuccess         = "success"
	OutcomeRetried         = "retried"
	OutcomeExhausted       = "exhausted"
	OutcomeBudgetExhausted = "budget_exhausted"
	OutcomeNotRetryable    = "not_retryable"
	OutcomeHedged          = "hedged"
)

type outcome uint8

const (
	oSuccess outcome = iota
	oRetried
	oExhausted
	oBudget
	oNotRetryable
	oHedged
	numOutcomes
)

var outcomeNames = [numOutcomes]string{OutcomeSuccess, OutcomeRetried, OutcomeExhausted, OutcomeBudgetExhausted, OutcomeNotRetryable, OutcomeHedged}

// Policy retries failed outbound calls. Build it with New; it is safe for
// concurrent use, and its RoundTripper and interceptors share one retry
// budget.
type Policy struct {
	c       compiled
	clock   Clock
	budget  *budget
	logger  *slog.Logger
	service string
	tracer  trace.Tracer // nil: attempts are events on the caller's span
	real    bool         // clock is the real clock: readings may be shared with the layers below

	attempts metric.Int64Counter
	addOpts  [numOutcomes][]metric.AddOption
}

// New validates c and returns a Policy.
func New(c Config, opts ...Option) (*Policy, error) {
	k, err := c.compile()
	if err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	o.clock = clock.OrReal(o.clock)
	if o.meter == nil {
		o.meter = otel.GetMeterProvider()
	}
	p := &Policy{c: k, clock: o.clock, logger: o.logger, service: o.service}
	p.real = clock.IsReal(o.clock)
	nanos := monoNanos
	if !p.real {
		clock := o.clock
		nanos = func() int64 { return clock.Now().UnixNano() }
	}
	p.budget = newBudget(k.budget, nanos)
	if o.tracer != nil {
		p.tracer = o.tracer.Tracer("github.com/outbound-go/outbound/retry")
	}
	meter := o.meter.Meter("github.com/outbound-go/outbound/retry")
	p.attempts, err = meter.Int64Counter("outbound.retry.attempts",
		metric.WithDescription("Attempts made by the retry policy, by outcome."),
		metric.WithUnit("{attempt}"))
	if err != nil {
		return nil, err
	}
	for i, name := range outcomeNames {
		kv := []attribute.KeyValue{attribute.String("outcome", name)}
		if o.service != "" {
			kv = append(kv, attribute.String("service", o.service))
		}
		p.addOpts[i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	return p, nil
}

// Close stops the goroutines the Policy started and waits for them; it is
// safe to call more than once and returns nil or the first error. A Policy
// starts none of its own (an attempt's goroutines end with the request), so
// Close returns nil, and the Policy stays usable: it exists so that every
// policy closes the same way.
func (p *Policy) Close() error { return nil }

func (p *Policy) count(ctx context.Context, o outcome) {
	p.attempts.Add(ctx, 1, p.addOpts[o]...)
}

// startSpan starts the attempt's child span ("outbound.retry.attempt")
// when WithTracerProvider was given; otherwise it returns ctx and nil, and
// the attempt becomes an event on the caller's span instead.
func (p *Policy) startSpan(ctx context.Context, n int) (context.Context, trace.Span) {
	if p.tracer == nil {
		return ctx, nil
	}
	attrs := []attribute.KeyValue{attribute.Int("outbound.attempt", n)}
	if n > 1 {
		attrs = append(attrs, attribute.Int("http.request.resend_count", n-1))
	}
	return p.tracer.Start(ctx, "outbound.retry.attempt",
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
}

// event records attempt n: it ends the attempt's span if there is one, else
// adds an event to the caller's span, if that is recording. The endpoint is
// the one discovery recorded for the request, else the request URL's host.
func (p *Policy) event(ctx context.Context, span trace.Span, n int, rec *attempt.Record, req *http.Request, err error) {
	if span == nil && !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	endpoint := rec.LastEndpoint()
	if endpoint == "" && req != nil && req.URL != nil {
		endpoint = req.URL.Host
	}
	p.eventEndpoint(ctx, span, n, endpoint, err)
}

func (p *Policy) eventEndpoint(ctx context.Context, span trace.Span, n int, endpoint string, err error) {
	if span != nil {
		span.SetAttributes(attribute.String("outbound.endpoint", endpoint))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		return
	}
	attrs := []attribute.KeyValue{
		attribute.Int("outbound.attempt", n),
		attribute.String("outbound.endpoint", endpoint),
	}
	if n > 1 {
		attrs = append(attrs, attribute.Int("http.request.resend_count", n-1))
	}
	trace.SpanFromContext(ctx).AddEvent("outbound.retry.attempt", trace.WithAttributes(attrs...))
}

func (p *Policy) debug(ctx context.Context, msg string, args ...any) {
	if p.logger != nil {
		p.logger.DebugContext(ctx, msg, args...)
	}
}
