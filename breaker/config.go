package breaker

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/outbound-go/outbound/internal/fielderr"
)

// Defaults applied to the zero fields of a Config.
const (
	DefaultConsecutiveFailures = 5
	DefaultMinRequests         = 20
	DefaultInterval            = 10 * time.Second
	DefaultOpenTimeout         = 30 * time.Second
	DefaultHalfOpenRequests    = 1
	DefaultMaxKeys             = 10000
)

// Bounds Validate enforces.
const (
	// MaxCount bounds ConsecutiveFailures and MinRequests.
	MaxCount = 1_000_000
	// MaxHalfOpenRequests bounds HalfOpenRequests.
	MaxHalfOpenRequests = 1000
	// MaxDuration bounds Interval and OpenTimeout.
	MaxDuration = 24 * time.Hour
	// MaxMaxKeys bounds MaxKeys.
	MaxMaxKeys = 10_000_000
)

// Config is the breaker section of a service's configuration. Every zero
// field means the documented default, never "off".
type Config struct {
	// ConsecutiveFailures trips a closed breaker after this many failures
	// in a row (within one Interval); 0 means 5; at most MaxCount (1e6).
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// FailureRatio, when above 0, also trips a closed breaker once
	// failures/(failures+successes) within the current Interval reaches it,
	// provided at least MinRequests requests completed in that Interval.
	// 0 turns the ratio rule off; at most 1.
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests is the number of completed requests in the current
	// Interval before FailureRatio is looked at; 0 means 20; at most 1e6.
	MinRequests int `yaml:"min_requests"`
	// Interval is the window over which a closed breaker counts requests:
	// its counts (including the consecutive failures) start over every
	// Interval; 0 means 10s; at most 24h (MaxDuration).
	Interval time.Duration `yaml:"interval"`
	// OpenTimeout is how long a tripped breaker refuses every request
	// before it turns half-open; 0 means 30s; at most 24h.
	OpenTimeout time.Duration `yaml:"open_timeout"`
	// HalfOpenRequests is how many probe requests a half-open breaker lets
	// through; that many successes close it, one failure re-opens it for
	// another OpenTimeout. 0 means 1; at most 1000.
	HalfOpenRequests int `yaml:"half_open_requests"`
	// MaxKeys bounds the number of per-key breakers kept at once; 0 means
	// 10000; at most 1e7. See "Keys and memory" in the package documentation.
	MaxKeys int `yaml:"max_keys"`
	// GRPCFailureCodes names the gRPC codes that count as failures, by name
	// and case-insensitive ("UNAVAILABLE", "not_found"); empty means
	// DefaultGRPCFailureCodes. Any other code counts as a success, and
	// DEADLINE_EXCEEDED and CANCELLED never count when the caller's own
	// context is done. OK cannot be listed.
	GRPCFailureCodes []string `yaml:"grpc_failure_codes"`
}

// FieldError is one problem Validate found, naming the YAML key in Field
// and saying what is wrong in Msg; Error returns "field: msg". It is the
// one validation error all policy packages share.
type FieldError = fielderr.Error

// Validate reports every bad value of c, each as a *FieldError, joined with
// errors.Join. It returns nil for a valid config.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.ConsecutiveFailures < 0 || c.ConsecutiveFailures > MaxCount {
		bad("consecutive_failures", "must be between 0 (= %d) and %d, got %d",
			DefaultConsecutiveFailures, MaxCount, c.ConsecutiveFailures)
	}
	if math.IsNaN(c.FailureRatio) || c.FailureRatio < 0 || c.FailureRatio > 1 {
		bad("failure_ratio", "must be between 0 (off) and 1, got %s",
			strconv.FormatFloat(c.FailureRatio, 'g', -1, 64))
	}
	if c.MinRequests < 0 || c.MinRequests > MaxCount {
		bad("min_requests", "must be between 0 (= %d) and %d, got %d",
			DefaultMinRequests, MaxCount, c.MinRequests)
	}
	checkDuration := func(field string, d, def time.Duration) {
		switch {
		case d < 0:
			bad(field, "must be ≥ 0 (0 = %v), got %v", def, d)
		case d > MaxDuration:
			bad(field, "must be ≤ %v, got %v", MaxDuration, d)
		}
	}
	checkDuration("interval", c.Interval, DefaultInterval)
	checkDuration("open_timeout", c.OpenTimeout, DefaultOpenTimeout)
	if c.HalfOpenRequests < 0 || c.HalfOpenRequests > MaxHalfOpenRequests {
		bad("half_open_requests", "must be between 0 (= %d) and %d, got %d",
			DefaultHalfOpenRequests, MaxHalfOpenRequests, c.HalfOpenRequests)
	}
	switch {
	case c.MaxKeys < 0:
		bad("max_keys", "must be ≥ 0 (0 = %d), got %d", DefaultMaxKeys, c.MaxKeys)
	case c.MaxKeys > MaxMaxKeys:
		bad("max_keys", "must be ≤ %d, got %d", MaxMaxKeys, c.MaxKeys)
	}
	for i, name := range c.GRPCFailureCodes {
		switch code, ok := codeByName(name); {
		case !ok:
			bad(fmt.Sprintf("grpc_failure_codes[%d]", i), "unknown gRPC code %q (want a name such as UNAVAILABLE)", name)
		case code == codes.OK:
			bad(fmt.Sprintf("grpc_failure_codes[%d]", i), "OK is not an error and cannot count as a failure")
		}
	}
	return errors.Join(errs...)
}

// codeByName returns the gRPC code of a name such as "UNAVAILABLE" or
// "not_found" (the names grpc's codes.Code decodes from JSON).
func codeByName(name string) (codes.Code, bool) {
	var code codes.Code
	q := strconv.Quote(strings.ToUpper(strings.TrimSpace(name)))
	return code, code.UnmarshalJSON([]byte(q)) == nil
}

// grpcFailureMask returns the failure codes of c as a bit set; c must be
// valid.
func (c Config) grpcFailureMask() uint64 {
	if len(c.GRPCFailureCodes) == 0 {
		return codeMask(DefaultGRPCFailureCodes())
	}
	cs := make([]codes.Code, 0, len(c.GRPCFailureCodes))
	for _, name := range c.GRPCFailureCodes {
		code, _ := codeByName(name)
		cs = append(cs, code)
	}
	return codeMask(cs)
}

// withDefaults returns c with every zero field set to its default; c must
// be valid.
func (c Config) withDefaults() Config {
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if c.MinRequests == 0 {
		c.MinRequests = DefaultMinRequests
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.HalfOpenRequests == 0 {
		c.HalfOpenRequests = DefaultHalfOpenRequests
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	return c
}
