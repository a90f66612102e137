package ambassador

import (
	"context"
	"net/http"
	"net/url"

	"github.com/outbound-go/outbound/internal/attempt"
)

// stackCall is the state a Stack keeps for one request in one allocation:
// the request's context, bounded by the service timeout (a lazyCtx: see its
// invariants), the response body wrapper that releases it (release is
// idempotent: the body may reach EOF and be closed), and the retry layer's
// call state.
type stackCall struct {
	lazyCtx

	body releaseBody

	// call is the retry layer's state for this request (when retry is the
	// stack's outermost layer), in the same allocation, and url the
	// storage of its attempts' URL, which discovery rewrites in place.
	call attempt.HTTPCall
	url  url.URL

	// guard and guardReq are the re-send guard's state and request copy
	// for the first RoundTrip of this request that reaches the guard (see
	// claimGuard), in the same allocation.
	//
	// Invariant: guard.claimed is set once, by the RoundTrip that claims
	// them, and never cleared: they serve one RoundTrip of one request
	// and are never reused; every other RoundTrip (a retry, a hedged
	// attempt) allocates its own.
	guard    resendCall
	guardReq http.Request
}

// stackCallKey is the context key under which a stackCall answers with
// itself, so the re-send guard below the policies finds it.
type stackCallKey struct{}

func (c *stackCall) Value(key any) any {
	if _, ok := key.(stackCallKey); ok {
		return c
	}
	return c.lazyCtx.Value(key)
}

// claimGuard returns the re-send guard's state and request copy of the
// stackCall in ctx, if there is one and no other RoundTrip claimed them.
func claimGuard(ctx context.Context) (*resendCall, *http.Request, bool) {
	sc, ok := ctx.Value(stackCallKey{}).(*stackCall)
	if !ok || !sc.guard.claimed.CompareAndSwap(false, true) {
		return nil, nil, false
	}
	return &sc.guard, &sc.guardReq, true
}

var _ context.Context = (*stackCall)(nil)

func (c *stackCall) String() string { return "ambassador.Stack request context" }
