package retry

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/outbound-go/outbound/internal/fielderr"
	"github.com/outbound-go/outbound/internal/size"
)

// Size is a number of bytes; in YAML an integer or a string such as "1MiB".
type Size = size.Size

// Defaults applied to zero fields of Config.
const (
	DefaultMaxAttempts   = 3
	DefaultBaseDelay     = 25 * time.Millisecond
	DefaultMaxDelay      = 250 * time.Millisecond
	DefaultMaxRetryAfter = 30 * time.Second
	DefaultMaxBodyBuffer = Size(1 << 20)
	DefaultBudgetRatio   = 0.2
	DefaultBudgetMin     = 10.0
	DefaultBudgetTTL     = 10 * time.Second
	DefaultHedgeMaxExtra = 1
)

// Bounds Validate enforces, so that no value makes a later computation
// overflow or turn one request into thousands of attempts.
const (
	// MaxMaxAttempts is the largest MaxAttempts.
	MaxMaxAttempts = 10
	// MaxHedgeExtra is the largest HedgeConfig.MaxExtra.
	MaxHedgeExtra = 10
	// MaxDuration bounds PerTryTimeout, BaseDelay, MaxDelay,
	// MaxRetryAfter, Budget.TTL and Hedge.Delay.
	MaxDuration = time.Hour
	// MinBudgetTTL is the shortest non-zero Budget.TTL.
	MinBudgetTTL = 10 * time.Millisecond
	// MaxBodyBufferLimit is the largest MaxBodyBuffer.
	MaxBodyBufferLimit = Size(256 << 20)
	// MaxBudgetMinPerSecond is the largest Budget.MinPerSecond.
	MaxBudgetMinPerSecond = 1e6
)

// The words retry_on accepts.
const (
	OnConnectFailure       = "connect-failure"
	OnRefusedStream        = "refused-stream"
	OnReset                = "reset"
	OnGatewayError         = "gateway-error"
	On5xx                  = "5xx"
	OnRetriableStatusCodes = "retriable-status-codes"
)

// DefaultRetryOn returns the conditions retried when Config.RetryOn is
// empty: connect-failure, refused-stream, reset and gateway-error.
func DefaultRetryOn() []string {
	return []string{OnConnectFailure, OnRefusedStream, OnReset, OnGatewayError}
}

// DefaultRetriableGRPCCodes returns the gRPC codes retried when
// Config.RetriableGRPCCodes is empty: UNAVAILABLE.
func DefaultRetriableGRPCCodes() []string { return []string{"UNAVAILABLE"} }

// Config is the retry policy as data. Its zero value is the documented
// default policy; the yaml tags are the keys of a retry: section.
type Config struct {
	// MaxAttempts is the number of attempts including the first; 1 means
	// no retries. 0 means 3; at most 10 (MaxMaxAttempts).
	MaxAttempts int `yaml:"max_attempts"`
	// PerTryTimeout bounds each attempt's wait for response headers (gRPC
	// unary: the whole attempt; server streams: until the first message).
	// 0 means none; at most 1h (MaxDuration), as are every duration of
	// Config.
	PerTryTimeout time.Duration `yaml:"per_try_timeout"`
	// BaseDelay is the first backoff delay (before jitter). 0 means 25ms.
	BaseDelay time.Duration `yaml:"base_delay"`
	// MaxDelay caps every backoff delay. 0 means 250ms.
	MaxDelay time.Duration `yaml:"max_delay"`
	// RetryOn lists the retried conditions: connect-failure,
	// refused-stream, reset, gateway-error (502, 503, 504), 5xx and
	// retriable-status-codes. Empty means DefaultRetryOn.
	RetryOn []string `yaml:"retry_on"`
	// RetriableStatusCodes are the HTTP status codes retried under
	// retriable-status-codes (listing codes here enables the condition).
	RetriableStatusCodes []int `yaml:"retriable_status_codes"`
	// RetriableGRPCCodes are gRPC code names (case-insensitive) retried by
	// the interceptors and, for trailers-only gRPC responses, by the
	// RoundTripper. Empty means UNAVAILABLE.
	RetriableGRPCCodes []string `yaml:"retriable_grpc_codes"`
	// RetryNonIdempotent allows re-sending POST, PATCH and other
	// non-idempotent requests under every condition, not only when the
	// request never left.
	RetryNonIdempotent bool `yaml:"retry_non_idempotent"`
	// MaxRetryAfter is the longest upstream Retry-After (or gRPC pushback)
	// that is waited out; beyond it the response is returned. 0 means 30s.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// MaxBodyBuffer caps the bytes buffered to replay a body that has no
	// GetBody. 0 means 1MiB; at most 256MiB (MaxBodyBufferLimit).
	MaxBodyBuffer Size `yaml:"max_body_buffer"`
	// Budget limits retries relative to requests.
	Budget BudgetConfig `yaml:"budget"`
	// Hedge sends extra copies of slow idempotent requests.
	Hedge HedgeConfig `yaml:"hedge"`
}

