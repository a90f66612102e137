package ratelimit

import (
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/metric"

	"github.com/outbound-go/outbound/internal/clock"
)

// Option configures what is not data: providers, logger, clock, key choice.
type Option func(*options)

type options struct {
	meterProvider metric.MeterProvider
	logger        *slog.Logger
	service       string
	keyFunc       func(*http.Request) string
	grpcMethodKey bool
	clock         Clock
}

// WithMeterProvider sets where the instruments are created; the global
// provider (otel.GetMeterProvider) by default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meterProvider = mp }
}

// WithLogger sets the logger for upstream pauses (Debug level). Without it
// the Limiter logs nothing (it never writes to slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithService adds the attribute service=name to every instrument.
// It is an option, not a Config field: the name is the telemetry identity
// of the service the policy serves (in the process config, the key of
// services), not a setting of the policy.
func WithService(name string) Option {
	return func(o *options) { o.service = name }
}

// WithKeyFunc chooses the bucket of an HTTP request in the host scope; the
// default is req.URL.Host. It is ignored in the global scope.
func WithKeyFunc(f func(req *http.Request) string) Option {
	return func(o *options) { o.keyFunc = f }
}

// WithGRPCMethodKey keys gRPC calls by target and full method name
// ("127.0.0.1:50051/pkg.Svc/Method") instead of by target alone, so each
// method of a service has its own bucket. It is ignored in the global scope.
// It is an option, not a Config field, because it chooses the key
// function, the gRPC side of WithKeyFunc.
func WithGRPCMethodKey() Option {
	return func(o *options) { o.grpcMethodKey = true }
}

// Clock is the time source of a Limiter, the same shape in retry,
// ratelimit, breaker and discovery: Now reads the time (token refills,
// pauses, deadlines) and Sleep waits for a token, returning ctx.Err() if
// ctx ends first.
type Clock = clock.Clock

// WithClock replaces the wall clock, for tests; nil keeps the wall clock.
// Context deadlines are compared with c.Now's times.
func WithClock(c Clock) Option {
	return func(o *options) { o.clock = c }
}
