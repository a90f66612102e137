package retry_test

import (
	"bytes"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/retry"
)

// retryOnce sends one request through a Policy that retries a 503 once
// (which it logs at Debug).
func retryOnce(t *testing.T, opts ...retry.Option) {
	t.Helper()
	p, _, _ := newPolicy(t, retry.Config{MaxAttempts: 2, RetryOn: []string{"5xx"}}, opts...)
	var calls atomic.Int32
	rt := p.RoundTripper(rtFunc(func(r *http.Request) (*http.Response, error) {
		code := http.StatusServiceUnavailable
		if calls.Add(1) > 1 {
			code = http.StatusOK
		}
		return &http.Response{StatusCode: code, Body: http.NoBody, Request: r}, nil
	}))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://users/", nil)
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, int32(2), calls.Load())
}

func TestLoggerOnlyWhenGiven(t *testing.T) {
	def := testkit.CaptureDefaultLog(t)

	retryOnce(t)
	assert.Empty(t, def.String(), "a Policy without WithLogger writes nothing to slog.Default()")

	var buf bytes.Buffer
	retryOnce(t, retry.WithLogger(testkit.DebugLogger(&buf)))
	assert.Contains(t, buf.String(), "retrying request")
	assert.Empty(t, def.String())
}

func TestCloseTwice(t *testing.T) {
	p, err := retry.New(retry.Config{})
	require.NoError(t, err)
	assert.NoError(t, p.Close())
	assert.NoError(t, p.Close())
}
