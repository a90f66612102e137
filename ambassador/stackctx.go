package ambassador

import (
	"context"
	"io"

	"github.com/outbound-go/outbound/internal/attempt"
)

// stackCall is the state a Stack keeps for one request in one allocation:
// the request's context, bounded by the service timeout (a lazyCtx: see its
// invariants), the response body wrapper that releases it (release is
// idempotent: the body may reach EOF and be closed), and the retry layer's
// call state.
type stackCall struct {
	lazyCtx

	body stackBody

	// call is the retry layer's state for this request (when retry is the
	// stack's outermost layer), in the same allocation.
	call attempt.HTTPCall
}

var _ context.Context = (*stackCall)(nil)

func (c *stackCall) String() string { return "ambassador.Stack request context" }

// stackBody releases the request's context once the body is read to its
// end or closed.
type stackBody struct {
	rc io.ReadCloser
	c  *stackCall
}

func (b *stackBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.c.release()
	}
	return n, err
}

func (b *stackBody) Close() error {
	err := b.rc.Close()
	b.c.release()
	return err
}
