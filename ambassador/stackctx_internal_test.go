package ambassador

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type ctxKeyT struct{}

// The Stack's lazy request context behaves like context.WithDeadline: it
// ends at its deadline whether or not anyone asked for Done first, with its
// parent, and when cancelled; Err, Done and Cause agree.
func TestStackCallContext(t *testing.T) {
	parentWith := func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKeyT{}, "v"))
		return ctx, cancel
	}

	t.Run("values and deadline pass through unarmed", func(t *testing.T) {
		p, cancel := parentWith()
		defer cancel()
		dl := time.Now().Add(time.Hour)
		c := &lazyCtx{parent: p, deadline: dl}
		assert.Equal(t, "v", c.Value(ctxKeyT{}))
		got, ok := c.Deadline()
		assert.True(t, ok)
		assert.Equal(t, dl, got)
		assert.NoError(t, c.Err())
		assert.False(t, c.isArmed.Load(), "reading values and Err arms nothing")
		c.release()
		assert.ErrorIs(t, c.Err(), context.Canceled)
		assert.ErrorIs(t, context.Cause(c), context.Canceled)
		<-c.Done()
	})

	t.Run("past deadline without Done", func(t *testing.T) {
		p, cancel := parentWith()
		defer cancel()
		c := &lazyCtx{parent: p, deadline: time.Now().Add(-time.Millisecond)}
		assert.ErrorIs(t, c.Err(), context.DeadlineExceeded)
		assert.ErrorIs(t, context.Cause(c), context.DeadlineExceeded)
		<-c.Done()
		c.release()
		assert.ErrorIs(t, c.Err(), context.DeadlineExceeded, "a later cancel changes nothing")
	})

	t.Run("armed deadline fires", func(t *testing.T) {
		p, cancel := parentWith()
		defer cancel()
		c := &lazyCtx{parent: p, deadline: time.Now().Add(5 * time.Millisecond)}
		child, ccancel := context.WithCancel(c)
		defer ccancel()
		<-child.Done()
		assert.ErrorIs(t, c.Err(), context.DeadlineExceeded)
		assert.ErrorIs(t, child.Err(), context.DeadlineExceeded, "the child inherits the deadline error")
		c.release()
	})

	t.Run("parent cancelled", func(t *testing.T) {
		p, cancel := parentWith()
		c := &lazyCtx{parent: p, deadline: time.Now().Add(time.Hour)}
		done := c.Done()
		cancel()
		<-done
		assert.ErrorIs(t, c.Err(), context.Canceled)
		c.release()

		p2, cancel2 := parentWith()
		c2 := &lazyCtx{parent: p2, deadline: time.Now().Add(time.Hour)}
		cancel2()
		assert.ErrorIs(t, c2.Err(), context.Canceled, "unarmed: Err still sees the parent")
		c2.release()
	})

	t.Run("cancel is idempotent and releases an armed context", func(t *testing.T) {
		p, cancel := parentWith()
		defer cancel()
		c := &lazyCtx{parent: p, deadline: time.Now().Add(time.Hour)}
		done := c.Done()
		c.release()
		c.release()
		<-done
		require.Error(t, c.Err())
		assert.True(t, errors.Is(c.Err(), context.Canceled))
	})
}

// Without a deadline of its own (the re-send guard's use) the lazy context
// takes the parent's deadline, ends with the cause it is cancelled with,
// and once released is born cancelled when armed late.
func TestLazyCtxWithoutDeadline(t *testing.T) {
	dl := time.Now().Add(time.Hour)
	p, cancel := context.WithDeadline(context.Background(), dl)
	defer cancel()

	c := &lazyCtx{parent: p}
	got, ok := c.Deadline()
	assert.True(t, ok)
	assert.Equal(t, dl, got, "the parent's deadline")
	assert.NoError(t, c.Err())
	assert.False(t, c.isArmed.Load())
	cause := errors.New("stop")
	c.cancel(cause)
	<-c.Done()
	assert.ErrorIs(t, c.Err(), context.Canceled)
	assert.ErrorIs(t, context.Cause(c), cause)
	c.release()
	assert.ErrorIs(t, context.Cause(c), cause, "release keeps the first cause")

	late := &lazyCtx{parent: p}
	late.release()
	assert.False(t, late.isArmed.Load(), "release arms nothing")
	assert.ErrorIs(t, late.Err(), context.Canceled, "released: ended")
	<-late.Done()
	assert.ErrorIs(t, p.Err(), nil, "the parent is untouched")
}

