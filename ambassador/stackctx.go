package ambassador

import (
	"context"

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
	// stack's outermost layer), in the same allocation.
	call attempt.HTTPCall
}

var _ context.Context = (*stackCall)(nil)

func (c *stackCall) String() string { return "ambassador.Stack request context" }
