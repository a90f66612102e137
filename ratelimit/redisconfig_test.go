package ratelimit_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/ratelimit"
)

func TestValidateRedis(t *testing.T) {
	for _, tc := range []struct {
		name  string
		redis ratelimit.RedisConfig
		want  []string
	}{
		{"off", ratelimit.RedisConfig{}, nil},
		{"address only", ratelimit.RedisConfig{Address: "127.0.0.1:6379"}, nil},
		{"everything", ratelimit.RedisConfig{Address: "redis.internal:6379", Key: "k", Timeout: time.Second}, nil},
		{"no port", ratelimit.RedisConfig{Address: "127.0.0.1"}, []string{`redis.address: must be host:port, got "127.0.0.1"`}},
		{"no host", ratelimit.RedisConfig{Address: ":6379"}, []string{`redis.address: must be host:port with a host, got ":6379"`}},
		{"bad port", ratelimit.RedisConfig{Address: "h:70000"}, []string{`redis.address: must be host:port with a port 1-65535, got "h:70000"`}},
		{"key without address", ratelimit.RedisConfig{Key: "k"}, []string{`redis.address: required when redis.key or redis.timeout is set ("" keeps the buckets local)`}},
		{"timeout negative", ratelimit.RedisConfig{Address: "h:1", Timeout: -time.Millisecond}, []string{"redis.timeout: must be ≥ 0 (0 = 50ms), got -1ms"}},
		{"timeout too long", ratelimit.RedisConfig{Address: "h:1", Timeout: time.Minute}, []string{"redis.timeout: must be ≤ 10s, got 1m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ratelimit.Config{RPS: 1, Redis: tc.redis}.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, strings.Join(tc.want, "\n"), err.Error())
			var fe *ratelimit.FieldError
			require.True(t, errors.As(err, &fe))
			assert.True(t, strings.HasPrefix(fe.Field, "redis."), fe.Field)
			_, err = ratelimit.New(ratelimit.Config{RPS: 1, Redis: tc.redis})
			assert.Error(t, err, "New refuses it too")
		})
	}
}

func TestRedisConfigYAML(t *testing.T) {
	var c ratelimit.Config
	require.NoError(t, yaml.Unmarshal([]byte("rps: 50\nredis: {address: 127.0.0.1:6379, key: shared, timeout: 20ms}\n"), &c))
	assert.Equal(t, ratelimit.RedisConfig{Address: "127.0.0.1:6379", Key: "shared", Timeout: 20 * time.Millisecond}, c.Redis)
}
