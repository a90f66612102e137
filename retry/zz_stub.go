// TEMPORARY STUB for parallel development; deleted at merge.
package retry

import (
	"log/slog"

	"context"
	"errors"
	"go.opentelemetry.io/otel/metric"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/outbound-go/outbound/internal/size"
)

type Size = size.Size
type Config struct {
	MaxAttempts          int           `yaml:"max_attempts"`
	PerTryTimeout        time.Duration `yaml:"per_try_timeout"`
	BaseDelay            time.Duration `yaml:"base_delay"`
	MaxDelay             time.Duration `yaml:"max_delay"`
	RetryOn              []string      `yaml:"retry_on"`
	RetriableStatusCodes []int         `yaml:"retriable_status_codes"`
	RetriableGRPCCodes   []string      `yaml:"retriable_grpc_codes"`
	RetryNonIdempotent   bool          `yaml:"retry_non_idempotent"`
	MaxRetryAfter        time.Duration `yaml:"max_retry_after"`
	MaxBodyBuffer        Size          `yaml:"max_body_buffer"`
	Budget               BudgetConfig  `yaml:"budget"`
	Hedge                HedgeConfig   `yaml:"hedge"`
}
type BudgetConfig struct {
	Ratio        float64       `yaml:"ratio"`
	MinPerSecond float64       `yaml:"min_per_second"`
	TTL          time.Duration `yaml:"ttl"`
	Disabled     bool          `yaml:"disabled"`
}
type HedgeConfig struct {
	Delay    time.Duration `yaml:"delay"`
	MaxExtra int           `yaml:"max_extra"`
}

var ErrBudgetExhausted = errors.New("retry: budget exhausted")

func (c Config) Validate() error {
	if c.MaxAttempts < 0 {
		return errors.New("max_attempts: must be ≥ 1")
	}
	return nil
}

type Option func(*int)
type Policy struct{ c Config }

func New(c Config, opts ...Option) (*Policy, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Policy{c}, nil
}
func (p *Policy) RoundTripper(next http.RoundTripper) http.RoundTripper { return next }
func (p *Policy) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
func (p *Policy) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(ctx, desc, cc, method, opts...)
	}
}

// Additive stub API used by package ambassador (real signatures per API.md).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(*int) {} }
func WithService(name string) Option                   { return func(*int) {} }
func WithLogger(l *slog.Logger) Option                 { return func(*int) {} }
