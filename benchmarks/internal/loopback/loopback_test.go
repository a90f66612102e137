package loopback_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCheck(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8080", "[::1]:80", "127.1.2.3:0"} {
		assert.NoError(t, loopback.Check(ok), ok)
	}
	for _, bad := range []string{"10.0.0.1:80", "localhost:80", "0.0.0.0:80", "127.0.0.1", ":80"} {
		err := loopback.Check(bad)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), bad, "the error names the address")
	}
}

func TestListen(t *testing.T) {
	ln, err := loopback.Listen("127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, ln.Close())
	_, err = loopback.Listen("0.0.0.0:0")
	assert.Error(t, err)
}

func TestServeUntil(t *testing.T) {
	// serve ends first: its error is returned and stop is not called.
	err := loopback.ServeUntil(context.Background(), func() error { return assert.AnError },
		func() error { t.Error("stop called"); return nil })
	assert.ErrorIs(t, err, assert.AnError)

	// ctx ends first: stop ends serve, and serve's result is returned.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	started := make(chan struct{})
	go func() { <-started; cancel() }()
	err = loopback.ServeUntil(ctx, func() error { close(started); <-done; return nil },
		func() error { close(done); return nil })
	assert.NoError(t, err)
}