// BudgetConfig is the retry budget: over a sliding window of TTL, retries
// (and hedges) may not exceed Ratio × requests + MinPerSecond × TTL.
type BudgetConfig struct {
	// Ratio of retries to requests, in [0, 1]. 0 means 0.2.
	Ratio float64 `yaml:"ratio"`
	// MinPerSecond is the floor of retries always allowed. 0 means 10; at
	// most 1e6.
	MinPerSecond float64 `yaml:"min_per_second"`
	// TTL is the window requests and retries are counted over. 0 means
	// 10s; else between 10ms and 1h.
	TTL time.Duration `yaml:"ttl"`
	// Disabled turns the budget off: every retry max_attempts allows is made.
	Disabled bool `yaml:"disabled"`
}

// HedgeConfig configures hedging: when an idempotent request has no
// response headers after Delay, another copy is sent, up to MaxExtra
// copies; the first response wins. Each hedge spends the retry budget; a
// spent budget stops further hedges but never the copies in flight. When
// every copy failed, the request is retried as without hedging (counting
// MaxAttempts over non-hedge attempts) and the new attempt may be hedged
// again.
type HedgeConfig struct {
	// Delay before each extra copy. 0 means hedging is off.
	Delay time.Duration `yaml:"delay"`
	// MaxExtra is the number of extra copies. 0 means 1; at most 10.
	MaxExtra int `yaml:"max_extra"`
}

// FieldError is one problem of a Config: Field is the yaml key path inside
// the retry section ("budget.ratio"), Msg says what is wrong, and Error
// returns "field: msg". It is the one validation error all policy packages
// share.
type FieldError = fielderr.Error

// Validate reports every problem of c, each a *FieldError, joined with
// errors.Join. It returns nil for a valid config.
func (c Config) Validate() error {
	_, err := c.compile()
	return err
}

// compiled is a validated Config with defaults applied.
type compiled struct {
	maxAttempts   int
	perTry        time.Duration
	baseDelay     time.Duration
	maxDelay      time.Duration
	on            conditions
	statusCodes   []int
	grpcCodes     [17]bool
	nonIdempotent bool
	maxRetryAfter time.Duration
	maxBody       int64
	budget        BudgetConfig
	hedgeDelay    time.Duration
	hedgeMax      int
}

type conditions uint8

const (
	condConnect conditions = 1 << iota
	condRefused
	condReset
	condGateway
	cond5xx
	condStatus
)

var conditionWords = map[string]conditions{
	OnConnectFailure:       condConnect,
	OnRefusedStream:        condRefused,
	OnReset:                condReset,
	OnGatewayError:         condGateway,
	On5xx:                  cond5xx,
	OnRetriableStatusCodes: condStatus,
}

