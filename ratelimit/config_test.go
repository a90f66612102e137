package ratelimit_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/ratelimit"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ratelimit.Config
		want []string // one message per bad field, in field order
	}{
		{"minimal", ratelimit.Config{RPS: 100}, nil},
		{"everything set", ratelimit.Config{RPS: 0.5, Burst: 3, MaxWait: 1, Scope: "global", IgnoreRetryAfter: true, MaxKeys: 5}, nil},
		{"host scope", ratelimit.Config{RPS: 1, Scope: "host"}, nil},
		{"rps missing", ratelimit.Config{}, []string{"rps: required, must be > 0"}},
		{"rps negative", ratelimit.Config{RPS: -2}, []string{"rps: required, must be > 0, got -2"}},
		{"rps NaN", ratelimit.Config{RPS: math.NaN()}, []string{"rps: must be a finite number > 0, got NaN"}},
		{"rps +Inf", ratelimit.Config{RPS: math.Inf(1)}, []string{"rps: must be a finite number > 0, got +Inf"}},
		{"rps too large", ratelimit.Config{RPS: 1e12}, []string{"rps: must be ≤ 1e+09, got 1e+12"}},
		{"rps at MinRPS", ratelimit.Config{RPS: 0.001}, nil},
		{"rps 0.0009", ratelimit.Config{RPS: 0.0009}, []string{"rps: must be ≥ 0.001 (one request every 1000s), got 0.0009"}},
		{"rps 1e-300", ratelimit.Config{RPS: 1e-300}, []string{"rps: must be ≥ 0.001 (one request every 1000s), got 1e-300"}},
		{"burst negative", ratelimit.Config{RPS: 1, Burst: -1}, []string{"burst: must be ≥ 0 (0 = ceil(rps)), got -1"}},
		{"burst at MaxBurst", ratelimit.Config{RPS: 1, Burst: 1e9}, nil},
		{"burst too large", ratelimit.Config{RPS: 1, Burst: 1e9 + 1}, []string{"burst: must be ≤ 1000000000, got 1000000001"}},
		{"max_wait too long", ratelimit.Config{RPS: 1, MaxWait: 3601e9}, []string{"max_wait: must be ≤ 1h0m0s, got 1h0m1s"}},
		{"max_keys too many", ratelimit.Config{RPS: 1, MaxKeys: 1e7 + 1}, []string{"max_keys: must be ≤ 10000000, got 10000001"}},
		{"max_wait negative", ratelimit.Config{RPS: 1, MaxWait: -1e9}, []string{"max_wait: must be ≥ 0 (0 = reject at once), got -1s"}},
		{"scope unknown", ratelimit.Config{RPS: 1, Scope: "Host"}, []string{`scope: must be "host" or "global", got "Host"`}},
		{"max_keys negative", ratelimit.Config{RPS: 1, MaxKeys: -3}, []string{"max_keys: must be ≥ 0 (0 = 10000), got -3"}},
		{"all at once", ratelimit.Config{Burst: -1, MaxWait: -1, Scope: "planet", MaxKeys: -1}, []string{
			"rps: required, must be > 0",
			"burst: must be ≥ 0 (0 = ceil(rps)), got -1",
			"max_wait: must be ≥ 0 (0 = reject at once), got -1ns",
			`scope: must be "host" or "global", got "planet"`,
			"max_keys: must be ≥ 0 (0 = 10000), got -1",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			lim, newErr := ratelimit.New(tc.cfg)
			if tc.want == nil {
				require.NoError(t, err)
				require.NoError(t, newErr)
				require.NotNil(t, lim)
				return
			}
			require.Error(t, err)
			assert.Equal(t, strings.Join(tc.want, "\n"), err.Error())
			joined, ok := err.(interface{ Unwrap() []error })
			require.True(t, ok, "problems are joined with errors.Join")
			require.Len(t, joined.Unwrap(), len(tc.want))
			for i, e := range joined.Unwrap() {
				var fe *ratelimit.FieldError
				require.ErrorAs(t, e, &fe)
				assert.Equal(t, tc.want[i], fe.Field+": "+fe.Msg)
			}
			require.Error(t, newErr, "New validates")
			assert.Nil(t, lim)
			assert.Contains(t, newErr.Error(), tc.want[0])
		})
	}
}

func TestConfigYAML(t *testing.T) {
	var c ratelimit.Config
	require.NoError(t, yaml.Unmarshal([]byte(`
rps: 0.5
burst: 2
max_wait: 250ms
scope: global
ignore_retry_after: true
max_keys: 7
`), &c))
	assert.Equal(t, ratelimit.Config{RPS: 0.5, Burst: 2, MaxWait: 250e6, Scope: "global", IgnoreRetryAfter: true, MaxKeys: 7}, c)
	require.NoError(t, c.Validate())
}

// FuzzConfig decodes arbitrary YAML into a Config, validates it and builds a
// Limiter from it: nothing may panic, and New must accept exactly what
// Validate accepts.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"rps: 100",
		"rps: 0.5\nburst: 0\nmax_wait: 250ms\nscope: host\n",
		"rps: 1e9\nscope: global\nmax_keys: 1\n",
		"rps: -1\nburst: -1\nmax_wait: -1s\nscope: x\nmax_keys: -1\n",
		"rps: .nan",
		"rps: .inf",
		"{}",
		"rps: 3\nmax_keys: 63\nmax_wait: 1h\n",
		"rps: 5\nredis: {address: 127.0.0.1:6379, key: k, timeout: 20ms}\n",
		"rps: 5\nredis: {address: nohost, timeout: -1s}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c ratelimit.Config
		if err := yaml.Unmarshal(data, &c); err != nil {
			return
		}
		verr := c.Validate()
		if verr == nil {
			c.Redis = ratelimit.RedisConfig{} // never dial an address the fuzzer made up
		}
		lim, err := ratelimit.New(c)
		if (verr == nil) != (err == nil) {
			t.Fatalf("Validate() = %v but New() = %v", verr, err)
		}
		if verr != nil {
			var fe *ratelimit.FieldError
			if !errors.As(verr, &fe) || fe.Field == "" {
				t.Fatalf("Validate() = %v: no FieldError naming the key", verr)
			}
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a wait, if any, ends at once
		for range 3 {
			if err := lim.Acquire(ctx, "k"); err != nil && !errors.Is(err, ratelimit.ErrLimited) && !errors.Is(err, context.Canceled) {
				t.Fatalf("Acquire: unexpected error %v", err)
			}
		}
		lim.Pause("k", 1)
		_ = lim.Snapshot()
	})
}