// A linked pair (the Stack's context and its re-send guard's, see
// stackCall.link): the guard's context, armed while the Stack's is not,
// takes the Stack's deadline, ends with the caller's context and with the
// Stack's release, answers the caller's values, and arms nothing of the
// Stack's own.
func TestLinkedGuardContext(t *testing.T) {
	newCall := func(p context.Context, dl time.Time) (*stackCall, context.Context) {
		c := &stackCall{lazyCtx: lazyCtx{parent: p, deadline: dl}}
		return c, c.link()
	}

	t.Run("deadline, values, one cancellation", func(t *testing.T) {
		p, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKeyT{}, "v"))
		defer cancel()
		dl := time.Now().Add(20 * time.Millisecond)
		c, g := newCall(p, dl)
		got, ok := g.Deadline()
		assert.True(t, ok)
		assert.Equal(t, dl, got, "the Stack's deadline")
		assert.Equal(t, "v", g.Value(ctxKeyT{}))
		<-g.Done()
		assert.ErrorIs(t, g.Err(), context.DeadlineExceeded)
		assert.ErrorIs(t, context.Cause(g), context.DeadlineExceeded)
		assert.False(t, c.isArmed.Load(), "the Stack's context built nothing")
		assert.ErrorIs(t, c.Err(), context.DeadlineExceeded, "the Stack's context ends at its deadline too")
		c.release()
	})

	t.Run("caller cancelled", func(t *testing.T) {
		p, cancel := context.WithCancel(context.Background())
		c, g := newCall(p, time.Now().Add(time.Hour))
		done := g.Done()
		cancel()
		<-done
		assert.ErrorIs(t, g.Err(), context.Canceled)
		assert.ErrorIs(t, c.Err(), context.Canceled)
		c.release()
	})

	t.Run("the Stack's release ends it", func(t *testing.T) {
		p, cancel := context.WithCancel(context.Background())
		defer cancel()
		c, g := newCall(p, time.Now().Add(time.Hour))
		done := g.Done()
		child, ccancel := context.WithCancel(g)
		defer ccancel()
		c.release()
		for _, ch := range []<-chan struct{}{done, child.Done()} {
			select {
			case <-ch:
			default:
				t.Fatal("the Stack's release did not end the guard's context and its child")
			}
		}
		assert.ErrorIs(t, g.Err(), context.Canceled)
		assert.NoError(t, p.Err(), "the caller's context is untouched")

		c2, g2 := newCall(p, time.Now().Add(time.Hour))
		c2.release()
		assert.ErrorIs(t, g2.Err(), context.Canceled, "released unarmed: born ended")
		<-g2.Done()
	})

	t.Run("its cancel leaves the Stack's context alone", func(t *testing.T) {
		p, cancel := context.WithCancel(context.Background())
		defer cancel()
		c, _ := newCall(p, time.Now().Add(time.Hour))
		done := c.guard.Done()
		c.guard.cancel(errStopResends)
		<-done
		assert.ErrorIs(t, c.guard.Err(), context.Canceled)
		assert.NoError(t, c.Err(), "the Stack's context goes on")
		c.release()
	})

	t.Run("armed after the Stack's: a child of it", func(t *testing.T) {
		p, cancel := context.WithCancel(context.Background())
		defer cancel()
		c, g := newCall(p, time.Now().Add(time.Hour))
		outerDone := c.Done()
		gDone := g.Done()
		c.lazyCtx.cancel(nil)
		<-outerDone
		<-gDone
		assert.ErrorIs(t, g.Err(), context.Canceled)
		c.release()
	})
}