var grpcCodeNames = map[string]codes.Code{
	"OK": codes.OK, "CANCELLED": codes.Canceled, "UNKNOWN": codes.Unknown,
	"INVALID_ARGUMENT": codes.InvalidArgument, "DEADLINE_EXCEEDED": codes.DeadlineExceeded,
	"NOT_FOUND": codes.NotFound, "ALREADY_EXISTS": codes.AlreadyExists,
	"PERMISSION_DENIED": codes.PermissionDenied, "RESOURCE_EXHAUSTED": codes.ResourceExhausted,
	"FAILED_PRECONDITION": codes.FailedPrecondition, "ABORTED": codes.Aborted,
	"OUT_OF_RANGE": codes.OutOfRange, "UNIMPLEMENTED": codes.Unimplemented,
	"INTERNAL": codes.Internal, "UNAVAILABLE": codes.Unavailable, "DATA_LOSS": codes.DataLoss,
	"UNAUTHENTICATED": codes.Unauthenticated,
}

// problems collects the FieldErrors of a Config in the order they are found.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// duration reports d unless 0 ≤ d ≤ MaxDuration.
func (p *problems) duration(field string, d time.Duration) {
	switch {
	case d < 0:
		p.add(field, "must be ≥ 0, got %s", d)
	case d > MaxDuration:
		p.add(field, "must be at most %s, got %s", MaxDuration, d)
	}
}

// compile validates c and applies its defaults; every problem is reported,
// in the order of Config's fields.
func (c Config) compile() (compiled, error) {
	var p problems
	var k compiled
	k.maxAttempts = c.attempts(&p)
	k.perTry, k.baseDelay, k.maxDelay = c.delays(&p)
	k.on = c.retryOn(&p)
	if len(c.RetriableStatusCodes) > 0 {
		k.on |= condStatus
		k.statusCodes = append([]int(nil), c.RetriableStatusCodes...)
	}
	k.grpcCodes = c.grpcCodes(&p)
	k.nonIdempotent = c.RetryNonIdempotent
	p.duration("max_retry_after", c.MaxRetryAfter)
	k.maxRetryAfter = orDur(c.MaxRetryAfter, DefaultMaxRetryAfter)
	k.maxBody = c.bodyBuffer(&p)
	k.budget = c.Budget.compile(&p)
	k.hedgeDelay, k.hedgeMax = c.Hedge.compile(&p)
	if err := errors.Join(p...); err != nil {
		return compiled{}, err
	}
	return k, nil
}

// attempts checks MaxAttempts and returns it with its default applied.
func (c Config) attempts(p *problems) int {
	switch {
	case c.MaxAttempts < 0:
		p.add("max_attempts", "must be ≥ 1, got %d", c.MaxAttempts)
	case c.MaxAttempts > MaxMaxAttempts:
		p.add("max_attempts", "must be at most %d, got %d", MaxMaxAttempts, c.MaxAttempts)
	case c.MaxAttempts == 0:
		return DefaultMaxAttempts
	default:
		return c.MaxAttempts
	}
	return 0
}

// delays checks PerTryTimeout, BaseDelay and MaxDelay and returns them
// with their defaults applied; when only one of base and max is set, the
// default of the other gives way.
func (c Config) delays(p *problems) (perTry, base, maxDelay time.Duration) {
	p.duration("per_try_timeout", c.PerTryTimeout)
	p.duration("base_delay", c.BaseDelay)
	base = orDur(c.BaseDelay, DefaultBaseDelay)
	p.duration("max_delay", c.MaxDelay)
	maxDelay = orDur(c.MaxDelay, DefaultMaxDelay)
	if c.BaseDelay > 0 && c.MaxDelay > 0 && c.BaseDelay > c.MaxDelay {
		p.add("base_delay", "must be ≤ max_delay (%s), got %s", c.MaxDelay, c.BaseDelay)
	} else if base > maxDelay {
		if c.BaseDelay == 0 {
			base = maxDelay
		} else {
			maxDelay = base
		}
	}
	return c.PerTryTimeout, base, maxDelay
}

// retryOn checks RetryOn and RetriableStatusCodes and returns the
// conditions RetryOn names (DefaultRetryOn when empty).
func (c Config) retryOn(p *problems) conditions {
	words := c.RetryOn
	if len(words) == 0 {
		words = DefaultRetryOn()
	}
	var on conditions
	for i, w := range words {
		cond, ok := conditionWords[strings.ToLower(strings.TrimSpace(w))]
		if !ok {
			p.add(fmt.Sprintf("retry_on[%d]", i), "unknown condition %q (want one of connect-failure, refused-stream, reset, gateway-error, 5xx, retriable-status-codes)", w)
			continue
		}
		on |= cond
	}
	for i, code := range c.RetriableStatusCodes {
		if code < 100 || code > 599 {
			p.add(fmt.Sprintf("retriable_status_codes[%d]", i), "must be an HTTP status code in [100, 599], got %d", code)
		}
	}
	return on
}

