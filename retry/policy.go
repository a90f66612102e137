package retry

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/outbound-go/outbound/internal/attempt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Clock is the time source of a Policy: Now reads the time (Retry-After
// dates, the budget window, deadlines), Sleep waits out a backoff or
// Retry-After delay and returns ctx.Err() (wrapped) if ctx ends first.
// Hedge delays and per-try timeouts always use real timers.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Option configures what is not data: clock, providers, logger, service name.
type Option func(*options)

type options struct {
	clock   Clock
	meter   metric.MeterProvider
	logger  *slog.Logger
	service string
}

// WithClock replaces the wall clock, so tests need not wait out backoff or
// Retry-After delays.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithMeterProvider sets where outbound.retry.attempts is recorded (default:
// the global provider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meter = mp }
}

// WithLogger sets the logger for debug lines about retries (default: none).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithService adds the attribute service=name to the policy's metrics.
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
	real    bool // clock is the real clock: readings may be shared with the layers below

	attempts metric.Int64Counter
	addOpts  [numOutcomes][]metric.AddOption
}

// New validates c and returns a Policy.
func New(c Config, opts ...Option) (*Policy, error) {
	k, err := c.compile()
	if err != nil {
		return nil, err
	}
	o := options{clock: realClock{}}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.clock == nil {
		o.clock = realClock{}
	}
	if o.meter == nil {
		o.meter = otel.GetMeterProvider()
	}
	p := &Policy{c: k, clock: o.clock, logger: o.logger, service: o.service}
	_, p.real = o.clock.(realClock)
	nanos := monoNanos
	if !p.real {
		clock := o.clock
		nanos = func() int64 { return clock.Now().UnixNano() }
	}
	p.budget = newBudget(k.budget, nanos)
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

func (p *Policy) count(ctx context.Context, o outcome) {
	p.attempts.Add(ctx, 1, p.addOpts[o]...)
}

// event adds an attempt event to the caller's span, if it is recording.
// The endpoint is the one discovery recorded for the request, else the
// request URL's host.
func (p *Policy) event(ctx context.Context, n int, rec *attempt.Record, req *http.Request) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	endpoint := rec.LastEndpoint()
	if endpoint == "" && req != nil && req.URL != nil {
		endpoint = req.URL.Host
	}
	p.eventEndpoint(ctx, n, endpoint)
}

func (p *Policy) eventEndpoint(ctx context.Context, n int, endpoint string) {
	span := trace.SpanFromContext(ctx)
	attrs := []attribute.KeyValue{
		attribute.Int("outbound.attempt", n),
		attribute.String("outbound.endpoint", endpoint),
	}
	if n > 1 {
		attrs = append(attrs, attribute.Int("http.request.resend_count", n-1))
	}
	span.AddEvent("outbound.retry.attempt", trace.WithAttributes(attrs...))
}

func (p *Policy) debug(ctx context.Context, msg string, args ...any) {
	if p.logger != nil {
		p.logger.DebugContext(ctx, msg, args...)
	}
}
