package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/clock"
)

// globalKey is the key of the single bucket of the global scope.
const globalKey = "*"

// minRetryAfter is the smallest RetryAfter a LimitedError reports.
const minRetryAfter = time.Millisecond

// Limiter limits the rate of outbound requests with token buckets, one per
// destination host or one for all. It is safe for concurrent use.
type Limiter struct {
	rps              float64
	burst            int
	maxWait          time.Duration
	ignoreRetryAfter bool
	maxPause         time.Duration

	global *bucket // scope global; nil in scope host
	keys   *table  // scope host; nil in scope global
	shared *store  // the buckets on Redis; nil when local

	keyFunc       func(*http.Request) string
	grpcMethodKey bool
	now           func() time.Time
	realClock     bool // now is time.Now: a reading shared by the retry layer above may stand in
	sleep         func(ctx context.Context, d time.Duration) error
	logger        *slog.Logger

	decisions                           metric.Int64Counter
	waitHist                            metric.Float64Histogram
	allowedOpts, waitedOpts, rejectOpts []metric.AddOption
	waitOpts                            []metric.RecordOption
}

// BucketState is one bucket as Snapshot sees it.
type BucketState struct {
	Key         string    `json:"key"`
	Tokens      float64   `json:"tokens"`                // may be negative while requests wait
	PausedUntil time.Time `json:"paused_until,omitzero"` // zero when not paused by an upstream
}

// New validates c and returns a Limiter. It starts no goroutine.
func New(c Config, opts ...Option) (*Limiter, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: invalid config: %w", err)
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	clk := clock.OrReal(o.clock)
	l := &Limiter{
		rps:              c.RPS,
		burst:            c.burst(),
		maxWait:          c.MaxWait,
		ignoreRetryAfter: c.IgnoreRetryAfter,
		maxPause:         c.maxPause(),
		keyFunc:          o.keyFunc,
		grpcMethodKey:    o.grpcMethodKey,
		now:              clk.Now,
		realClock:        clock.IsReal(clk),
		sleep:            clk.Sleep,
		logger:           o.logger,
	}
	shared := c.Redis.Address != ""
	if c.scope() == ScopeGlobal {
		l.global = newBucket(rate.Limit(c.RPS), l.burst, shared)
	} else {
		l.keys = newTable(c.maxKeys(), rate.Limit(c.RPS), l.burst)
		l.keys.shared = shared
	}
	if err := l.initMetrics(o); err != nil {
		return nil, err
	}
	if shared {
		s, err := newStore(c, o, l.meter(o))
		if err != nil {
			return nil, err
		}
		l.shared = s
	}
	return l, nil
}

func (l *Limiter) meter(o options) metric.Meter {
	mp := o.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter("github.com/outbound-go/outbound/ratelimit")
}

