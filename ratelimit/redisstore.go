package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// takeScript is the shared token bucket: one Redis hash per key with the
// tokens, the time of the last update (the Redis server's clock, in
// microseconds) and one field "p:<id>" per Limiter that took within the
// last two seconds (how many processes share the key). It refills the
// bucket, then grants up to ARGV[3] tokens if there is a whole one; if
// not and ARGV[4] > 0, it lets one waiting request borrow a token it
// must wait for (the bucket goes negative by at most ARGV[4] tokens);
// otherwise it grants nothing. It returns {granted, wait µs, takers,
// borrowed}: wait is how long the borrowed token (borrowed = 1), or else
// the next whole token in the bucket, takes to arrive (0 if one is there).
const takeScript = `
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local debt = tonumber(ARGV[4])
local me = 'p:' .. ARGV[5]
local ttl = tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tokens, ts = burst, now
local takers = 1
local h = redis.call('HGETALL', key)
for i = 1, #h, 2 do
  local f, v = h[i], h[i + 1]
  if f == 'tokens' then tokens = tonumber(v)
  elseif f == 'ts' then ts = tonumber(v)
  elseif f ~= me and string.sub(f, 1, 2) == 'p:' then
    if tonumber(v) < now - 2000000 then redis.call('HDEL', key, f) else takers = takers + 1 end
  end
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
  ts = now
end
local grant, borrowed = 0, 0
if tokens >= 1 then
  grant = math.min(want, math.floor(tokens))
  tokens = tokens - grant
elseif debt > 0 and 1 - tokens <= debt then
  grant, borrowed = 1, 1
  tokens = tokens - 1
end
local wait = 0
if tokens < 1 then wait = math.ceil((1 - tokens - borrowed) * 1000000 / rate) end
redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.0f', ts),
  me, string.format('%.0f', now))
redis.call('PEXPIRE', key, ttl)
return {grant, wait, takers, borrowed}
`

// script is shared by every store: go-redis runs it with EVALSHA and falls
// back to EVAL (which loads it) when the server does not have it yet.
var script = redis.NewScript(takeScript)

// probeInterval is how often a Limiter whose Redis failed tries it again.
const probeInterval = time.Second

// store is a Limiter's connection to the shared buckets on Redis and its
// view of Redis's health: up, or down until the next probe.
type store struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
	id      string // this Limiter among the takers of a key
	rate    float64
	burst   int
	ttlMS   int64 // key expiry: the time to refill the whole bucket, and some

	downUntil atomic.Int64 // Unix ns of the next probe while down; 0 = up
	probing   atomic.Bool
	closed    atomic.Bool

	logger    *slog.Logger
	errCount  metric.Int64Counter
	errOpts   []metric.AddOption
	sharedKey string // the Redis key in the global scope
}

// takeResult is one answer of the script.
type takeResult struct {
	granted  int
	wait     time.Duration
	takers   int
	borrowed bool // the one granted token arrives after wait
}

func newStore(c Config, o options, m metric.Meter) (*store, error) {
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	to := c.Redis.timeout()
	s := &store{
		client: redis.NewClient(&redis.Options{
			Addr:                  c.Redis.Address,
			Protocol:              2, // no HELLO round trip on connect
			DialTimeout:           to,
			ReadTimeout:           to,
			WriteTimeout:          to,
			PoolTimeout:           to,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1, // one try per call: the timeout bounds the call
			DialerRetries:         1,
			DisableIdentity:       true,
			MaintNotificationsConfig: &maintnotifications.Config{
				Mode: maintnotifications.ModeDisabled,
			},
		}),
		prefix:  c.Redis.keyPrefix(o.service),
		timeout: to,
		id:      hex.EncodeToString(idb[:]),
		rate:    c.RPS,
		burst:   c.burst(),
		logger:  o.logger,
	}
	s.sharedKey = s.prefix
	refill := float64(s.burst) / c.RPS * 1000
	s.ttlMS = int64(math.Min(refill, float64(math.MaxInt32))) + 2000
	var err error
	s.errCount, err = m.Int64Counter("outbound.ratelimit.store_errors",
		metric.WithDescription("Redis calls of the shared rate limit that failed or timed out (the limiter then falls back to its local bucket)."),
		metric.WithUnit("{error}"))
	if err != nil {
		_ = s.client.Close()
		return nil, fmt.Errorf("ratelimit: creating outbound.ratelimit.store_errors: %w", err)
	}
	var kv []attribute.KeyValue
	if o.service != "" {
		kv = append(kv, attribute.String("service", o.service))
	}
	s.errOpts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	return s, nil
}

// redisKey returns the Redis key of a bucket key.
func (s *store) redisKey(key string) string {
	if key == globalKey {
		return s.sharedKey
	}
	return s.prefix + ":" + key
}

// take asks the shared bucket of key for up to want tokens, letting a
// waiting request borrow up to debt tokens (0: none).
func (s *store) take(key string, want int, debt float64) (takeResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	v, err := script.Run(ctx, s.client, []string{s.redisKey(key)},
		s.rate, s.burst, want, debt, s.id, s.ttlMS).Int64Slice()
	if err != nil {
		return takeResult{}, err
	}
	if len(v) != 4 || v[0] < 0 || v[1] < 0 {
		return takeResult{}, fmt.Errorf("ratelimit: unexpected answer of the Redis script: %v", v)
	}
	return takeResult{granted: int(v[0]), wait: time.Duration(v[1]) * time.Microsecond,
		takers: int(max(v[2], 1)), borrowed: v[3] == 1}, nil
}

// use reports whether a request at now should go to Redis: Redis is up,
// or it is down, a probe is due and this caller won the right to probe
// (then it must report the outcome with ok or failed).
func (s *store) use(now time.Time) bool {
	if s.closed.Load() {
		return false
	}
	until := s.downUntil.Load()
	if until == 0 {
		return true
	}
	return now.UnixNano() >= until && s.probing.CompareAndSwap(false, true)
}

// up reports whether Redis answered the last call.
func (s *store) up() bool { return !s.closed.Load() && s.downUntil.Load() == 0 }

// ok records that Redis answered; the first answer after an outage logs.
func (s *store) ok() {
	if s.downUntil.Load() == 0 {
		return
	}
	s.downUntil.Store(0)
	s.probing.Store(false)
	if s.logger != nil {
		s.logger.Info("ratelimit: Redis answers again; the rate limit is shared again", "redis", s.client.Options().Addr)
	}
}

// failed records a failed Redis call at now: it counts the error, marks
// Redis down until the next probe and logs the first failure of an outage.
func (s *store) failed(now time.Time, err error) {
	s.errCount.Add(context.Background(), 1, s.errOpts...)
	next := now.Add(probeInterval).UnixNano()
	first := s.downUntil.Swap(next) == 0
	s.probing.Store(false)
	if first && s.logger != nil && !s.closed.Load() {
		s.logger.Warn("ratelimit: Redis unreachable or slow; falling back to the local bucket until it answers",
			"redis", s.client.Options().Addr, "timeout", s.timeout, "error", err)
	}
}

func (s *store) close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.client.Close()
}
