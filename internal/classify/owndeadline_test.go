package classify_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/outbound-go/outbound/internal/classify"
)

// A deadline of this module's own counts as passed only once it has
// passed, and only when it came before the caller's: a caller whose own
// deadline is tighter, or who cancels, ended the request themselves.
func TestOwnDeadlinePassed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		caller time.Duration // the caller's own timeout; 0: none
		cancel bool          // the caller cancels at once
		own    func(context.Context, time.Duration) (context.Context, context.CancelFunc)
		want   bool
	}{
		{"service timeout, no caller deadline", 0, false, classify.WithOwnTimeout, true},
		{"service timeout before the caller's", time.Hour, false, classify.WithOwnTimeout, true},
		{"caller's deadline first", 50 * time.Millisecond, false, classify.WithOwnTimeout, false},
		{"caller cancels", 0, true, classify.WithOwnTimeout, false},
		{"per-try timeout", time.Hour, false, classify.WithPerTryTimeout, true},
		{"caller's deadline before the per-try", 50 * time.Millisecond, false, classify.WithPerTryTimeout, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				parent, cancelParent := context.WithCancel(context.Background())
				defer cancelParent()
				if tc.caller > 0 {
					var c context.CancelFunc
					parent, c = context.WithTimeout(parent, tc.caller)
					defer c()
				}
				ctx, cancel := tc.own(parent, 100*time.Millisecond)
				defer cancel()
				assert.False(t, classify.OwnDeadlinePassed(ctx), "before any deadline")
				if tc.cancel {
					cancelParent()
				} else {
					<-ctx.Done()
				}
				assert.Equal(t, tc.want, classify.OwnDeadlinePassed(ctx))
			})
		})
	}
}
