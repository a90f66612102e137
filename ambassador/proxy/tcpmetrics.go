package proxy

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// tcpMetrics are the instruments of the tcp listeners:
//
//   - outbound.tcp.connections (counter, {connection}): client
//     connections by service and result: connected; connect_failed (every
//     attempt failed); refused (max_concurrent_requests, no ready
//     endpoint, or every endpoint at max_connections with no queue);
//     queued_timeout (tcp.queue_timeout passed in the queue).
//   - outbound.tcp.open_connections (up-down counter, a gauge in
//     Prometheus, {connection}): pairs open now, by service.
//   - outbound.tcp.transferred (counter, By): bytes by service and
//     direction: in (read from the client, sent upstream) and out (read
//     from the upstream, sent to the client), added when a pair closes.
type tcpMetrics struct {
	conns metric.Int64Counter
	open  metric.Int64UpDownCounter
	bytes metric.Int64Counter
}

// tcpServiceMetrics are tcpMetrics with one service's attribute sets, built once.
type tcpServiceMetrics struct {
	m       *tcpMetrics
	results map[string]metric.AddOption
	svc     metric.AddOption
	in, out metric.AddOption
}

func newTCPMetrics(mp metric.MeterProvider) (*tcpMetrics, error) {
	meter := mp.Meter("github.com/outbound-go/outbound/ambassador/proxy")
	var m tcpMetrics
	var err error
	if m.conns, err = meter.Int64Counter("outbound.tcp.connections", metric.WithUnit("{connection}"),
		metric.WithDescription("Client connections of tcp listeners, by service and result (connected, connect_failed, refused, queued_timeout).")); err != nil {
		return nil, err
	}
	if m.open, err = meter.Int64UpDownCounter("outbound.tcp.open_connections", metric.WithUnit("{connection}"),
		metric.WithDescription("Client connections of tcp listeners joined to an endpoint now, by service.")); err != nil {
		return nil, err
	}
	if m.bytes, err = meter.Int64Counter("outbound.tcp.transferred", metric.WithUnit("By"),
		metric.WithDescription("Bytes through tcp listeners, by service and direction (in: from the client; out: to the client).")); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *tcpMetrics) forService(name string) *tcpServiceMetrics {
	svc := attribute.String("service", name)
	sm := &tcpServiceMetrics{m: m, results: map[string]metric.AddOption{},
		svc: metric.WithAttributeSet(attribute.NewSet(svc)),
		in:  metric.WithAttributeSet(attribute.NewSet(svc, attribute.String("direction", "in"))),
		out: metric.WithAttributeSet(attribute.NewSet(svc, attribute.String("direction", "out"))),
	}
	for _, r := range []string{"connected", "connect_failed", "refused", "queued_timeout"} {
		sm.results[r] = metric.WithAttributeSet(attribute.NewSet(svc, attribute.String("result", r)))
	}
	return sm
}

func (sm *tcpServiceMetrics) connection(result string) {
	sm.m.conns.Add(context.Background(), 1, sm.results[result])
}

func (sm *tcpServiceMetrics) opened(d int64) { sm.m.open.Add(context.Background(), d, sm.svc) }

func (sm *tcpServiceMetrics) transferred(in, out int64) {
	ctx := context.Background()
	sm.m.bytes.Add(ctx, in, sm.in)
	sm.m.bytes.Add(ctx, out, sm.out)
}
