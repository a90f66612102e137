package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// The demo is the first thing a newcomer runs (go run ./examples/ambassador
// with no config): its burst must show the ambassador hiding the flaky
// upstream's failures, then keep serving the curl line it prints, and stop
// cleanly when its context ends.
func TestRunDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuf
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, &out, proxy.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Ctrl-C to stop") }, 30*time.Second, 10*time.Millisecond)
	s := out.String()

	row := func(label string) (sent, ok int) {
		m := regexp.MustCompile(label + `\s+(\d+)\s+(\d+)`).FindStringSubmatch(s)
		require.NotNil(t, m, "%q not in the summary:\n%s", label, s)
		sent, _ = strconv.Atoi(m[1])
		ok, _ = strconv.Atoi(m[2])
		return sent, ok
	}
	sent, direct := row("straight to the upstreams")
	assert.Equal(t, demoRequests, sent)
	assert.Less(t, direct, sent, "the flaky upstream fails some requests sent straight to it:\n%s", s)
	sent, via := row("through the ambassador")
	assert.Equal(t, demoRequests, sent)
	assert.Equal(t, sent, via, "retries hide the flaky upstream's 503s:\n%s", s)
	assert.Regexp(t, `upstream attempts behind the ambassador: \d+ for 200 requests`, s)
	assert.Regexp(t, `breaker trips: \d+`, s)

	// The printed curl line works.
	m := regexp.MustCompile(`curl -i (http://\S+/hello)`).FindStringSubmatch(s)
	require.NotNil(t, m, s)
	resp, err := http.Get(m[1])
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	http.DefaultClient.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("runDemo did not return after its context ended")
	}
}
