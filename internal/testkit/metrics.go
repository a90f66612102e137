package testkit

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collect reads everything reader holds, failing the test when it cannot.
func collect(t testing.TB, reader sdkmetric.Reader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collecting metrics: %v", err)
	}
	return rm
}

// MetricNames collects reader and returns the names of the instruments it
// holds data for, in the order the SDK reports them.
func MetricNames(t testing.TB, reader sdkmetric.Reader) []string {
	t.Helper()
	var names []string
	for _, sm := range collect(t, reader).ScopeMetrics {
		for _, m := range sm.Metrics {
			names = append(names, m.Name)
		}
	}
	return names
}

// Metric collects reader and returns the instrument called name, and
// whether it holds data for one.
func Metric(t testing.TB, reader sdkmetric.Reader, name string) (metricdata.Metrics, bool) {
	t.Helper()
	for _, sm := range collect(t, reader).ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// MetricData collects reader and returns the data of the instrument called
// name as D (metricdata.Sum[int64], metricdata.Histogram[float64],
// metricdata.Gauge[int64], ...). It fails the test when the instrument's
// data is of another kind; without data for name it returns D's zero value
// (no points).
func MetricData[D metricdata.Aggregation](t testing.TB, reader sdkmetric.Reader, name string) D {
	t.Helper()
	var zero D
	m, ok := Metric(t, reader, name)
	if !ok {
		return zero
	}
	d, ok := m.Data.(D)
	if !ok {
		t.Fatalf("metric %s holds %T, not %T", name, m.Data, zero)
	}
	return d
}
