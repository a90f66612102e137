package breaker

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/outbound-go/outbound/internal/classify"
	"github.com/outbound-go/outbound/internal/clock"
	"github.com/outbound-go/outbound/internal/inbound"
	"github.com/outbound-go/outbound/internal/refusal"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
)

// Outcome is how a classifier counts one finished request.
type Outcome int

// The outcomes a classifier may return.
const (
	// Success counts the request as a success.
	Success Outcome = iota
	// Failure counts the request as a failure of its key's upstream.
	Failure
	// Ignore counts the request as neither (the caller gave up, say).
	Ignore
)

// Option configures what is not data: clock, providers, logger, callbacks,
// key and classification functions.
type Option func(*options)

type options struct {
	meter      metric.MeterProvider
	service    string
	keyFunc    func(*http.Request) string
	classifier func(*http.Request, *http.Response, error) Outcome
	// customClassifier: WithClassifier replaced the rule, so a gRPC
	// trailers-only answer is the classifier's to judge too.
	customClassifier bool
	clock            Clock
	logger           *slog.Logger
	grpcMethodKey    bool
	onStateChange    func(key string, from, to State)
}

// WithMeterProvider sets the meter provider of the breaker's instruments;
// the global one by default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meter = mp }
}

// WithService adds the attribute service=name to the breaker's instruments.
// It is an option, not a Config field: the name is the telemetry identity
// of the service the policy serves (in the process config, the key of
// services), not a setting of the policy.
func WithService(name string) Option {
	return func(o *options) { o.service = name }
}

// WithKeyFunc chooses the breaker key of an HTTP request; the default is
// req.URL.Host (the concrete endpoint, host:port). The function runs on
// every request: it should not allocate.
func WithKeyFunc(f func(*http.Request) string) Option {
	return func(o *options) { o.keyFunc = f }
}

// WithClassifier replaces DefaultClassifier for HTTP requests. It is called
// once per request that was sent, when the response headers (or the
// transport error) arrive, except for a request that failed because
// reading its body failed: that is the caller's failure and never counts.
func WithClassifier(f func(req *http.Request, resp *http.Response, err error) Outcome) Option {
	return func(o *options) { o.classifier, o.customClassifier = f, f != nil }
}

// WithGRPCMethodKey makes the gRPC interceptors keep one breaker per target
// and method (key "TARGET/pkg.Service/Method") instead of one per target.
// It is an option, not a Config field, because it chooses the key
// function, the gRPC side of WithKeyFunc: which key a request has is the
// embedding code's choice, not a setting of the breaker's state machine.
func WithGRPCMethodKey() Option {
	return func(o *options) { o.grpcMethodKey = true }
}

// Clock is the time source of a Breaker, the same shape in retry,
// ratelimit, breaker and discovery.
type Clock = clock.Clock

// WithClock replaces the wall clock that ages idle keys out of the key
// table (see "Keys and memory"); nil keeps the wall clock. It does not move
// a breaker's own state machine: gobreaker v2 reads time.Now itself (its
// Settings take no clock), so OpenTimeout and Interval run on the wall
// clock whatever Clock is. Tests of those timeouts run in a
// testing/synctest bubble, whose fake time gobreaker follows.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets the logger for state changes (Debug level, with the key,
// from and to). Without it the Breaker logs nothing (it never writes to
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithOnStateChange registers f to be told of every state change of every
// key. f is never called under a lock: a change is recorded while
// gobreaker holds its mutex and handed to f afterwards, in order, on the
// goroutine of a call into the Breaker (a request, Ready, State, Snapshot).
// f may call into the Breaker.
func WithOnStateChange(f func(key string, from, to State)) Option {
	return func(o *options) { o.onStateChange = f }
}

// DefaultGRPCFailureCodes returns the gRPC codes that count as failures by
// default: UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS.
func DefaultGRPCFailureCodes() []codes.Code {
	return []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss}
}

func codeMask(cs []codes.Code) uint64 {
	var m uint64
	for _, c := range cs {
		if c < 64 {
			m |= 1 << c
		}
	}
	return m
}

// DefaultClassifier counts a transport error as a failure unless it is the
// caller's own cancellation (context.Canceled or DeadlineExceeded while the
// request's context is done), a failure to read the caller's request body,
// or a local refusal of a layer below (Ignore). A deadline that a layer of
// this module set before the caller's own (retry's per-try timeout, the
// ambassador Stack's service timeout) is not the caller's: a request it cut
// is a failure, so an endpoint that takes requests and never answers is
// ejected;
// a 5xx response other than 501 Not Implemented as a failure; and every other
// response, 4xx included, as a success.
func DefaultClassifier(req *http.Request, resp *http.Response, err error) Outcome {
	if err != nil {
		if (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && callerDone(req.Context()) {
			if classify.OwnDeadlinePassed(req.Context()) {
				return Failure // a timeout of this module's own, not the caller's: the endpoint missed it
			}
			return Ignore
		}
		if refusal.Is(err) || inbound.Is(err) {
			return Ignore
		}
		return Failure
	}
	if resp != nil && resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
		return Failure
	}
	return Success
}

// callerDone reports whether the caller's context is cancelled or its
// deadline has passed. The deadline is looked at too because a gRPC server
// enforces the propagated deadline itself and its DEADLINE_EXCEEDED can
// arrive just before the client's own timer fires.
func callerDone(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
