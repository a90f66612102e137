package ratelimit_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/ratelimit"
)

// pauseOnce sends one request that the upstream answers with 429 and
// Retry-After, so the Limiter pauses the host (which it logs at Debug).
func pauseOnce(t *testing.T, opts ...ratelimit.Option) {
	t.Helper()
	up := newUpstream(t)
	up.answer(http.StatusTooManyRequests, "30")
	lim, err := ratelimit.New(ratelimit.Config{RPS: 100}, append([]ratelimit.Option{newFakeClock().Option()}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lim.Close() })
	code, err := get(t.Context(), client(t, lim), up.URL)
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, code)
	require.False(t, lim.Snapshot()[0].PausedUntil.IsZero(), "the host is paused")
}

func TestLoggerOnlyWhenGiven(t *testing.T) {
	def := testkit.CaptureDefaultLog(t)

	pauseOnce(t)
	assert.Empty(t, def.String(), "a Limiter without WithLogger writes nothing to slog.Default()")

	var buf bytes.Buffer
	pauseOnce(t, ratelimit.WithLogger(testkit.DebugLogger(&buf)))
	assert.Contains(t, buf.String(), "key paused")
	assert.Empty(t, def.String())
}

func TestMaxPauseConfig(t *testing.T) {
	var c ratelimit.Config
	require.NoError(t, yaml.Unmarshal([]byte("rps: 10\nmax_pause: 90s\n"), &c))
	assert.Equal(t, 90*time.Second, c.MaxPause)
	require.NoError(t, c.Validate())
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "max_pause: must be ≥ 0 (0 = 5m0s), got -1s"},
		{25 * time.Hour, "max_pause: must be ≤ 24h0m0s, got 25h0m0s"},
	} {
		err := ratelimit.Config{RPS: 1, MaxPause: tt.d}.Validate()
		var fe *ratelimit.FieldError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, tt.want, fe.Error())
	}
}

func TestCloseTwice(t *testing.T) {
	lim, err := ratelimit.New(ratelimit.Config{RPS: 1})
	require.NoError(t, err)
	assert.NoError(t, lim.Close())
	assert.NoError(t, lim.Close())
}
