package proxy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

func TestConfigRateLimitRedis(t *testing.T) {
	const base = "listeners: [{address: 127.0.0.1:10001, service: users}]\nservices:\n  users:\n    discovery: {static: [127.0.0.1:8081]}\n"
	c, err := proxy.ParseConfig([]byte(base+"    ratelimit: {rps: 50, redis: {address: 127.0.0.1:6379, timeout: 20ms}}\n"), "/cfg")
	require.NoError(t, err)
	rl := c.Services["users"].RateLimit
	require.NotNil(t, rl)
	assert.Equal(t, "127.0.0.1:6379", rl.Redis.Address)
	assert.Equal(t, 20*time.Millisecond, rl.Redis.Timeout)

	_, err = proxy.ParseConfig([]byte(base+"    ratelimit: {rps: 50, redis: {address: nohost, timeout: 1m}}\n"), "/cfg")
	assert.Contains(t, problemMsg(t, err, "services.users.ratelimit.redis.address"), `must be host:port, got "nohost"`)
	assert.Contains(t, problemMsg(t, err, "services.users.ratelimit.redis.timeout"), "must be ≤ 10s")
}
