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
