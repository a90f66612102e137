package ambassador_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
)

// Explicit providers turn on the client telemetry: a client span and a
// request-duration measurement per attempt.
func TestExplicitProvidersRecordHTTPClientTelemetry(t *testing.T) {
	up := upstream(t, "a")
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	s := newStack(t, ambassador.ServiceConfig{Name: "users", Discovery: discovery.Config{Static: []string{hostOf(t, up.URL)}}},
		ambassador.WithMeterProvider(mp), ambassador.WithTracerProvider(tp))
	body, err := get(t, s, "http://users/x")
	require.NoError(t, err)
	assert.Equal(t, "a /x", body)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	var names []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names = append(names, m.Name)
		}
	}
	assert.Contains(t, names, "http.client.request.duration")
	require.Len(t, spans.Ended(), 1)
	assert.Equal(t, "HTTP GET", spans.Ended()[0].Name())
}
