package retry

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"google.golang.org/grpc/codes"
)

// backoffClock adapts Clock to backoff.Clock.
type backoffClock struct{ c Clock }

func (b backoffClock) Now() time.Time { return b.c.Now() }

// newBackoff returns the schedule of one logical request: exponential from
// base_delay with ±50% jitter, each delay capped at max_delay, and a
// MaxElapsedTime that ends where ctx's deadline is (none without one).
// It is only called once a retry is about to happen.
func (p *Policy) newBackoff(ctx context.Context) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.c.baseDelay,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          backoff.DefaultMultiplier,
		MaxInterval:         p.c.maxDelay,
		Stop:                backoff.Stop,
		Clock:               backoffClock{p.clock},
	}
	if dl, ok := ctx.Deadline(); ok {
		b.MaxElapsedTime = dl.Sub(p.clock.Now())
		if b.MaxElapsedTime <= 0 {
			b.MaxElapsedTime = time.Nanosecond
		}
	}
	b.Reset()
	return b
}

// nextDelay returns the wait before the next attempt: the upstream's delay
// when it gave one (Retry-After, pushback), else the schedule's next step.
// ok is false when the wait would end at or after ctx's deadline, or, with
// no upstream delay, when the schedule says stop.
func (p *Policy) nextDelay(ctx context.Context, bo **backoff.ExponentialBackOff, upstream time.Duration, hasUpstream bool) (time.Duration, bool) {
	if *bo == nil {
		*bo = p.newBackoff(ctx)
	}
	// The schedule advances either way, so a later step without an
	// upstream delay is the one after this.
	d := (*bo).NextBackOff()
	switch {
	case hasUpstream:
		// The upstream's word is the wait: the schedule's Stop only says
		// that its own step would end past the deadline, which the
		// check below asks of this wait instead.
		d = upstream
	case d == backoff.Stop:
		return 0, false
	case d > p.c.maxDelay:
		d = p.c.maxDelay
	}
	if dl, ok := ctx.Deadline(); ok && !p.clock.Now().Add(d).Before(dl) {
		return 0, false
	}
	return d, true
}

// pushback parses a grpc-retry-pushback-ms value: ok is false for a
// negative or malformed value, which means "do not retry".
func pushback(v string) (time.Duration, bool) {
	ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || ms < 0 {
		return 0, false
	}
	if ms > int64(1<<62)/int64(time.Millisecond) {
		ms = int64(1<<62) / int64(time.Millisecond)
	}
	return time.Duration(ms) * time.Millisecond, true
}

func (p *Policy) retriableCode(c codes.Code) bool {
	return int(c) < len(p.c.grpcCodes) && p.c.grpcCodes[c]
}
