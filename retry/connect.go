package retry

import (
	"context"
	"fmt"

	"github.com/cenkalti/backoff/v4"
)

// Connects paces the attempts of one logical connect that is neither an
// HTTP request nor a gRPC call: the ambassador's tcp listener joins a
// client connection to an endpoint with up to max_attempts connects, each
// to another endpoint, waiting the policy's backoff (base_delay, max_delay,
// jitter; never past ctx's deadline) between them. Only the attempt count
// and the schedule apply: retry_on, budget and hedging are HTTP and gRPC
// matters. It is not safe for concurrent use: one per logical connect.
type Connects struct {
	p   *Policy
	ctx context.Context
	bo  *backoff.ExponentialBackOff
	n   int
}

// Connects returns the schedule of one logical connect under ctx.
func (p *Policy) Connects(ctx context.Context) *Connects {
	return &Connects{p: p, ctx: ctx}
}

// Next reports whether another attempt may start, and waits the backoff
// before every attempt but the first (on the policy's clock). It returns
// false when max_attempts were made, the schedule ends, or ctx is done or
// its deadline would pass during the wait; err then says why when it is
// ctx's error (wrapped, errors.Is finds it), and is nil when the attempts
// are used up.
func (c *Connects) Next() (bool, error) {
	if c.n == 0 {
		c.n = 1
		return true, nil
	}
	if c.n >= c.p.c.maxAttempts {
		return false, nil
	}
	d, ok := c.p.nextDelay(c.ctx, &c.bo, 0, false)
	if !ok {
		return false, nil
	}
	if err := c.p.clock.Sleep(c.ctx, d); err != nil {
		return false, fmt.Errorf("retry: waiting %s before connect attempt %d: %w", d, c.n+1, err)
	}
	c.n++
	return true, nil
}

// Attempts returns how many attempts Next has allowed so far.
func (c *Connects) Attempts() int { return c.n }
