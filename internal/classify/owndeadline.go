package classify

import (
	"context"
	"errors"
	"time"
)

// OwnDeadlineKey is the context key of a deadline that one of this
// module's layers set on a request and that comes before the caller's own:
// the retry layer's per-try timeout, the ambassador's service timeout. Its
// value is that deadline (a time.Time). A context type of this module that
// holds such a deadline itself (the ambassador Stack's) answers the key
// from its Value method; others get it from WithPerTryTimeout or
// WithOwnTimeout.
type OwnDeadlineKey struct{}

// WithPerTryTimeout returns a child of ctx that ends after d with cause
// ErrPerTryTimeout. When that deadline comes before ctx's own, the child is
// also marked with it (OwnDeadlineKey), so that a layer below can tell an
// attempt that ran out of its per-try time from a caller that ran out of
// its own (OwnDeadlinePassed), even in the moment before the timer fires,
// when a gRPC server that enforced the propagated deadline has already
// answered DEADLINE_EXCEEDED.
func WithPerTryTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	dl := time.Now().Add(d)
	return context.WithDeadlineCause(markOwn(ctx, dl), dl, ErrPerTryTimeout)
}

// WithOwnTimeout is context.WithTimeout for a timeout of this module's own
// (the ambassador's service timeout): the child is marked as
// WithPerTryTimeout's is when its deadline comes before ctx's, so the
// layers below count a request it cut as the endpoint's failure, not as the
// caller's cancellation.
func WithOwnTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	dl := time.Now().Add(d)
	return context.WithDeadline(markOwn(ctx, dl), dl)
}

func markOwn(ctx context.Context, dl time.Time) context.Context {
	if cdl, ok := ctx.Deadline(); !ok || cdl.After(dl) {
		return context.WithValue(ctx, OwnDeadlineKey{}, dl)
	}
	return ctx
}

// OwnDeadlinePassed reports whether ctx's request was cut by a deadline of
// this module's own while the caller was still waiting: the retry layer's
// per-try timeout (the cause is ErrPerTryTimeout) or a deadline marked with
// OwnDeadlineKey that has passed. The endpoint missed it: for the breaker
// it is the endpoint's failure, not the caller's cancellation.
func OwnDeadlinePassed(ctx context.Context) bool {
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrPerTryTimeout) {
		return true
	}
	dl, ok := ctx.Value(OwnDeadlineKey{}).(time.Time)
	return ok && !time.Now().Before(dl)
}
