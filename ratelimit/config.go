package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/outbound-go/outbound/internal/fielderr"
)

// Scope values for Config.Scope.
const (
	// ScopeHost keeps one bucket per destination host (the default).
	ScopeHost = "host"
	// ScopeGlobal keeps one bucket for every request through the Limiter.
	ScopeGlobal = "global"
)

// Defaults applied to zero Config fields.
const (
	// DefaultMaxKeys bounds the number of per-host buckets when
	// Config.MaxKeys is 0.
	DefaultMaxKeys = 10000
	// DefaultMaxPause caps how long an upstream Retry-After (or gRPC
	// pushback) may pause a key when Config.MaxPause is 0.
	DefaultMaxPause = 5 * time.Minute
	// MaxRPS is the largest rate Validate accepts.
	MaxRPS = 1e9
	// MinRPS is the smallest rate Validate accepts: one request every
	// 1000 s. Below it the wait for a token (and the Retry-After of a
	// refusal) grows past any useful bound.
	MinRPS = 0.001
	// MaxBurst is the largest Burst Validate accepts.
	MaxBurst = 1_000_000_000
	// MaxMaxWait is the largest MaxWait Validate accepts.
	MaxMaxWait = time.Hour
	// MaxMaxKeys is the largest MaxKeys Validate accepts.
	MaxMaxKeys = 10_000_000
)

// Config is the YAML-decodable configuration of a Limiter. Its zero value is
// not valid: RPS is required. Every other zero field means the documented
// default.
type Config struct {
	// RPS is the sustained rate in requests per second; required, between
	// MinRPS (0.001) and MaxRPS (1e9). Fractions are allowed: 0.5 is one
	// request every 2 s.
	RPS float64 `yaml:"rps"`
	// Burst is the bucket size: how many requests may go at once after a
	// quiet period. 0 means ceil(RPS); at most MaxBurst (1e9).
	Burst int `yaml:"burst"`
	// MaxWait is how long a request may wait for a token. 0 rejects at once
	// when no token is free; a positive value waits up to that long, and
	// never past the request's context deadline. At most 1h.
	MaxWait time.Duration `yaml:"max_wait"`
	// Scope is "host" (default; one bucket per destination host, bounded by
	// MaxKeys) or "global" (one bucket for everything).
	Scope string `yaml:"scope"`
	// IgnoreRetryAfter turns off the pause that an upstream 429 or 503 with
	// Retry-After (or a gRPC grpc-retry-pushback-ms trailer) puts on its key.
	IgnoreRetryAfter bool `yaml:"ignore_retry_after"`
	// MaxKeys bounds the number of per-host buckets kept at once; 0 means
	// DefaultMaxKeys; at most MaxMaxKeys (1e7). Idle buckets are evicted first.
	MaxKeys int `yaml:"max_keys"`
	// MaxPause caps how long one upstream Retry-After or gRPC pushback may
	// pause a key, so a bogus header cannot silence a host for a day; 0
	// means DefaultMaxPause (5m); at most 24h.
	MaxPause time.Duration `yaml:"max_pause"`
	// Redis, when its Address is set, shares the limit with every Limiter
	// that uses the same Redis server and key (see "Shared on Redis" in the
	// package doc). The zero value keeps the buckets local.
	Redis RedisConfig `yaml:"redis"`
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
	switch {
	case math.IsNaN(c.RPS) || math.IsInf(c.RPS, 0):
		bad("rps", "must be a finite number > 0, got %v", c.RPS)
	case c.RPS == 0:
		bad("rps", "required, must be > 0")
	case c.RPS < 0:
		bad("rps", "required, must be > 0, got %s", strconv.FormatFloat(c.RPS, 'g', -1, 64))
	case c.RPS < MinRPS:
		bad("rps", "must be ≥ %g (one request every 1000s), got %s", MinRPS, strconv.FormatFloat(c.RPS, 'g', -1, 64))
	case c.RPS > MaxRPS:
		bad("rps", "must be ≤ %g, got %s", float64(MaxRPS), strconv.FormatFloat(c.RPS, 'g', -1, 64))
	}
	switch {
	case c.Burst < 0:
		bad("burst", "must be ≥ 0 (0 = ceil(rps)), got %d", c.Burst)
	case c.Burst > MaxBurst:
		bad("burst", "must be ≤ %d, got %d", MaxBurst, c.Burst)
	}
	switch {
	case c.MaxWait < 0:
		bad("max_wait", "must be ≥ 0 (0 = reject at once), got %v", c.MaxWait)
	case c.MaxWait > MaxMaxWait:
		bad("max_wait", "must be ≤ %v, got %v", MaxMaxWait, c.MaxWait)
	}
	switch c.Scope {
	case "", ScopeHost, ScopeGlobal:
	default:
		bad("scope", "must be %q or %q, got %q", ScopeHost, ScopeGlobal, c.Scope)
	}
	switch {
	case c.MaxKeys < 0:
		bad("max_keys", "must be ≥ 0 (0 = %d), got %d", DefaultMaxKeys, c.MaxKeys)
	case c.MaxKeys > MaxMaxKeys:
		bad("max_keys", "must be ≤ %d, got %d", MaxMaxKeys, c.MaxKeys)
	}
	switch {
	case c.MaxPause < 0:
		bad("max_pause", "must be ≥ 0 (0 = %v), got %v", DefaultMaxPause, c.MaxPause)
	case c.MaxPause > maxMaxPause:
		bad("max_pause", "must be ≤ %v, got %v", maxMaxPause, c.MaxPause)
	}
	errs = append(errs, c.Redis.validate()...)
	return errors.Join(errs...)
}

// burst returns the effective bucket size; c must be valid.
func (c Config) burst() int {
	if c.Burst > 0 {
		return c.Burst
	}
	return int(math.Ceil(c.RPS))
}

func (c Config) scope() string {
	if c.Scope == "" {
		return ScopeHost
	}
	return c.Scope
}

// maxMaxPause bounds Config.MaxPause.
const maxMaxPause = 24 * time.Hour

func (c Config) maxPause() time.Duration {
	if c.MaxPause > 0 {
		return c.MaxPause
	}
	return DefaultMaxPause
}

func (c Config) maxKeys() int {
	if c.MaxKeys > 0 {
		return c.MaxKeys
	}
	return DefaultMaxKeys
}
