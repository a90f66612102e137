package breaker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/breaker"
)

// TestDoCountsOutcomes: failures of f open the key's breaker, after which
// Do refuses without calling f; the caller's cancellation is not counted;
// other keys are unaffected.
func TestDoCountsOutcomes(t *testing.T) {
	b, err := breaker.New(breaker.Config{ConsecutiveFailures: 2})
	require.NoError(t, err)
	defer b.Close()
	refused := errors.New("connection refused")

	require.ErrorIs(t, b.Do("a:1", func() error { return refused }), refused)
	require.ErrorIs(t, b.Do("a:1", func() error { return context.Canceled }), context.Canceled)
	assert.Equal(t, breaker.StateClosed, b.State("a:1"), "one failure and a cancellation do not trip 2 consecutive failures")
	require.ErrorIs(t, b.Do("a:1", func() error { return refused }), refused)
	assert.Equal(t, breaker.StateOpen, b.State("a:1"))
	assert.False(t, b.Ready("a:1"))

	called := false
	err = b.Do("a:1", func() error { called = true; return nil })
	assert.False(t, called, "an open breaker does not call f")
	assert.ErrorIs(t, err, breaker.ErrOpen)
	var oe *breaker.OpenError
	assert.ErrorAs(t, err, &oe)

	require.NoError(t, b.Do("b:2", func() error { return nil }))
	assert.Equal(t, breaker.StateClosed, b.State("b:2"))
}
