package clock_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/outbound-go/outbound/internal/clock"
)

func TestRealSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := clock.OrReal(nil)
		start := c.Now()
		assert.NoError(t, c.Sleep(context.Background(), time.Minute))
		assert.Equal(t, time.Minute, time.Since(start))

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		assert.ErrorIs(t, c.Sleep(ctx, time.Hour), context.DeadlineExceeded)
		assert.ErrorIs(t, c.Sleep(ctx, 0), context.DeadlineExceeded, "a done ctx wins over a zero wait")
		assert.NoError(t, c.Sleep(context.Background(), -time.Second))
	})
}

func TestIsReal(t *testing.T) {
	assert.True(t, clock.IsReal(nil))
	assert.True(t, clock.IsReal(clock.Real{}))
	assert.False(t, clock.IsReal(fake{}))
}

type fake struct{ clock.Real }

func TestContext(t *testing.T) {
	ctx := context.Background()
	assert.Equal(t, clock.Real{}, clock.FromContext(ctx))
	assert.Equal(t, fake{}, clock.FromContext(clock.NewContext(ctx, fake{})))
	assert.Equal(t, clock.Real{}, clock.FromContext(clock.NewContext(ctx, nil)))
}
