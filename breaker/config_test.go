package breaker_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/breaker"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		c    breaker.Config
		want []string // one message per problem, in order
	}{
		{"zero is valid", breaker.Config{}, nil},
		{"full", breaker.Config{ConsecutiveFailures: 3, FailureRatio: 1, MinRequests: 1, Interval: time.Second, OpenTimeout: time.Second, HalfOpenRequests: 4, MaxKeys: 1}, nil},
		{"negative counts", breaker.Config{ConsecutiveFailures: -1, MinRequests: -2, HalfOpenRequests: -3, MaxKeys: -4}, []string{
			"consecutive_failures: must be between 0 (= 5) and 1000000, got -1",
			"min_requests: must be between 0 (= 20) and 1000000, got -2",
			"half_open_requests: must be between 0 (= 1) and 1000, got -3",
			"max_keys: must be ≥ 0 (0 = 10000), got -4",
		}},
		{"ratio above 1", breaker.Config{FailureRatio: 1.5}, []string{"failure_ratio: must be between 0 (off) and 1, got 1.5"}},
		{"ratio negative", breaker.Config{FailureRatio: -0.1}, []string{"failure_ratio: must be between 0 (off) and 1, got -0.1"}},
		{"ratio NaN", breaker.Config{FailureRatio: math.NaN()}, []string{"failure_ratio: must be between 0 (off) and 1, got NaN"}},
		{"negative durations", breaker.Config{Interval: -time.Second, OpenTimeout: -time.Millisecond}, []string{
			"interval: must be ≥ 0 (0 = 10s), got -1s",
			"open_timeout: must be ≥ 0 (0 = 30s), got -1ms",
		}},
		{"too large", breaker.Config{HalfOpenRequests: math.MaxUint32 + 1}, []string{
			"half_open_requests: must be between 0 (= 1) and 1000, got 4294967296",
		}},
		{"at the bounds", breaker.Config{ConsecutiveFailures: 1e6, MinRequests: 1e6, HalfOpenRequests: 1000,
			Interval: 24 * time.Hour, OpenTimeout: 24 * time.Hour, MaxKeys: 1e7}, nil},
		{"past the bounds", breaker.Config{ConsecutiveFailures: 1e6 + 1, MinRequests: 1e6 + 1, HalfOpenRequests: 1001,
			Interval: 24*time.Hour + 1, OpenTimeout: 1000 * time.Hour, MaxKeys: 1e7 + 1}, []string{
			"consecutive_failures: must be between 0 (= 5) and 1000000, got 1000001",
			"min_requests: must be between 0 (= 20) and 1000000, got 1000001",
			"interval: must be ≤ 24h0m0s, got 24h0m0.000000001s",
			"open_timeout: must be ≤ 24h0m0s, got 1000h0m0s",
			"half_open_requests: must be between 0 (= 1) and 1000, got 1001",
			"max_keys: must be ≤ 10000000, got 10000001",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			_, newErr := breaker.New(tt.c)
			if tt.want == nil {
				assert.NoError(t, err)
				assert.NoError(t, newErr)
				return
			}
			require.Error(t, err)
			assert.Equal(t, err.Error(), newErr.Error(), "New reports what Validate finds")
			joined, ok := err.(interface{ Unwrap() []error })
			require.True(t, ok, "problems are joined")
			var got []string
			for _, e := range joined.Unwrap() {
				var fe *breaker.FieldError
				require.True(t, errors.As(e, &fe))
				got = append(got, fe.Error())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestConfigYAML(t *testing.T) {
	var c breaker.Config
	require.NoError(t, yaml.Unmarshal([]byte(`
consecutive_failures: 7
failure_ratio: 0.25
min_requests: 40
interval: 5s
open_timeout: 250ms
half_open_requests: 2
max_keys: 500
`), &c))
	assert.Equal(t, breaker.Config{ConsecutiveFailures: 7, FailureRatio: 0.25, MinRequests: 40, Interval: 5 * time.Second,
		OpenTimeout: 250 * time.Millisecond, HalfOpenRequests: 2, MaxKeys: 500}, c)
	require.NoError(t, c.Validate())
}

func TestNilOptionIsIgnored(t *testing.T) {
	b, err := breaker.New(breaker.Config{}, nil)
	require.NoError(t, err)
	assert.True(t, b.Ready("anything:80"))
	assert.Equal(t, []breaker.KeyState{}, b.Snapshot())
}

func FuzzConfig(f *testing.F) {
	f.Add([]byte("consecutive_failures: 3\nopen_timeout: 1s\n"))
	f.Add([]byte("failure_ratio: 1.5\nmin_requests: -1\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c breaker.Config
		if yaml.Unmarshal(data, &c) != nil {
			return
		}
		verr := c.Validate()
		b, err := breaker.New(c)
		if (verr == nil) != (err == nil) {
			t.Fatalf("Validate said %v, New said %v", verr, err)
		}
		if err != nil {
			return
		}
		// A valid config gives a working breaker.
		if !b.Ready("x:1") || b.State("x:1") != breaker.StateClosed {
			t.Fatalf("fresh breaker not ready for %+v", c)
		}
	})
}
