package retry_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/retry"
)

func TestConfigDecodesDesignKeys(t *testing.T) {
	src := `
max_attempts: 4
per_try_timeout: 2s
base_delay: 10ms
max_delay: 1s
retry_on: [connect-failure, 5xx, retriable-status-codes]
retriable_status_codes: [429]
retriable_grpc_codes: [UNAVAILABLE, resource_exhausted]
retry_non_idempotent: true
max_retry_after: 5s
max_body_buffer: 64KiB
budget: {ratio: 0.5, min_per_second: 3, ttl: 30s, disabled: false}
hedge: {delay: 50ms, max_extra: 2}
`
	var c retry.Config
	require.NoError(t, yaml.Unmarshal([]byte(src), &c))
	assert.Equal(t, retry.Config{
		MaxAttempts:          4,
		PerTryTimeout:        2 * time.Second,
		BaseDelay:            10 * time.Millisecond,
		MaxDelay:             time.Second,
		RetryOn:              []string{"connect-failure", "5xx", "retriable-status-codes"},
		RetriableStatusCodes: []int{429},
		RetriableGRPCCodes:   []string{"UNAVAILABLE", "resource_exhausted"},
		RetryNonIdempotent:   true,
		MaxRetryAfter:        5 * time.Second,
		MaxBodyBuffer:        64 << 10,
		Budget:               retry.BudgetConfig{Ratio: 0.5, MinPerSecond: 3, TTL: 30 * time.Second},
		Hedge:                retry.HedgeConfig{Delay: 50 * time.Millisecond, MaxExtra: 2},
	}, c)
	assert.NoError(t, c.Validate())
}

func TestZeroConfigIsValid(t *testing.T) {
	assert.NoError(t, retry.Config{}.Validate())
	var c retry.Config
	require.NoError(t, yaml.Unmarshal([]byte("{}"), &c))
	assert.NoError(t, c.Validate())
}

func TestValidateNamesEveryBadField(t *testing.T) {
	c := retry.Config{
		MaxAttempts:          -1,
		PerTryTimeout:        -time.Second,
		BaseDelay:            time.Second,
		MaxDelay:             time.Millisecond,
		RetryOn:              []string{"reset", "sometimes"},
		RetriableStatusCodes: []int{99},
		RetriableGRPCCodes:   []string{"OK", "NOPE"},
		MaxRetryAfter:        -1,
		MaxBodyBuffer:        -5,
		Budget:               retry.BudgetConfig{Ratio: 1.5, MinPerSecond: -1, TTL: -time.Second},
		Hedge:                retry.HedgeConfig{Delay: -time.Millisecond, MaxExtra: -1},
	}
	err := c.Validate()
	require.Error(t, err)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *retry.FieldError
		require.True(t, errors.As(e, &fe), "%v is a *FieldError", e)
		fields = append(fields, fe.Field)
	}
	assert.Equal(t, []string{
		"max_attempts", "per_try_timeout", "base_delay", "retry_on[1]",
		"retriable_status_codes[0]", "retriable_grpc_codes[0]", "retriable_grpc_codes[1]",
		"max_retry_after", "max_body_buffer", "budget.ratio", "budget.min_per_second",
		"budget.ttl", "hedge.delay", "hedge.max_extra",
	}, fields)
	assert.Contains(t, err.Error(), `retry_on[1]: unknown condition "sometimes"`)
	assert.Contains(t, err.Error(), "max_attempts: must be ≥ 1, got -1")
}

func TestConfigYAMLTypeErrors(t *testing.T) {
	var c retry.Config
	err := yaml.Unmarshal([]byte("max_body_buffer: lots\n"), &c)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "lots"), err.Error())
}

// FuzzConfig decodes arbitrary YAML into a Config and validates it: neither
// may panic, and a config that validates must build a Policy.
func FuzzConfig(f *testing.F) {
	f.Add([]byte("max_attempts: 3\nretry_on: [reset]\n"))
	f.Add([]byte("budget: {ratio: 0.2, min_per_second: 10, ttl: 10s}\nhedge: {delay: 5ms}\n"))
	f.Add([]byte("max_body_buffer: 1MiB\nretriable_grpc_codes: [unavailable]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c retry.Config
		if err := yaml.Unmarshal(data, &c); err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			return
		}
		if _, err := retry.New(c); err != nil {
			t.Fatalf("valid config %+v rejected by New: %v", c, err)
		}
	})
}
