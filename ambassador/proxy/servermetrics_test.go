package proxy_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/internal/testkit"
)

// TestServerRequestDuration: one http.server.request.duration measurement
// per inbound request, with method, status, route and service; a request
// that matches no route has route and service empty, and its status. The
// measurement is recorded after the answer is written, so it is awaited.
func TestServerRequestDuration(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s, err := proxy.NewServer(&proxy.Config{
		Admin: proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Routes: []proxy.RouteConfig{
			{PathPrefix: "/users/", Service: "users"},
		}}},
		Services: map[string]ambassador.ServiceConfig{"users": svc(named(t, "users"))},
	}, proxy.WithLogger(quietLogger()), proxy.WithMeterProvider(mp))
	require.NoError(t, err)
	urls := serve(t, s)
	c := client(t)
	code, _, _ := fetch(t, c, http.MethodGet, urls[0]+"/users/1", "")
	require.Equal(t, http.StatusOK, code)
	code, _, _ = fetch(t, c, http.MethodPost, urls[0]+"/nothing", "")
	require.Equal(t, http.StatusNotFound, code)

	want := map[attribute.Distinct]uint64{
		attrs(http.MethodGet, 200, "/users/", "users"): 1,
		attrs(http.MethodPost, 404, "", ""):            1,
	}
	require.Eventually(t, func() bool {
		got := durations(t, reader)
		for k, n := range want {
			if got[k] != n {
				return false
			}
		}
		return len(got) == len(want)
	}, 5*time.Second, 10*time.Millisecond, "one measurement per request with its attributes")
}

func attrs(method string, status int, route, service string) attribute.Distinct {
	s := attribute.NewSet(attribute.String("http.request.method", method), attribute.Int("http.response.status_code", status),
		attribute.String("outbound.route", route), attribute.String("service", service))
	return s.Equivalent()
}

// durations reads the counts of http.server.request.duration by attribute set.
func durations(t *testing.T, r *sdkmetric.ManualReader) map[attribute.Distinct]uint64 {
	t.Helper()
	got := map[attribute.Distinct]uint64{}
	m, ok := testkit.Metric(t, r, "http.server.request.duration")
	if !ok {
		return got
	}
	assert.Equal(t, "s", m.Unit)
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "a float64 histogram")
	for _, dp := range h.DataPoints {
		got[dp.Attributes.Equivalent()] = dp.Count
	}
	return got
}
