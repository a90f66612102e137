package retry_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/retry"
)

// A policy on the real clock works inside a testing/synctest bubble, where
// a user tests code that retries: the bubble's clock starts in 2000, before
// the package's monotonic origin, and the budget's slot index went negative
// (index out of range, a panic in the first RoundTrip). The budget still
// counts: with min_per_second 1 over 1s and ratio 0, one retry fits, the
// next is refused.
func TestPolicyInsideSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := retry.New(retry.Config{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond,
			Budget: retry.BudgetConfig{Ratio: 0.0001, MinPerSecond: 1, TTL: time.Second}})
		require.NoError(t, err)
		var hits atomic.Int32
		c := &http.Client{Transport: p.RoundTripper(rtFunc(func(r *http.Request) (*http.Response, error) {
			hits.Add(1)
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
		}))}
		for range 2 {
			resp, err := c.Get("http://users/")
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		}
		assert.EqualValues(t, 3, hits.Load(), "two requests and the one retry the budget allows")
	})
}
