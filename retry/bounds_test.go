package retry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/retry"
)

// TestValidateBounds: values at a bound pass; one step past it is refused
// with the field named (a huge max_attempts with a tiny base_delay made one
// request thousands of attempts).
func TestValidateBounds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     retry.Config
		field string // "" = valid
	}{
		{"max_attempts 10", retry.Config{MaxAttempts: 10}, ""},
		{"max_attempts 11", retry.Config{MaxAttempts: 11}, "max_attempts"},
		{"max_attempts MaxInt32", retry.Config{MaxAttempts: 2147483647, BaseDelay: 1}, "max_attempts"},
		{"hedge.max_extra 10", retry.Config{Hedge: retry.HedgeConfig{Delay: time.Millisecond, MaxExtra: 10}}, ""},
		{"hedge.max_extra 11", retry.Config{Hedge: retry.HedgeConfig{MaxExtra: 11}}, "hedge.max_extra"},
		{"per_try_timeout 1h", retry.Config{PerTryTimeout: time.Hour}, ""},
		{"per_try_timeout 1h1ns", retry.Config{PerTryTimeout: time.Hour + 1}, "per_try_timeout"},
		{"max_delay huge", retry.Config{MaxDelay: 1 << 62}, "max_delay"},
		{"base_delay huge", retry.Config{BaseDelay: 1 << 62, MaxDelay: 1 << 62}, "base_delay"},
		{"max_retry_after 1000h", retry.Config{MaxRetryAfter: 1000 * time.Hour}, "max_retry_after"},
		{"hedge.delay 2h", retry.Config{Hedge: retry.HedgeConfig{Delay: 2 * time.Hour}}, "hedge.delay"},
		{"max_body_buffer 256MiB", retry.Config{MaxBodyBuffer: 256 << 20}, ""},
		{"max_body_buffer 256MiB+1", retry.Config{MaxBodyBuffer: 256<<20 + 1}, "max_body_buffer"},
		{"budget.ttl 10ms", retry.Config{Budget: retry.BudgetConfig{TTL: 10 * time.Millisecond}}, ""},
		{"budget.ttl 1ns", retry.Config{Budget: retry.BudgetConfig{TTL: 1}}, "budget.ttl"},
		{"budget.ttl 2h", retry.Config{Budget: retry.BudgetConfig{TTL: 2 * time.Hour}}, "budget.ttl"},
		{"budget.min_per_second 1e6", retry.Config{Budget: retry.BudgetConfig{MinPerSecond: 1e6}}, ""},
		{"budget.min_per_second 1e300", retry.Config{Budget: retry.BudgetConfig{MinPerSecond: 1e300}}, "budget.min_per_second"},
		{"budget.ratio 1", retry.Config{Budget: retry.BudgetConfig{Ratio: 1}}, ""},
		{"budget.ratio 1.01", retry.Config{Budget: retry.BudgetConfig{Ratio: 1.01}}, "budget.ratio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				p, err := retry.New(tc.c)
				require.NoError(t, err)
				require.NotNil(t, p)
				return
			}
			require.Error(t, err)
			var fe *retry.FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, tc.field, fe.Field)
			_, err = retry.New(tc.c)
			assert.Error(t, err, "New refuses what Validate refuses")
		})
	}
}
