package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/outbound-go/outbound/internal/attempt"
)

// lease is the part of a shared bucket one Limiter holds: tokens it took
// from Redis and has not spent yet, served without a round trip.
type lease struct {
	mu         sync.Mutex
	tokens     int
	emptyUntil time.Time     // the shared bucket has no whole token before this (local clock)
	fetch      chan struct{} // closed when the Redis call in flight ends; nil when none
	batch      int           // tokens the next call asks for; 0 before the first
}

func (z *lease) held() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.tokens
}

// leaseSize is how many tokens one call asks for when takers Limiters
// share a key: a quarter of the burst split between them, at most a tenth
// of a second of the rate, at least one.
func (s *store) leaseSize(takers int) int {
	n := min(s.burst/(4*max(takers, 1)), int(math.Ceil(s.rate/10)))
	return max(n, 1)
}

// acquireShared is acquire for a Limiter whose buckets live on Redis: it
// spends a leased token, or takes a new lease from Redis (one call in
// flight per key; other requests for the key wait for its outcome), or,
// while Redis is down, falls back to the local bucket b.lim.
func (l *Limiter) acquireShared(ctx context.Context, b *bucket, key string, now time.Time) error {
	var waited time.Duration
	if p := b.paused(now); p > 0 { // upstream pauses stay local
		if l.maxWait == 0 || p > l.maxWait || pastDeadline(ctx, now.Add(p)) {
			return l.refuse(ctx, key, p)
		}
		if err := l.sleep(ctx, p); err != nil {
			l.decisions.Add(ctx, 1, l.rejectOpts...)
			return fmt.Errorf("ratelimit: waiting %v for the end of a pause of %q: %w", p, key, err)
		}
		waited, now = p, l.now()
	}
	s, z := l.shared, b.lease
	for {
		z.mu.Lock()
		if z.tokens > 0 {
			z.tokens--
			z.mu.Unlock()
			return l.admitted(ctx, waited)
		}
		if ch := z.fetch; ch != nil {
			z.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				l.decisions.Add(ctx, 1, l.rejectOpts...)
				return fmt.Errorf("ratelimit: waiting for a token for %q: %w", key, ctx.Err())
			}
			now = l.now()
			continue
		}
		if l.maxWait == 0 && now.Before(z.emptyUntil) {
			z.mu.Unlock()
			return l.refuse(ctx, key, z.emptyUntil.Sub(now))
		}
		if !s.use(now) {
			z.mu.Unlock()
			return l.acquireLocal(ctx, b, key, now)
		}
		ch := make(chan struct{})
		z.fetch = ch
		want := z.batch
		if want == 0 {
			want = s.leaseSize(1)
		}
		z.mu.Unlock()
		return l.takeLease(ctx, b, key, now, want, waited, ch)
	}
}

// takeLease makes the Redis call acquireShared decided on and acts on its
// answer; ch is closed once the lease is updated.
func (l *Limiter) takeLease(ctx context.Context, b *bucket, key string, now time.Time, want int, waited time.Duration, ch chan struct{}) error {
	s, z := l.shared, b.lease
	res, err := s.take(key, want, l.debt(ctx, now, waited))
	z.mu.Lock()
	z.fetch = nil
	close(ch)
	if err != nil {
		z.mu.Unlock()
		now = l.now()
		s.failed(now, err)
		return l.acquireLocal(ctx, b, key, now)
	}
	z.batch = s.leaseSize(res.takers)
	switch {
	case res.granted > 0 && !res.borrowed:
		z.tokens += res.granted - 1
		if res.wait > 0 {
			// The bucket is empty now: do not ask again before it holds
			// about a lease.
			z.emptyUntil = now.Add(res.wait + l.refillTime(want-1))
		}
		z.mu.Unlock()
		s.ok()
		return l.admitted(ctx, waited)
	case res.granted > 0: // a borrowed token: wait for it
		z.mu.Unlock()
		s.ok()
		if err := l.sleep(ctx, res.wait); err != nil {
			l.decisions.Add(ctx, 1, l.rejectOpts...)
			return fmt.Errorf("ratelimit: waiting %v for a token for %q: %w", res.wait, key, err)
		}
		return l.admitted(ctx, waited+res.wait)
	}
	// Nothing to take: ask again once a lease has refilled, so an
	// overloaded key costs each taker at most one call per lease's worth of
	// time, not one per refusal. (Waiting for a lease per taker would save
	// calls but leave up to that many tokens unclaimed at any moment: the
	// three-process e2e then admitted 2.7% under the rate instead of 1%.)
	wait := res.wait + l.refillTime(want-1)
	z.emptyUntil = now.Add(wait)
	z.mu.Unlock()
	s.ok()
	return l.refuse(ctx, key, wait)
}

// debt is how many tokens a request at now may borrow from the shared
// bucket: what arrives within the wait it may still make (Config.MaxWait
// less what it waited already, and never past its deadline); 0 when it
// may not wait.
func (l *Limiter) debt(ctx context.Context, now time.Time, waited time.Duration) float64 {
	if l.maxWait == 0 {
		return 0
	}
	w := l.maxWait - waited
	if dl, ok := ctx.Deadline(); ok {
		w = min(w, dl.Sub(now))
	}
	if w <= 0 {
		return 0
	}
	return w.Seconds() * l.rps
}

// admitted records a request that may go after waiting waited (0: at once).
func (l *Limiter) admitted(ctx context.Context, waited time.Duration) error {
	if waited == 0 {
		l.decisions.Add(ctx, 1, l.allowedOpts...)
		return nil
	}
	if l.realClock {
		attempt.Refresh(ctx, time.Now())
	}
	l.decisions.Add(ctx, 1, l.waitedOpts...)
	l.waitHist.Record(ctx, waited.Seconds(), l.waitOpts...)
	return nil
}

// refuse records and returns the refusal of a request for key, whose next
// token is wait away.
func (l *Limiter) refuse(ctx context.Context, key string, wait time.Duration) error {
	l.decisions.Add(ctx, 1, l.rejectOpts...)
	return &LimitedError{Key: key, RetryAfter: max(wait, minRetryAfter)}
}

// refillTime is how long n tokens take to arrive at the configured rate.
func (l *Limiter) refillTime(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(float64(n) / l.rps * float64(time.Second))
}
