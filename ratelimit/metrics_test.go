package ratelimit_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/ratelimit"
)

// collect reads every metric of the reader, by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 2, MaxWait: 30 * time.Millisecond},
		clk.Option(), ratelimit.WithMeterProvider(mp), ratelimit.WithService("users"))
	require.NoError(t, err)

	ctx := context.Background()
	require.NoError(t, lim.Acquire(ctx, "a"))                       // allowed
	require.NoError(t, lim.Acquire(ctx, "a"))                       // allowed
	require.NoError(t, lim.Acquire(ctx, "a"))                       // waited 20 ms
	require.ErrorIs(t, lim.Acquire(ctx, "a"), ratelimit.ErrLimited) // would wait 40 ms > max_wait

	got := collect(t, reader)
	decisions, ok := got["outbound.ratelimit.decisions"].Data.(metricdata.Sum[int64])
	require.True(t, ok, "decisions is an int64 counter: %+v", got)
	assert.True(t, decisions.IsMonotonic)
	counts := map[string]int64{}
	for _, dp := range decisions.DataPoints {
		svc, _ := dp.Attributes.Value("service")
		assert.Equal(t, "users", svc.AsString())
		res, _ := dp.Attributes.Value("result")
		counts[res.AsString()] = dp.Value
	}
	assert.Equal(t, map[string]int64{"allowed": 2, "waited": 1, "rejected": 1}, counts)

	wait, ok := got["outbound.ratelimit.wait"].Data.(metricdata.Histogram[float64])
	require.True(t, ok, "wait is a float64 histogram: %+v", got)
	assert.Equal(t, "s", got["outbound.ratelimit.wait"].Unit)
	require.Len(t, wait.DataPoints, 1)
	assert.Equal(t, uint64(1), wait.DataPoints[0].Count, "one request waited")
	assert.InDelta(t, 0.020, wait.DataPoints[0].Sum, 1e-6)
	assert.Equal(t, attribute.NewSet(attribute.String("service", "users")), wait.DataPoints[0].Attributes)
}

func TestMetricsWithoutService(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	lim, err := ratelimit.New(ratelimit.Config{RPS: 1}, newFakeClock().Option(), ratelimit.WithMeterProvider(mp))
	require.NoError(t, err)
	require.NoError(t, lim.Acquire(context.Background(), "a"))
	decisions := collect(t, reader)["outbound.ratelimit.decisions"].Data.(metricdata.Sum[int64])
	require.Len(t, decisions.DataPoints, 1)
	assert.Equal(t, attribute.NewSet(attribute.String("result", "allowed")), decisions.DataPoints[0].Attributes)
}

func TestPauseIsLogged(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lim, err := ratelimit.New(ratelimit.Config{RPS: 1}, newFakeClock().Option(), ratelimit.WithLogger(logger))
	require.NoError(t, err)
	lim.Pause("users", 2*time.Second)
	assert.Contains(t, buf.String(), "key=users pause=2s")
	lim.Pause("users", 0)
	assert.Equal(t, 1, strings.Count(buf.String(), "\n"), "a zero pause is no pause")
}
