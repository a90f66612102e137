package classify

import (
	"context"
	"errors"
	"time"
)

// perTryKey marks a context whose deadline is the retry layer's per-try
// timeout; its value is that deadline.
type perTryKey struct{}

// WithPerTryTimeout returns a child of ctx that ends after d with cause
// ErrPerTryTimeout. When that deadline comes before ctx's own, the child is
// also marked with it, so that a layer below can tell an attempt that ran
// out of its per-try time from a caller that ran out of its own
// (PerTryExpired), even in the moment before the timer fires, when a gRPC
// server that enforced the propagated deadline has already answered
// DEADLINE_EXCEEDED.
func WithPerTryTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	dl := time.Now().Add(d)
	if cdl, ok := ctx.Deadline(); !ok || cdl.After(dl) {
		ctx = context.WithValue(ctx, perTryKey{}, dl)
	}
	return context.WithDeadlineCause(ctx, dl, ErrPerTryTimeout)
}

// PerTryExpired reports whether ctx's attempt was cut by the retry layer's
// per-try timeout while the caller was still waiting: its cause is
// ErrPerTryTimeout, or it carries a per-try deadline (WithPerTryTimeout)
// that has passed.
func PerTryExpired(ctx context.Context) bool {
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrPerTryTimeout) {
		return true
	}
	dl, ok := ctx.Value(perTryKey{}).(time.Time)
	return ok && !time.Now().Before(dl)
}
