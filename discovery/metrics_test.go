package discovery_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
)

func TestEndpointsGauge(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	var ejected atomic.Value
	ejected.Store("")
	s := newService(t, discovery.Static("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"), discovery.Config{},
		discovery.WithMeterProvider(mp),
		discovery.WithHealth(discovery.HealthFunc(func(ep string) bool { return ep != ejected.Load() })))

	collect := func() map[bool]int64 {
		got := map[bool]int64{}
		for _, dp := range testkit.MetricData[metricdata.Gauge[int64]](t, reader, "outbound.discovery.endpoints").DataPoints {
			svc, _ := dp.Attributes.Value(attribute.Key("service"))
			assert.Equal(t, "users", svc.AsString())
			ready, _ := dp.Attributes.Value(attribute.Key("ready"))
			got[ready.AsBool()] = dp.Value
		}
		return got
	}
	assert.Equal(t, map[bool]int64{true: 3, false: 0}, collect())
	ejected.Store("10.0.0.2:80")
	assert.Equal(t, map[bool]int64{true: 2, false: 1}, collect())

	require.NoError(t, s.Close())
	assert.Empty(t, collect(), "gauge still reported after Close")
}

func TestCloseStopsEveryGoroutine(t *testing.T) {
	up := newUpstream(t, nil)
	dead := deadAddr(t)
	before := goleak.IgnoreCurrent()
	src := newSetSource()
	clk := newStepClock()
	s, err := discovery.NewService("users", src, discovery.Config{
		HealthCheck: discovery.HealthCheckConfig{Path: "/healthz", Interval: time.Hour},
	}, discovery.WithLogger(slog.New(slog.DiscardHandler)), discovery.WithClock(clk))
	require.NoError(t, err)
	src.Set(t, up.addr(), dead)
	clk.sleeping(t)
	clk.step(t)
	clk.step(t)
	require.GreaterOrEqual(t, up.hits.Load(), int64(2), "health checks ran")
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	goleak.VerifyNone(t, before)
}

func TestLogsEndpointChangesAndSourceErrors(t *testing.T) {
	var mu testkit.SyncBuffer
	src := newSetSource()
	s, err := discovery.NewService("users", src, discovery.Config{}, discovery.WithLogger(slog.New(slog.NewTextHandler(&mu, nil))))
	require.NoError(t, err)
	defer s.Close()
	src.Set(t, "10.0.0.1:80")
	src.send(t, nil, assert.AnError)
	out := mu.String()
	assert.Contains(t, out, `msg="discovery: endpoint set changed" service=users endpoints=1 added=1 removed=0`)
	assert.Contains(t, out, `level=WARN msg="discovery: source failed; keeping the last endpoint set" service=users`)
}
