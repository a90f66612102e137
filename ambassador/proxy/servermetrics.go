package proxy

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// serverMetrics records http.server.request.duration, one measurement per
// inbound request, with http.request.method, http.response.status_code,
// outbound.route and service. The attribute set of each combination is
// built once and kept (up to maxMetricSets of them), so the hot path
// records with a map lookup and no allocation.
type serverMetrics struct {
	duration metric.Float64Histogram

	mu   sync.RWMutex
	sets map[metricKey][]metric.RecordOption // one option each: Record's variadic argument
}

// metricKey is one combination of the duration's attributes.
type metricKey struct {
	method         string
	status         int
	route, service string
}

// maxMetricSets bounds the cache of attribute sets; methods are folded into
// the known ones and routes and services come from the config, so it is
// only reached by a config with very many routes.
const maxMetricSets = 4096

// serverDurationBuckets are the semantic conventions' advice for
// http.server.request.duration, in seconds.
var serverDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

func newServerMetrics(mp metric.MeterProvider) (*serverMetrics, error) {
	d, err := mp.Meter("github.com/outbound-go/outbound/ambassador/proxy").Float64Histogram(
		"http.server.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of inbound requests, from routing to the last byte of the answer."),
		metric.WithExplicitBucketBoundaries(serverDurationBuckets...))
	if err != nil {
		return nil, err
	}
	return &serverMetrics{duration: d, sets: map[metricKey][]metric.RecordOption{}}, nil
}

// record measures one request that started at start and was answered with
// status (0: nothing written).
func (m *serverMetrics) record(r *http.Request, status int, panicked bool, rt *route, e *serviceEntry, start time.Time) {
	if !m.duration.Enabled(context.Background()) {
		return
	}
	if status == 0 {
		status = http.StatusOK
		if panicked {
			status = 499 // aborted mid-stream, as the access log says
		}
	}
	k := metricKey{method: knownMethod(r.Method), status: status}
	if rt != nil {
		k.route = rt.name
	}
	if e != nil {
		k.service = e.name
	}
	m.duration.Record(r.Context(), time.Since(start).Seconds(), m.options(k)...)
}

// options returns the attribute set of k as Record's options, built on
// first use.
func (m *serverMetrics) options(k metricKey) []metric.RecordOption {
	m.mu.RLock()
	o, ok := m.sets[k]
	m.mu.RUnlock()
	if ok {
		return o
	}
	o = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
		attribute.String("http.request.method", k.method),
		attribute.Int("http.response.status_code", k.status),
		attribute.String("outbound.route", k.route),
		attribute.String("service", k.service)))}
	m.mu.Lock()
	if len(m.sets) < maxMetricSets {
		m.sets[k] = o
	}
	m.mu.Unlock()
	return o
}

// knownMethod is method if it is one of RFC 9110's and PATCH, else _OTHER
// (as the semantic conventions say), so that a client cannot make a series
// per method name it invents.
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "_OTHER"
}
