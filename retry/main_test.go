package retry_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock records the delays the policy asks for and returns at once. Its
// time starts at the wall clock (so context deadlines compare sensibly) and
// moves only when advance is true.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	advance bool
	sleeps  []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	if c.advance {
		c.now = c.now.Add(d)
	}
	return nil
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// metrics is a meter provider with a manual reader.
type metrics struct {
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newMetrics(t *testing.T) *metrics {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &metrics{reader: r, mp: mp}
}

// outcomes sums outbound.retry.attempts by outcome.
func (m *metrics) outcomes(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, dp := range testkit.MetricData[metricdata.Sum[int64]](t, m.reader, "outbound.retry.attempts").DataPoints {
		v, _ := dp.Attributes.Value(attribute.Key("outcome"))
		out[v.AsString()] += dp.Value
	}
	return out
}

// newPolicy builds a policy with a fake clock and a manual metric reader.
func newPolicy(t *testing.T, c retry.Config, opts ...retry.Option) (*retry.Policy, *fakeClock, *metrics) {
	t.Helper()
	clk := newFakeClock()
	m := newMetrics(t)
	p, err := retry.New(c, append([]retry.Option{retry.WithClock(clk), retry.WithMeterProvider(m.mp)}, opts...)...)
	require.NoError(t, err)
	return p, clk, m
}

// rtFunc adapts a function to http.RoundTripper.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// hasServiceAttr reports whether every outbound.retry.attempts point carries
// service=name.
func hasServiceAttr(t *testing.T, m *metrics, name string) bool {
	t.Helper()
	seen := false
	for _, dp := range testkit.MetricData[metricdata.Sum[int64]](t, m.reader, "outbound.retry.attempts").DataPoints {
		v, ok := dp.Attributes.Value(attribute.Key("service"))
		if !ok || v.AsString() != name {
			return false
		}
		seen = true
	}
	return seen
}

// latency is a simulated upstream's service time: it returns after d, or
// as soon as ctx (the request's context) is done, so a slow upstream never
// outlives the request it serves.
func latency(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
