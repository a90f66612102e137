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
// idempotent: the body may reach EOF and be closed), the retry layer's
// call state, and the re-send guard's state for the request's first
// RoundTrip of the base.
type stackCall struct {
	lazyCtx

	body releaseBody

	// call is the retry layer's state for this request (when retry is the
	// stack's outermost layer), in the same allocation, and url the
	// storage of its attempts' URL, which discovery rewrites in place.
	call attempt.HTTPCall
	url  url.URL

	// guard is the re-send guard's state for the first attempt of this
	// request, and its context that attempt's (see link): the guard takes
	// that attempt's request as it is, without a copy to change its
	// context.
	//
	// Invariant: guard.claimed is set once, by the guard's RoundTrip that
	// takes it (claimLinked), and never cleared: it serves one RoundTrip
	// of one request and is never reused; every other RoundTrip (a retry,
	// a hedged attempt) allocates its own.
	guard resendCall
}

var _ context.Context = (*stackCall)(nil)

func (c *stackCall) String() string { return "ambassador.Stack request context" }

// link makes c.guard's context a child of c's, linked to it (see lazyCtx)
// and open to the guard's claim, and returns it: the context for the
// request's first attempt. It must be called before the request is sent.
func (c *stackCall) link() context.Context {
	c.guard.lazyCtx.parent = c
	c.guard.lazyCtx.outer = &c.lazyCtx
	c.lazyCtx.inner = &c.guard.lazyCtx
	c.guard.linked = true
	return &c.guard
}

// claimLinked returns the linked guard state (stackCall.link) whose
// context is req's, directly or as the parent of req's attempt context,
// when no other RoundTrip claimed it. Only then is req's context exactly
// the one the guard would give the base transport: anything between (a
// per-try timeout, a span, a trace a layer added) means a copy.
func claimLinked(req *http.Request) (*resendCall, bool) {
	ctx := req.Context()
	if p, ok := attempt.Parent(ctx); ok {
		ctx = p
	}
	c, ok := ctx.(*resendCall)
	if !ok || !c.linked || !c.claimed.CompareAndSwap(false, true) {
		return nil, false
	}
	return c, true
}