// grpcCodes checks RetriableGRPCCodes and returns the set it names
// (DefaultRetriableGRPCCodes when empty).
func (c Config) grpcCodes(p *problems) [17]bool {
	names := c.RetriableGRPCCodes
	if len(names) == 0 {
		names = DefaultRetriableGRPCCodes()
	}
	var set [17]bool
	for i, name := range names {
		code, ok := grpcCodeNames[strings.ToUpper(strings.TrimSpace(name))]
		if !ok {
			p.add(fmt.Sprintf("retriable_grpc_codes[%d]", i), "unknown gRPC code %q (want a name such as UNAVAILABLE)", name)
			continue
		}
		if code == codes.OK {
			p.add(fmt.Sprintf("retriable_grpc_codes[%d]", i), "OK is not an error and cannot be retried")
			continue
		}
		set[code] = true
	}
	return set
}

// bodyBuffer checks MaxBodyBuffer and returns it with its default applied.
func (c Config) bodyBuffer(p *problems) int64 {
	switch {
	case c.MaxBodyBuffer < 0:
		p.add("max_body_buffer", "must be ≥ 0, got %d", int64(c.MaxBodyBuffer))
	case c.MaxBodyBuffer > MaxBodyBufferLimit:
		p.add("max_body_buffer", "must be at most %d bytes (256MiB), got %d", int64(MaxBodyBufferLimit), int64(c.MaxBodyBuffer))
	case c.MaxBodyBuffer == 0:
		return int64(DefaultMaxBodyBuffer)
	default:
		return int64(c.MaxBodyBuffer)
	}
	return 0
}

// compile checks b and returns it with its defaults applied.
func (b BudgetConfig) compile(p *problems) BudgetConfig {
	if math.IsNaN(b.Ratio) || b.Ratio < 0 || b.Ratio > 1 {
		p.add("budget.ratio", "must be in [0, 1], got %v", b.Ratio)
	}
	if math.IsNaN(b.MinPerSecond) || b.MinPerSecond < 0 || b.MinPerSecond > MaxBudgetMinPerSecond {
		p.add("budget.min_per_second", "must be between 0 and %g, got %v", float64(MaxBudgetMinPerSecond), b.MinPerSecond)
	}
	p.duration("budget.ttl", b.TTL)
	if b.TTL > 0 && b.TTL < MinBudgetTTL {
		p.add("budget.ttl", "must be 0 (= %s) or at least %s, got %s", DefaultBudgetTTL, MinBudgetTTL, b.TTL)
	}
	return BudgetConfig{
		Ratio:        orFloat(b.Ratio, DefaultBudgetRatio),
		MinPerSecond: orFloat(b.MinPerSecond, DefaultBudgetMin),
		TTL:          orDur(b.TTL, DefaultBudgetTTL),
		Disabled:     b.Disabled,
	}
}

// compile checks h and returns its delay and, with its default applied,
// its number of extra copies.
func (h HedgeConfig) compile(p *problems) (time.Duration, int) {
	p.duration("hedge.delay", h.Delay)
	switch {
	case h.MaxExtra < 0:
		p.add("hedge.max_extra", "must be ≥ 0, got %d", h.MaxExtra)
	case h.MaxExtra > MaxHedgeExtra:
		p.add("hedge.max_extra", "must be at most %d, got %d", MaxHedgeExtra, h.MaxExtra)
	case h.MaxExtra == 0:
		return h.Delay, DefaultHedgeMaxExtra
	default:
		return h.Delay, h.MaxExtra
	}
	return h.Delay, 0
}

func orDur(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func orFloat(f, def float64) float64 {
	if f == 0 {
		return def
	}
	return f
}
