package breaker_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/breaker"
)

// captureDefault points slog.Default at a buffer for the test and restores
// it after. Tests that use it must not run in parallel.
func captureDefault(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}

// tripAndRecover opens b's breaker for up and closes it again.
func tripAndRecover(t *testing.T, b *breaker.Breaker, up *stubUpstream) {
	t.Helper()
	c := up.client(b)
	_, err := get(t.Context(), c, up.url)
	require.NoError(t, err)
	require.Equal(t, breaker.StateOpen, b.State(up.host()))
	up.set(http.StatusOK, nil, nil)
	elapse(time.Minute + time.Millisecond)
	_, err = get(t.Context(), c, up.url)
	require.NoError(t, err)
	require.Equal(t, breaker.StateClosed, b.State(up.host()))
}

func TestSilentWithoutLogger(t *testing.T) {
	buf := captureDefault(t)
	synctest.Test(t, func(t *testing.T) {
		b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Minute})
		tripAndRecover(t, b, newStub(http.StatusInternalServerError))
	})
	assert.Empty(t, buf.String(), "a Breaker without WithLogger writes nothing to slog.Default()")
}

func TestWithLoggerLogsStateChanges(t *testing.T) {
	def := captureDefault(t)
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	synctest.Test(t, func(t *testing.T) {
		b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Minute}, breaker.WithLogger(l))
		tripAndRecover(t, b, newStub(http.StatusInternalServerError))
	})
	out := buf.String()
	for _, tr := range []string{"from=closed to=open", "from=open to=half_open", "from=half_open to=closed"} {
		assert.Contains(t, out, "key=stub.test:80 "+tr)
	}
	assert.Empty(t, def.String())
}

func TestGRPCFailureCodesConfig(t *testing.T) {
	var c breaker.Config
	require.NoError(t, yaml.Unmarshal([]byte("grpc_failure_codes: [not_found, UNAVAILABLE]\n"), &c))
	assert.Equal(t, []string{"not_found", "UNAVAILABLE"}, c.GRPCFailureCodes)
	require.NoError(t, c.Validate())

	err := breaker.Config{GRPCFailureCodes: []string{"UNAVAILABLE", "NOPE", "ok"}}.Validate()
	require.Error(t, err)
	assert.Equal(t, "grpc_failure_codes[1]: unknown gRPC code \"NOPE\" (want a name such as UNAVAILABLE)\n"+
		"grpc_failure_codes[2]: OK is not an error and cannot count as a failure", err.Error())
	_, err = breaker.New(breaker.Config{GRPCFailureCodes: []string{"14"}})
	assert.ErrorContains(t, err, `grpc_failure_codes[0]: unknown gRPC code "14"`, "names only, not numbers")
}

func TestCloseTwice(t *testing.T) {
	b, err := breaker.New(breaker.Config{})
	require.NoError(t, err)
	assert.NoError(t, b.Close())
	assert.NoError(t, b.Close())
}
