package ambassador

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbound-go/outbound/internal/attempt"
)

// stackCall is the state a Stack keeps for one request in one allocation:
// the request's context, bounded by the service timeout, the response body
// wrapper that releases it, and the retry layer's call state.
//
// The context is lazy: no timer and no cancellation machinery exist until
// something asks for Done (a real transport does; a layer that only reads
// values or the deadline does not). Until then Err compares the clock with
// the deadline. Once armed it delegates to a context.WithDeadline child of
// the parent, so cancellation, context.Cause and child contexts behave as
// the standard library's do.
type stackCall struct {
	parent   context.Context
	deadline time.Time

	mu       sync.Mutex
	canceled bool // cancel ran before arming
	// armedCtx and armedCancel are set once, under mu, before isArmed is
	// stored: a reader that loads isArmed true sees them (no allocation of
	// their own, unlike a pointer to a holder).
	isArmed     atomic.Bool
	armedCtx    context.Context
	armedCancel context.CancelFunc

	body     stackBody
	bodyOnce sync.Once

	// call is the retry layer's state for this request (when retry is the
	// stack's outermost layer), in the same allocation.
	call attempt.HTTPCall
}

var _ context.Context = (*stackCall)(nil)

func (c *stackCall) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *stackCall) Value(key any) any {
	if c.isArmed.Load() {
		return c.armedCtx.Value(key)
	}
	return c.parent.Value(key)
}

func (c *stackCall) Done() <-chan struct{} { return c.arm().Done() }

func (c *stackCall) Err() error {
	if c.isArmed.Load() {
		return c.armedCtx.Err()
	}
	// Not armed: has it ended? Arm then, so that Err, Done and Cause agree
	// from now on.
	if c.parent.Err() != nil || !time.Now().Before(c.deadline) {
		return c.arm().Err()
	}
	c.mu.Lock()
	canceled := c.canceled
	c.mu.Unlock()
	if canceled {
		return c.arm().Err()
	}
	return nil
}

// arm creates the real context on first need.
func (c *stackCall) arm() context.Context {
	if c.isArmed.Load() {
		return c.armedCtx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isArmed.Load() {
		return c.armedCtx
	}
	if c.canceled {
		c.armedCtx, c.armedCancel = context.WithCancel(c.parent)
		c.armedCancel()
	} else {
		c.armedCtx, c.armedCancel = context.WithDeadline(c.parent, c.deadline)
	}
	c.isArmed.Store(true)
	return c.armedCtx
}

// cancel releases the context: a timer and a parent registration exist
// only if it was armed.
func (c *stackCall) cancel() {
	c.mu.Lock()
	var cancel context.CancelFunc
	if c.isArmed.Load() {
		cancel = c.armedCancel
	} else {
		c.canceled = true
	}
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

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
		b.c.bodyOnce.Do(b.c.cancel)
	}
	return n, err
}

func (b *stackBody) Close() error {
	err := b.rc.Close()
	b.c.bodyOnce.Do(b.c.cancel)
	return err
}
