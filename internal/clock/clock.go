// Package clock is the one time seam of the policy packages. retry,
// ratelimit, breaker and discovery each alias Clock (their WithClock takes
// it), so a test clock written for one fits all four; the real clock is
// Real. A policy given no clock uses Real, and a nil Clock means Real too.
package clock

import (
	"context"
	"time"
)

// Clock is a time source: Now reads the time, and Sleep waits d, returning
// nil when d has passed and ctx.Err() if ctx ends first (at once for a ctx
// that is already done). A Clock must be safe for concurrent use.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock: time.Now and a timer.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Sleep waits d on a timer, or until ctx is done.
func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OrReal returns c, or Real when c is nil.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// IsReal reports whether c is the wall clock (nil or Real), so a policy may
// share clock readings with the layers around it.
func IsReal(c Clock) bool {
	if c == nil {
		return true
	}
	_, ok := c.(Real)
	return ok
}

type ctxKey struct{}

// NewContext returns ctx carrying c, for a goroutine that a policy starts
// through an interface it does not own (discovery's Source.Watch), so the
// policy's clock reaches it without a new method on the interface.
func NewContext(ctx context.Context, c Clock) context.Context {
	return context.WithValue(ctx, ctxKey{}, OrReal(c))
}

// FromContext returns the Clock NewContext put in ctx, else Real.
func FromContext(ctx context.Context) Clock {
	if c, ok := ctx.Value(ctxKey{}).(Clock); ok {
		return c
	}
	return Real{}
}
