package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
)

// metricLine returns the first line of the /metrics text at u that starts
// with name{ and contains every one of labels, or "".
func metricLine(c *http.Client, u, name string, labels ...string) string {
	resp, err := c.Get(u)
	if err != nil {
		return ""
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
next:
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		return line
	}
	return ""
}

// TestMetricsCarryRouteAndService: each inbound request is one
// http_server_request_duration_seconds measurement with its method, status,
// route and service; the client-side duration of its attempt carries the
// service; no scope label is empty.
func TestMetricsCarryRouteAndService(t *testing.T) {
	up := textUpstream(t, "hello")
	admin, lis := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`admin: {address: %s}
listeners:
  - address: %s
    routes:
      - {path_prefix: /api, service: users}
services:
  users:
    discovery: {static: [%s]}
`, admin, lis, hostOf(up.URL))
	p := runAmbassador(t, admin, cfg)
	c := newClient(t)
	for range 3 {
		resp, body := get(t, c, "http://"+lis+"/api/x")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	}
	req, err := http.NewRequest("PURGE", "http://"+lis+"/api/x", nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()

	var server string
	require.Eventually(t, func() bool {
		server = metricLine(c, p.admin+"/metrics", "http_server_request_duration_seconds_count",
			`http_request_method="GET"`, `http_response_status_code="200"`, `outbound_route="/api"`, `service="users"`)
		return strings.HasSuffix(strings.TrimSpace(server), " 3")
	}, 5*time.Second, 20*time.Millisecond, "three GETs through route /api to users: %q", server)
	assert.NotEmpty(t, metricLine(c, p.admin+"/metrics", "http_server_request_duration_seconds_count",
		`http_request_method="_OTHER"`, `service="users"`), "an unknown method is folded into _OTHER")
	assert.NotEmpty(t, metricLine(c, p.admin+"/metrics", "http_server_request_duration_seconds_bucket",
		`le="0.005"`, `service="users"`), "the semantic conventions' buckets")
	assert.NotEmpty(t, metricLine(c, p.admin+"/metrics", "http_client_request_duration_seconds_count",
		`http_request_method="GET"`, `service="users"`), "the attempt's client duration carries service")

	_, text := get(t, c, p.admin+"/metrics")
	empty := regexp.MustCompile(`otel_scope_[a-z_]*=""`).FindAllString(text, -1)
	assert.Empty(t, empty, "no empty scope labels")
}

// TestMetricsOpenMetrics: /metrics answers OpenMetrics to a client that
// asks for it, and the Prometheus text format otherwise.
func TestMetricsOpenMetrics(t *testing.T) {
	up := textUpstream(t, "hello")
	p, _ := serveOne(t, "users", hostOf(up.URL), "", "")
	c := newClient(t)

	req, err := http.NewRequest(http.MethodGet, p.admin+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0; charset=utf-8")
	resp, err := c.Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/openmetrics-text"), resp.Header.Get("Content-Type"))
	assert.True(t, strings.HasSuffix(string(b), "# EOF\n"), "OpenMetrics ends with # EOF")

	resp, text := get(t, c, p.admin+"/metrics")
	assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
	assert.NotContains(t, text, "# EOF")
}

// TestMeterProviderExemplars: a measurement made under a sampled span keeps
// its exemplar when tracing is on, carries none when tracing is off (the
// filter is then switched off), and OTEL_METRICS_EXEMPLAR_FILTER, when set,
// is the operator's choice either way.
func TestMeterProviderExemplars(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tracing bool
		env     string // "" leaves OTEL_METRICS_EXEMPLAR_FILTER unset
		want    int
	}{
		{name: "tracing on", tracing: true, want: 1},
		{name: "tracing off", tracing: false, want: 0},
		{name: "tracing off, env always_on", tracing: false, env: "always_on", want: 1},
		{name: "tracing on, env always_off", tracing: true, env: "always_off", want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(exemplarFilterEnv, tc.env)
			}
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(meterProviderOptions(reader, tc.tracing)...)
			defer func() { _ = mp.Shutdown(context.Background()) }()
			h, err := mp.Meter("test").Float64Histogram("d")
			require.NoError(t, err)
			sampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
				TraceID:    trace.TraceID{1},
				SpanID:     trace.SpanID{2},
				TraceFlags: trace.FlagsSampled,
			}))
			h.Record(sampled, 0.5)

			var rm metricdata.ResourceMetrics
			require.NoError(t, reader.Collect(context.Background(), &rm))
			require.Len(t, rm.ScopeMetrics, 1)
			require.Len(t, rm.ScopeMetrics[0].Metrics, 1)
			hist, ok := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Histogram[float64])
			require.True(t, ok, "a float64 histogram, got %T", rm.ScopeMetrics[0].Metrics[0].Data)
			require.Len(t, hist.DataPoints, 1)
			assert.Len(t, hist.DataPoints[0].Exemplars, tc.want)
		})
	}
}
