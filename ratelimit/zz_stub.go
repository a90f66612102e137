// TEMPORARY STUB for parallel development; deleted at merge.
package ratelimit

import (
	"log/slog"

	"context"
	"errors"
	"go.opentelemetry.io/otel/metric"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/outbound-go/outbound/internal/refusal"
)

type Config struct {
	RPS              float64       `yaml:"rps"`
	Burst            int           `yaml:"burst"`
	MaxWait          time.Duration `yaml:"max_wait"`
	Scope            string        `yaml:"scope"`
	IgnoreRetryAfter bool          `yaml:"ignore_retry_after"`
	MaxKeys          int           `yaml:"max_keys"`
}

var ErrLimited = refusal.New("ratelimit: rate limited")

type LimitedError struct {
	Key        string
	RetryAfter time.Duration
}

func (e *LimitedError) Error() string { return "ratelimit: " + e.Key + " limited" }
func (e *LimitedError) Unwrap() error { return ErrLimited }

func (c Config) Validate() error {
	if c.RPS <= 0 {
		return errors.New("rps: required, must be > 0")
	}
	return nil
}

type Option func(*int)
type Limiter struct{}
type BucketState struct {
	Key         string
	Tokens      float64
	PausedUntil time.Time
}

func New(c Config, opts ...Option) (*Limiter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{}, nil
}
func (l *Limiter) RoundTripper(next http.RoundTripper) http.RoundTripper { return next }
func (l *Limiter) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
func (l *Limiter) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(ctx, desc, cc, method, opts...)
	}
}
func (l *Limiter) Snapshot() []BucketState { return nil }
func (l *Limiter) Close() error            { return nil }

// Additive stub API used by package ambassador (real signatures per API.md).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(*int) {} }
func WithService(name string) Option                   { return func(*int) {} }
func WithLogger(l *slog.Logger) Option                 { return func(*int) {} }
