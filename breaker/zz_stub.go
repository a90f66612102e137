// TEMPORARY STUB for parallel development; deleted at merge.
package breaker

import (
	"context"
	"go.opentelemetry.io/otel/metric"
	"net/http"
	"time"

	"google.golang.org/grpc"

	"github.com/outbound-go/outbound/internal/refusal"
)

type Config struct {
	ConsecutiveFailures int           `yaml:"consecutive_failures"`
	FailureRatio        float64       `yaml:"failure_ratio"`
	MinRequests         int           `yaml:"min_requests"`
	Interval            time.Duration `yaml:"interval"`
	OpenTimeout         time.Duration `yaml:"open_timeout"`
	HalfOpenRequests    int           `yaml:"half_open_requests"`
	MaxKeys             int           `yaml:"max_keys"`
}

var ErrOpen = refusal.New("breaker: circuit open")

type State int

const (
	StateClosed State = iota
	StateHalfOpen
	StateOpen
)

func (s State) String() string { return [...]string{"closed", "half_open", "open"}[s] }

type KeyState struct {
	Key   string
	State State
}
type Option func(*int)
type Breaker struct{}

func (c Config) Validate() error                                         { return nil }
func New(c Config, opts ...Option) (*Breaker, error)                     { return &Breaker{}, nil }
func (b *Breaker) RoundTripper(next http.RoundTripper) http.RoundTripper { return next }
func (b *Breaker) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
func (b *Breaker) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(ctx, desc, cc, method, opts...)
	}
}
func (b *Breaker) Ready(endpoint string) bool { return true }
func (b *Breaker) State(key string) State     { return StateClosed }
func (b *Breaker) Snapshot() []KeyState       { return nil }
func (b *Breaker) Close() error               { return nil }

// Additive stub API used by package ambassador (real signatures per API.md).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(*int) {} }
func WithService(name string) Option                   { return func(*int) {} }
