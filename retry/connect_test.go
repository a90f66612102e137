package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/retry"
)

// TestConnectsPacesAttempts: Connects allows max_attempts attempts, with
// the policy's backoff (from base_delay, jittered, capped at max_delay)
// slept on the policy's clock before each retry, and none before the first.
func TestConnectsPacesAttempts(t *testing.T) {
	clk := newFakeClock()
	p, err := retry.New(retry.Config{MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: 15 * time.Millisecond}, retry.WithClock(clk))
	require.NoError(t, err)
	c := p.Connects(context.Background())
	n := 0
	for {
		ok, err := c.Next()
		require.NoError(t, err)
		if !ok {
			break
		}
		n++
		require.Less(t, n, 10)
	}
	assert.Equal(t, 4, n)
	assert.Equal(t, 4, c.Attempts())
	sleeps := clk.Sleeps()
	require.Len(t, sleeps, 3, "no wait before the first attempt")
	for _, d := range sleeps {
		assert.GreaterOrEqual(t, d, 5*time.Millisecond, "base_delay with ±50%% jitter")
		assert.LessOrEqual(t, d, 15*time.Millisecond, "capped at max_delay")
	}
}

// TestConnectsStopsWithContext: a cancelled context ends the schedule with
// an error errors.Is finds.
func TestConnectsStopsWithContext(t *testing.T) {
	p, err := retry.New(retry.Config{MaxAttempts: 3}, retry.WithClock(newFakeClock()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	c := p.Connects(ctx)
	ok, err := c.Next()
	require.True(t, ok)
	require.NoError(t, err)
	cancel()
	ok, err = c.Next()
	assert.False(t, ok)
	assert.ErrorIs(t, err, context.Canceled)
}
