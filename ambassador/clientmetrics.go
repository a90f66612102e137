package ambassador

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	kinds "github.com/outbound-go/outbound/internal/classify"
)

// scopeName is the instrumentation scope of the stack's own client
// telemetry (http.client.* and the attempt spans).
const scopeName = "github.com/outbound-go/outbound/ambassador"

// clientDurationBuckets are the semantic conventions' advice for
// http.client.request.duration, in seconds (otelhttp's too).
var clientDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// maxClientSets bounds the cache of attribute sets of one stack. A key is
// method × endpoint × scheme × protocol × status × error class: endpoints
// come from discovery and methods are folded into the known ones, so only a
// service with very many endpoints and statuses reaches it; past it the set
// is built per measurement (allocating) and not kept.
const maxClientSets = 1024

// clientMetrics records http.client.request.duration (s) and
// http.client.request.body.size (By) once per attempt with the attributes
// otelhttp gives them (http.request.method, server.address, server.port
// unless the scheme's default, url.scheme, network.protocol.name and
// .version, http.response.status_code when there is a response, error.type
// when there is none) and service. Each combination's attribute set is built
// once and kept in a copy-on-write map, so a measurement reads an atomic
// pointer and a map and allocates nothing.
type clientMetrics struct {
	duration metric.Float64Histogram
	bodySize metric.Int64Histogram
	service  attribute.KeyValue

	sets atomic.Pointer[map[clientKey][]metric.RecordOption]
	mu   sync.Mutex // serialises writers of sets
}

// clientKey is one combination of the client instruments' attributes.
type clientKey struct {
	method  string // a known method or _OTHER
	host    string // the request URL's host[:port]
	scheme  string
	proto   string // the response's protocol, else the request's ("HTTP/1.1")
	status  int    // 0: no response
	errType string // "" unless status is 0
}

func newClientMetrics(mp metric.MeterProvider, service string) (*clientMetrics, error) {
	m := mp.Meter(scopeName)
	d, err := m.Float64Histogram("http.client.request.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP client requests."),
		metric.WithExplicitBucketBoundaries(clientDurationBuckets...))
	if err != nil {
		return nil, err
	}
	b, err := m.Int64Histogram("http.client.request.body.size", metric.WithUnit("By"),
		metric.WithDescription("Size of HTTP client request bodies."))
	if err != nil {
		return nil, err
	}
	cm := &clientMetrics{duration: d, bodySize: b, service: attribute.String("service", service)}
	cm.sets.Store(&map[clientKey][]metric.RecordOption{})
	return cm, nil
}

// enabled reports whether either instrument records (an SDK is behind it
// and no view drops both).
func (m *clientMetrics) enabled(ctx context.Context) bool {
	return m.duration.Enabled(ctx) || m.bodySize.Enabled(ctx)
}

// key returns the attributes of one attempt of req that got resp or err.
func (m *clientMetrics) key(ctx context.Context, req *http.Request, resp *http.Response, err error) clientKey {
	k := clientKey{method: knownMethod(req.Method), host: req.URL.Host, scheme: req.URL.Scheme, proto: req.Proto}
	if k.scheme == "" {
		k.scheme = "http"
	}
	if err == nil && resp != nil {
		k.status = resp.StatusCode
		if resp.Proto != "" {
			k.proto = resp.Proto
		}
	} else if err != nil {
		k.errType = errorType(ctx, err)
	}
	return k
}

// record measures one attempt: its duration in seconds and the request
// body's size in bytes.
func (m *clientMetrics) record(ctx context.Context, k clientKey, seconds float64, size int64) {
	o := m.options(k)
	m.duration.Record(ctx, seconds, o...)
	m.bodySize.Record(ctx, size, o...)
}

// options returns the attribute set of k as a Record option, built on first
// use.
func (m *clientMetrics) options(k clientKey) []metric.RecordOption {
	if o, ok := (*m.sets.Load())[k]; ok {
		return o
	}
	o := []metric.RecordOption{metric.WithAttributeSet(k.attributes(m.service))}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.sets.Load()
	if prev, ok := old[k]; ok {
		return prev
	}
	if len(old) < maxClientSets {
		next := make(map[clientKey][]metric.RecordOption, len(old)+1)
		for kk, v := range old {
			next[kk] = v
		}
		next[k] = o
		m.sets.Store(&next)
	}
	return o
}

// attributes builds k's attribute set, in otelhttp's shape.
func (k clientKey) attributes(service attribute.KeyValue) attribute.Set {
	host, port := splitHostPort(k.host)
	kvs := make([]attribute.KeyValue, 0, 9)
	kvs = append(kvs,
		attribute.String("http.request.method", k.method),
		attribute.String("server.address", host),
		attribute.String("url.scheme", k.scheme),
		service)
	if port > 0 && !(k.scheme == "https" && port == 443) && !(k.scheme != "https" && port == 80) {
		kvs = append(kvs, attribute.Int("server.port", port))
	}
	if name, version := netProtocol(k.proto); name != "" {
		kvs = append(kvs, attribute.String("network.protocol.name", name))
		if version != "" {
			kvs = append(kvs, attribute.String("network.protocol.version", version))
		}
	}
	if k.status > 0 {
		kvs = append(kvs, attribute.Int("http.response.status_code", k.status))
	}
	if k.errType != "" {
		kvs = append(kvs, attribute.String("error.type", k.errType))
	}
	return attribute.NewSet(kvs...)
}

// knownMethod is method if it is one of RFC 9110's and PATCH, else _OTHER
// (as the semantic conventions say), so that no caller can make a series
// per method name it invents.
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	case "":
		return http.MethodGet // net/http's meaning of an empty method
	}
	return "_OTHER"
}

// splitHostPort splits host[:port] (IPv6 in brackets); port is 0 when
// absent or not a number.
func splitHostPort(hostport string) (string, int) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), 0
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return host, 0
	}
	return host, int(port)
}

// netProtocol splits "HTTP/1.1" into "http" and "1.1".
func netProtocol(proto string) (name, version string) {
	name, version, _ = strings.Cut(proto, "/")
	return strings.ToLower(name), version
}

// errorType is the error.type of an attempt that failed with err: a small,
// fixed set of classes (timeout, canceled, connect-failure, refused-stream,
// reset; _OTHER for the rest), found with errors.Is and errors.As, never by
// the error's text or type name.
func errorType(ctx context.Context, err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	// The re-send guard's stop (ErrResendLimit) may end the context of the
	// layers above it too (see resendCall.done): its kind comes first.
	if errors.Is(err, kinds.ErrResendLimit) {
		ctx = context.Background()
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return "canceled"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	switch kinds.Error(ctx, nil, err) {
	case kinds.ConnectFailure:
		return "connect-failure"
	case kinds.RefusedStream:
		return "refused-stream"
	case kinds.Reset:
		return "reset"
	}
	return "_OTHER"
}
