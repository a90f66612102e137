package ratelimit

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Option configures what is not data: providers, logger, clock, key choice.
type Option func(*options)

type options struct {
	meterProvider metric.MeterProvider
	logger        *slog.Logger
	service       string
	keyFunc       func(*http.Request) string
	grpcMethodKey bool
	now           func() time.Time
	sleep         func(ctx context.Context, d time.Duration) error
	maxPause      time.Duration
}

// WithMeterProvider sets where the instruments are created; the global
// provider (otel.GetMeterProvider) by default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meterProvider = mp }
}

// WithLogger sets the logger for upstream pauses (Debug level); nothing is
// logged by default.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithService adds the attribute service=name to every instrument.
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
func WithGRPCMethodKey() Option {
	return func(o *options) { o.grpcMethodKey = true }
}

// WithClock replaces the time source, for tests. now returns the current
// time (time.Now by default); sleep blocks for d or until ctx is done and
// then returns ctx.Err() (a timer by default). Either may be nil to keep the
// default. Context deadlines are compared with now's times.
func WithClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
		if sleep != nil {
			o.sleep = sleep
		}
	}
}

// WithMaxPause caps how long one upstream Retry-After or gRPC pushback may
// pause a key (DefaultMaxPause, 5 minutes, by default), so a bogus header
// cannot silence a host for a day. d ≤ 0 keeps the default.
func WithMaxPause(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.maxPause = d
		}
	}
}

func sleepTimer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
