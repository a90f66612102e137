package breaker_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/internal/testkit"
)

// counterPoints returns the data points of counter name as attribute set → value.
func counterPoints(t *testing.T, r *sdkmetric.ManualReader, name string) map[attribute.Distinct]metricdata.DataPoint[int64] {
	t.Helper()
	out := map[attribute.Distinct]metricdata.DataPoint[int64]{}
	sum := testkit.MetricData[metricdata.Sum[int64]](t, r, name)
	if len(sum.DataPoints) > 0 {
		assert.True(t, sum.IsMonotonic, "%s is a counter", name)
	}
	for _, dp := range sum.DataPoints {
		out[dp.Attributes.Equivalent()] = dp
	}
	return out
}

// TestMetrics runs in a testing/synctest bubble (see openTimeout).
func TestMetrics(t *testing.T) {
	synctest.Test(t, testMetrics)
}

func testMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

	up := newStub(http.StatusInternalServerError)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: openTimeout},
		breaker.WithMeterProvider(mp), breaker.WithService("users"))
	c := up.client(b)
	for range 2 {
		_, err := get(t.Context(), c, up.url)
		require.NoError(t, err)
	}
	for range 3 {
		_, err := get(t.Context(), c, up.url)
		require.ErrorIs(t, err, breaker.ErrOpen)
	}
	up.set(http.StatusOK, nil, nil)
	elapse(openTimeout + time.Millisecond) // fake time: gobreaker follows it
	code, err := get(t.Context(), c, up.url)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)

	ep := attribute.String("endpoint", up.host())
	svc := attribute.String("service", "users")
	transitions := counterPoints(t, reader, "outbound.breaker.transitions")
	for _, tr := range [][2]string{{"closed", "open"}, {"open", "half_open"}, {"half_open", "closed"}} {
		set := attribute.NewSet(ep, svc, attribute.String("from", tr[0]), attribute.String("to", tr[1]))
		dp, ok := transitions[set.Equivalent()]
		if assert.True(t, ok, "transition %s→%s recorded", tr[0], tr[1]) {
			assert.Equal(t, int64(1), dp.Value)
		}
	}
	assert.Len(t, transitions, 3)

	rejections := counterPoints(t, reader, "outbound.breaker.rejections")
	require.Len(t, rejections, 1)
	rset := attribute.NewSet(ep, svc)
	dp, ok := rejections[rset.Equivalent()]
	require.True(t, ok, "rejections carry endpoint and service")
	// 3 refusals above, plus any made while polling for the half-open state.
	assert.GreaterOrEqual(t, dp.Value, int64(3))
}

func TestMetricsWithoutService(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	up := newUpstream(t, http.StatusBadGateway)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Hour}, breaker.WithMeterProvider(mp))
	c := newClient(t, b)
	_, err := get(t.Context(), c, up.srv.URL)
	require.NoError(t, err)
	_, err = get(t.Context(), c, up.srv.URL)
	require.ErrorIs(t, err, breaker.ErrOpen)
	ep := attribute.String("endpoint", up.host())
	rej := counterPoints(t, reader, "outbound.breaker.rejections")
	rset := attribute.NewSet(ep)
	assert.Equal(t, int64(1), rej[rset.Equivalent()].Value)
	tr := counterPoints(t, reader, "outbound.breaker.transitions")
	set := attribute.NewSet(ep, attribute.String("from", "closed"), attribute.String("to", "open"))
	assert.Equal(t, int64(1), tr[set.Equivalent()].Value)
}
