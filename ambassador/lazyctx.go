package ambassador

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbound-go/outbound/internal/classify"
)

// lazyCtx is a child context of parent whose cancellation machinery is
// made on first need. It is embedded by value in the per-request state of
// the Stack (stackCall, with the service deadline) and of the re-send
// guard (resendCall, without one), so the context costs no allocation of
// its own.
//
// Invariants:
//   - Until something asks for Done (a real transport does; a layer that
//     only reads values or the deadline does not), no timer, no parent
//     registration and no goroutine exist. Err meanwhile compares the clock
//     with the deadline and asks the parent; a context found ended is
//     armed, so that Err, Done and context.Cause agree from then on.
//   - Once armed it delegates to a context.WithDeadline child of parent
//     (deadline set) or a context.WithCancelCause child (deadline zero), so
//     cancellation, context.Cause and child contexts behave as the
//     standard library's do.
//   - release must be called once the request and its response body are
//     done; after it the context is ended (armed later, it is born
//     cancelled, registering nothing with the parent). It is idempotent.
//   - A lazyCtx may be linked to a child in the same allocation (the
//     Stack's to its re-send guard's: see stackCall.link): the child's
//     parent is then the outer context itself, the outer's release
//     releases the child too, and a child armed while the outer is not
//     builds one context.WithDeadline for both (a child of the outer's
//     parent with the outer's deadline) instead of a cancellation of its
//     own under one of the outer's: the outer ends only by its parent, its
//     deadline or its release, and the child ends with it on each (its
//     release, through the link).
type lazyCtx struct {
	parent context.Context
	// deadline, when not zero, ends the context; zero means the context
	// has no deadline of its own and Deadline is the parent's.
	deadline time.Time
	// outer, set on a linked child, is the context it is the child of
	// (parent is outer's context); inner, set on the outer, is the child
	// its release releases too. Both are set before the contexts are
	// used, and never change.
	outer, inner *lazyCtx

	mu sync.Mutex
	// released is stored under mu: arm, holding mu, sees it.
	released atomic.Bool
	// armedCtx and one of the two cancel functions are set once, under
	// mu, before isArmed is stored: a reader that loads isArmed true sees
	// them (fields, not a pointer to a holder, so arming allocates only
	// what the standard library does).
	isArmed      atomic.Bool
	armedCtx     context.Context
	cancelTimer  context.CancelFunc      // armed with a deadline
	cancelCaused context.CancelCauseFunc // armed without one
}

var _ context.Context = (*lazyCtx)(nil)

func (c *lazyCtx) Deadline() (time.Time, bool) {
	if c.deadline.IsZero() {
		return c.parent.Deadline()
	}
	return c.deadline, true
}

func (c *lazyCtx) Value(key any) any {
	if _, ok := key.(classify.OwnDeadlineKey); ok {
		// The service deadline is the Stack's own (it is set only when it
		// comes before the caller's: see Stack.RoundTrip), so a request
		// it cuts is the endpoint's failure (classify.OwnDeadlinePassed).
		// A linked child has the outer's; an armed one's context is a
		// child of the outer's parent, which does not know it.
		switch {
		case !c.deadline.IsZero():
			return c.deadline
		case c.outer != nil:
			return c.outer.Value(key)
		}
	}
	if c.isArmed.Load() {
		return c.armedCtx.Value(key)
	}
	return c.parent.Value(key)
}

func (c *lazyCtx) Done() <-chan struct{} { return c.arm().Done() }

func (c *lazyCtx) Err() error {
	if c.isArmed.Load() {
		return c.armedCtx.Err()
	}
	// Not armed: has it ended? Arm then, so that Err, Done and Cause agree
	// from now on.
	if c.parent.Err() != nil || c.released.Load() ||
		(!c.deadline.IsZero() && !time.Now().Before(c.deadline)) {
		return c.arm().Err()
	}
	return nil
}

// arm creates the real context on first need.
func (c *lazyCtx) arm() context.Context {
	if c.isArmed.Load() {
		return c.armedCtx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isArmed.Load() {
		return c.armedCtx
	}
	switch {
	case c.released.Load():
		c.armedCtx, c.cancelCaused = context.WithCancelCause(c.parent)
		c.cancelCaused(nil)
	case c.outer != nil && !c.outer.isArmed.Load():
		// One cancellation for both (see the invariants). An outer
		// released meanwhile releases c after, which cancels this.
		o := c.outer
		c.armedCtx, c.cancelTimer = context.WithDeadline(o.parent, o.deadline)
	case c.deadline.IsZero():
		c.armedCtx, c.cancelCaused = context.WithCancelCause(c.parent)
	default:
		c.armedCtx, c.cancelTimer = context.WithDeadline(c.parent, c.deadline)
	}
	c.isArmed.Store(true)
	return c.armedCtx
}

// cancel arms the context and ends it with cause (context.Canceled when
// nil). A context with a deadline, or a linked child armed with its
// outer's, has no cause of its own to give: there cause is ignored and
// the cause is context.Canceled.
func (c *lazyCtx) cancel(cause error) {
	c.arm()
	if c.cancelCaused != nil {
		c.cancelCaused(cause)
		return
	}
	c.cancelTimer()
}

// release ends the context once the request is done: a timer and a parent
// registration exist only if it was armed.
func (c *lazyCtx) release() {
	if c.released.Load() {
		return // released before (and its inner with it): nothing is left to end
	}
	c.mu.Lock()
	c.released.Store(true)
	armed := c.isArmed.Load()
	c.mu.Unlock()
	if armed {
		c.cancel(nil)
	}
	if c.inner != nil {
		c.inner.release()
	}
}

// releaseBody is a response body that releases its request's lazyCtx once
// it is read to its end or closed (whichever comes first; release is
// idempotent). It lives in the same allocation as the context it releases.
type releaseBody struct {
	rc io.ReadCloser
	c  *lazyCtx
}

func (b *releaseBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.c.release()
	}
	return n, err
}

func (b *releaseBody) Close() error {
	err := b.rc.Close()
	b.c.release()
	return err
}

// holdFor keeps c until resp's body is read to its end or closed, through
// body (a releaseBody in the caller's allocation), and returns resp. A
// response with nothing to read, or an upgraded connection (which no
// longer depends on the request's context: net/http releases its own, and
// the caller owns it from here on), releases c at once.
func (c *lazyCtx) holdFor(resp *http.Response, body *releaseBody) *http.Response {
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil || resp.Body == http.NoBody {
		c.release()
		return resp
	}
	*body = releaseBody{rc: resp.Body, c: c}
	resp.Body = body
	return resp
}