func (l *Limiter) initMetrics(o options) error {
	m := l.meter(o)
	var err error
	l.decisions, err = m.Int64Counter("outbound.ratelimit.decisions",
		metric.WithDescription("Rate limiter decisions, by result: allowed, waited, rejected."),
		metric.WithUnit("{request}"))
	if err != nil {
		return fmt.Errorf("ratelimit: creating outbound.ratelimit.decisions: %w", err)
	}
	l.waitHist, err = m.Float64Histogram("outbound.ratelimit.wait",
		metric.WithDescription("Time requests that waited spent waiting for a token."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	if err != nil {
		return fmt.Errorf("ratelimit: creating outbound.ratelimit.wait: %w", err)
	}
	var base []attribute.KeyValue
	if o.service != "" {
		base = append(base, attribute.String("service", o.service))
	}
	set := func(result string) []metric.AddOption {
		kv := append(append([]attribute.KeyValue(nil), base...), attribute.String("result", result))
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	l.allowedOpts, l.waitedOpts, l.rejectOpts = set("allowed"), set("waited"), set("rejected")
	l.waitOpts = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(base...))}
	return nil
}

// nowFor returns the time for a request under ctx: the reading the retry
// layer above took just before sending the attempt when the limiter runs on
// the real clock too (one clock read less), else a reading of its own.
func (l *Limiter) nowFor(ctx context.Context) time.Time {
	return l.nowOf(attempt.Lookup(ctx))
}

// nowOf is nowFor with the attempt already looked up.
func (l *Limiter) nowOf(a attempt.View) time.Time {
	if l.realClock {
		if t, ok := a.Now(); ok {
			return t
		}
	}
	return l.now()
}

// bucket returns the bucket of key and the key it is reported under.
func (l *Limiter) bucket(key string, now time.Time) (*bucket, string) {
	if l.global != nil {
		return l.global, globalKey
	}
	return l.keys.get(key, now), key
}

// Acquire takes a token for key (the destination host, in the host scope;
// ignored in the global scope), waiting for it when Config.MaxWait allows.
// It returns nil when the request may go, a *LimitedError (wrapping
// ErrLimited) when it may not, or — when ctx ends during a wait — an error
// wrapping ctx.Err(). A refused or abandoned wait gives its token back.
// RoundTripper and the interceptors call it; use it directly to limit
// anything else.
func (l *Limiter) Acquire(ctx context.Context, key string) error {
	now := l.now()
	b, key := l.bucket(key, now)
	return l.acquire(ctx, b, key, now)
}

func (l *Limiter) acquire(ctx context.Context, b *bucket, key string, now time.Time) error {
	if l.shared != nil {
		return l.acquireShared(ctx, b, key, now)
	}
	return l.acquireLocal(ctx, b, key, now)
}

// acquireLocal is acquire on the local bucket b.lim.
func (l *Limiter) acquireLocal(ctx context.Context, b *bucket, key string, now time.Time) error {
	p := b.paused(now)
	if p == 0 && b.lim.AllowN(now, 1) {
		l.decisions.Add(ctx, 1, l.allowedOpts...)
		return nil
	}
	if l.maxWait == 0 {
		l.decisions.Add(ctx, 1, l.rejectOpts...)
		return &LimitedError{Key: key, RetryAfter: max(p, l.tokenWait(b, now))}
	}
	r := b.lim.ReserveN(now, 1) // always OK: burst ≥ 1 and no wait limit
	w := max(p, r.DelayFrom(now))
	if w > l.maxWait || pastDeadline(ctx, now.Add(w)) {
		r.CancelAt(now)
		l.decisions.Add(ctx, 1, l.rejectOpts...)
		return &LimitedError{Key: key, RetryAfter: max(w, minRetryAfter)}
	}
	if w == 0 {
		l.decisions.Add(ctx, 1, l.allowedOpts...)
		return nil
	}
	if err := l.sleep(ctx, w); err != nil {
		r.CancelAt(l.now())
		l.decisions.Add(ctx, 1, l.rejectOpts...)
		return fmt.Errorf("ratelimit: waiting %v for a token for %q: %w", w, key, err)
	}
	if l.realClock {
		// Layers below take the attempt's clock reading for the moment
		// it was sent: after the wait, not before.
		attempt.Refresh(ctx, time.Now())
	}
	l.decisions.Add(ctx, 1, l.waitedOpts...)
	l.waitHist.Record(ctx, w.Seconds(), l.waitOpts...)
	return nil
}

// tokenWait estimates how long until b has a whole token.
func (l *Limiter) tokenWait(b *bucket, now time.Time) time.Duration {
	missing := 1 - b.lim.TokensAt(now)
	ns := missing / l.rps * float64(time.Second)
	if ns >= math.MaxInt64 { // a very slow rate: "never" in practice
		return time.Duration(math.MaxInt64)
	}
	return max(time.Duration(ns), minRetryAfter)
}

func pastDeadline(ctx context.Context, t time.Time) bool {
	dl, ok := ctx.Deadline()
	return ok && t.After(dl)
}

// Pause stops key's bucket (the single bucket in the global scope) from
// handing out tokens for d, capped by Config.MaxPause. Requests meanwhile wait
// for the end of the pause when Config.MaxWait allows it, else are refused
// with RetryAfter = the time left. A shorter pause never cuts a longer one.
// RoundTripper calls it for an upstream 429 or 503 with Retry-After unless
// Config.IgnoreRetryAfter; Pause itself always applies.
func (l *Limiter) Pause(key string, d time.Duration) {
	if d <= 0 {
		return
	}
	d = min(d, l.maxPause)
	now := l.now()
	b, key := l.bucket(key, now)
	b.pauseUntil(now.Add(d))
	if l.logger != nil {
		l.logger.Debug("ratelimit: upstream asked to back off; key paused", "key", key, "pause", d)
	}
}

// Snapshot returns the state of every bucket held, sorted by key, for a
// status page. In the global scope it has one entry with key "*".
func (l *Limiter) Snapshot() []BucketState {
	now := l.now()
	state := func(key string, b *bucket) BucketState {
		s := BucketState{Key: key, Tokens: b.lim.TokensAt(now)}
		if b.lease != nil && l.shared.up() {
			s.Tokens = float64(b.lease.held()) // the tokens leased from Redis
		}
		if p := b.paused(now); p > 0 {
			s.PausedUntil = now.Add(p)
		}
		return s
	}
	if l.global != nil {
		return []BucketState{state(globalKey, l.global)}
	}
	var out []BucketState
	l.keys.each(func(key string, b *bucket) { out = append(out, state(key, b)) })
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Len returns the number of buckets held (1 in the global scope).
func (l *Limiter) Len() int {
	if l.global != nil {
		return 1
	}
	return l.keys.len()
}

// Close stops the goroutines the Limiter started and waits for them; it is
// safe to call more than once and returns nil or the first error. A local
// Limiter starts none (a waiting request sleeps on its own goroutine), so
// Close returns nil; a Limiter shared on Redis closes its Redis client. The
// Limiter stays usable: after Close a shared one limits on its local
// buckets alone.
func (l *Limiter) Close() error {
	if l.shared != nil {
		return l.shared.close()
	}
	return nil
}
