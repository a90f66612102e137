package ratelimit

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Defaults of RedisConfig.
const (
	// DefaultRedisTimeout bounds one Redis call when RedisConfig.Timeout
	// is 0.
	DefaultRedisTimeout = 50 * time.Millisecond
	// MaxRedisTimeout is the largest RedisConfig.Timeout Validate accepts.
	MaxRedisTimeout = 10 * time.Second
	// DefaultRedisKeyPrefix begins the default key: the service name
	// (WithService) follows it, "outbound:ratelimit:users".
	DefaultRedisKeyPrefix = "outbound:ratelimit"
)

// RedisConfig shares a Limiter's buckets on a Redis server (yaml
// ratelimit.redis). Its zero value keeps them local.
type RedisConfig struct {
	// Address is the host:port of the Redis server; "" (the default)
	// keeps the buckets local.
	Address string `yaml:"address"`
	// Key is the prefix of the Redis keys; "" means
	// "outbound:ratelimit:<service>" (the WithService name; without one,
	// "outbound:ratelimit"). In the host scope each destination host has
	// the key "<prefix>:<host>"; in the global scope the key is the prefix.
	Key string `yaml:"key"`
	// Timeout bounds each Redis call (connecting included); 0 means
	// DefaultRedisTimeout (50ms), at most MaxRedisTimeout (10s). A Redis
	// slower than this, or unreachable, makes the Limiter fall back to its
	// local bucket until Redis answers again.
	Timeout time.Duration `yaml:"timeout"`
}

func (r RedisConfig) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if r.Address == "" {
		if r.Key != "" || r.Timeout != 0 {
			bad("redis.address", "required when redis.key or redis.timeout is set (\"\" keeps the buckets local)")
		}
	} else if msg := checkHostPort(r.Address); msg != "" {
		bad("redis.address", "%s, got %q", msg, r.Address)
	}
	switch {
	case r.Timeout < 0:
		bad("redis.timeout", "must be ≥ 0 (0 = %v), got %v", DefaultRedisTimeout, r.Timeout)
	case r.Timeout > MaxRedisTimeout:
		bad("redis.timeout", "must be ≤ %v, got %v", MaxRedisTimeout, r.Timeout)
	}
	return errs
}

// checkHostPort returns what is wrong with a host:port, or "".
func checkHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "must be host:port"
	}
	if host == "" {
		return "must be host:port with a host"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "must be host:port with a port 1-65535"
	}
	return ""
}

func (r RedisConfig) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultRedisTimeout
}

// keyPrefix returns the key prefix for the service named service.
func (r RedisConfig) keyPrefix(service string) string {
	switch {
	case r.Key != "":
		return r.Key
	case service != "":
		return DefaultRedisKeyPrefix + ":" + service
	}
	return DefaultRedisKeyPrefix
}
