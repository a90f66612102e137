package ambassador_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
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

	assert.Contains(t, testkit.MetricNames(t, reader), "http.client.request.duration")
	require.Len(t, spans.Ended(), 1)
	assert.Equal(t, "HTTP GET", spans.Ended()[0].Name())
}
