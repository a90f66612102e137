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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

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
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	require.NoError(t, err)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	go func() {
		done <- runDemo(ctx, &out, mp, proxy.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
			proxy.WithMetricsHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
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
	// The outage trips the breakers, the ambassador answers some requests
	// itself, and it serves again once the upstreams are back.
	m := regexp.MustCompile(`(?m)^breaker trips: (\d+)$`).FindStringSubmatch(s)
	require.NotNil(t, m, s)
	trips, _ := strconv.Atoi(m[1])
	assert.GreaterOrEqual(t, trips, 1, "the breaker trips in the outage:\n%s", s)
	m = regexp.MustCompile(`(\d+) requests answered by the ambassador itself`).FindStringSubmatch(s)
	require.NotNil(t, m, s)
	open, _ := strconv.Atoi(m[1])
	assert.GreaterOrEqual(t, open, 1, "an open breaker answers for the upstream:\n%s", s)
	assert.Contains(t, s, "upstreams back:")

	// The printed /metrics line answers, with the breaker's transitions.
	m = regexp.MustCompile(`curl -s (http://\S+/metrics)`).FindStringSubmatch(s)
	require.NotNil(t, m, s)
	resp, err := http.Get(m[1])
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Regexp(t, `outbound_breaker_transitions\w*\{[^}]*to="open"`, string(metrics))

	// The printed curl line works.
	m = regexp.MustCompile(`curl -i (http://\S+/hello)`).FindStringSubmatch(s)
	require.NotNil(t, m, s)
	resp, err = http.Get(m[1])
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
