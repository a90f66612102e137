package main

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is a real OTLP/HTTP trace receiver: it decodes each
// protobuf ExportTraceServiceRequest posted to /v1/traces and keeps its
// spans, with their resource's service.name.
type otlpReceiver struct {
	url     string // the traces endpoint
	exports atomic.Int64

	mu      sync.Mutex
	spans   []*tracepb.Span
	service []string // service.name of each resource seen
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/v1/traces"
	return r
}

func (r *otlpReceiver) export(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ex coltracepb.ExportTraceServiceRequest
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	if err := proto.Unmarshal(b, &ex); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range ex.GetResourceSpans() {
		r.service = append(r.service, attrString(rs.GetResource().GetAttributes(), "service.name"))
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	r.mu.Unlock()
	r.exports.Add(1)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// trace returns the spans received so far whose trace id is traceID (hex).
func (r *otlpReceiver) trace(traceID string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if hex.EncodeToString(s.GetTraceId()) == traceID {
			out = append(out, s)
		}
	}
	return out
}

func attrValue(kvs []*commonpb.KeyValue, key string) (*commonpb.AnyValue, bool) {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue(), true
		}
	}
	return nil, false
}

func attrString(kvs []*commonpb.KeyValue, key string) string {
	v, _ := attrValue(kvs, key)
	return v.GetStringValue()
}

// tracingEnv is the OpenTelemetry environment that sends the process's
// traces to rcv over OTLP/HTTP protobuf, batched for 100ms at most.
func tracingEnv(rcv *otlpReceiver) []string {
	return []string{
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + rcv.url,
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"OTEL_SERVICE_NAME=ambassador-under-test",
	}
}

// serveTraced runs the ambassador with one service (as serveOne) and the
// tracing environment env.
func serveTraced(t *testing.T, env []string, name, upstream, svc string) (*proc, string) {
	t.Helper()
	admin, lis := freeAddr(t), freeAddr(t)
	return runAmbassadorEnv(t, env, admin, oneServiceConfig(admin, lis, name, upstream, svc, "")), lis
}

// Client's trace context: trace id and the client's own span id.
const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	clientParent  = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

// waitTrace waits until rcv holds want spans of the client's trace.
func waitTrace(t *testing.T, rcv *otlpReceiver, want int) []*tracepb.Span {
	t.Helper()
	require.Eventually(t, func() bool { return len(rcv.trace(clientTraceID)) >= want },
		10*time.Second, 10*time.Millisecond, "spans of the client's trace: want %d", want)
	return rcv.trace(clientTraceID)
}

// checkTrace asserts the shape of one request's trace: one server span, a
// child of the client's span, and one client span per attempt below it
// with service, outbound.attempt, outbound.endpoint and
// http.request.resend_count. It returns the client spans by attempt.
func checkTrace(t *testing.T, spans []*tracepb.Span, service, endpoint string, attempts int) map[int64]*tracepb.Span {
	t.Helper()
	var server []*tracepb.Span
	clients := map[int64]*tracepb.Span{}
	for _, s := range spans {
		switch s.GetKind() {
		case tracepb.Span_SPAN_KIND_SERVER:
			server = append(server, s)
		case tracepb.Span_SPAN_KIND_CLIENT:
			v, ok := attrValue(s.GetAttributes(), "outbound.attempt")
			require.True(t, ok, "client span %q without outbound.attempt", s.GetName())
			clients[v.GetIntValue()] = s
		default:
			t.Errorf("unexpected span %q of kind %s", s.GetName(), s.GetKind())
		}
	}
	require.Len(t, server, 1, "one server span per inbound request")
	srv := server[0]
	assert.Equal(t, clientSpanID, hex.EncodeToString(srv.GetParentSpanId()), "the server span continues the caller's traceparent")
	assert.Equal(t, service, attrString(srv.GetAttributes(), "service"))
	require.Len(t, clients, attempts, "one client span per attempt")
	for n := int64(1); n <= int64(attempts); n++ {
		c := clients[n]
		require.NotNil(t, c, "client span of attempt %d", n)
		assert.Equal(t, srv.GetSpanId(), c.GetParentSpanId(), "attempt %d is a child of the server span", n)
		assert.Equal(t, service, attrString(c.GetAttributes(), "service"), "attempt %d", n)
		assert.Equal(t, endpoint, attrString(c.GetAttributes(), "outbound.endpoint"), "attempt %d", n)
		rc, ok := attrValue(c.GetAttributes(), "http.request.resend_count")
		require.True(t, ok, "attempt %d has http.request.resend_count", n)
		assert.Equal(t, n-1, rc.GetIntValue(), "attempt %d", n)
	}
	return clients
}

func TestTracesReachOTLPReceiver(t *testing.T) {
	rcv := newOTLPReceiver(t)
	var n atomic.Int64
	seen := make(chan string, 4) // the traceparent of each attempt, as the upstream got it
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Traceparent")
		if n.Add(1) == 1 {
			http.Error(w, "first attempt fails", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	p, lis := serveTraced(t, tracingEnv(rcv), "flaky", hostOf(up.URL),
		`retry: {max_attempts: 3, base_delay: 1ms, max_delay: 5ms, budget: {disabled: true}}`)

	req, err := http.NewRequest(http.MethodGet, "http://"+lis+"/x", nil)
	require.NoError(t, err)
	req.Header.Set("Traceparent", clientParent)
	resp, err := newClient(t).Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	clients := checkTrace(t, waitTrace(t, rcv, 3), "flaky", hostOf(up.URL), 2)
	for attempt := int64(1); attempt <= 2; attempt++ {
		want := fmt.Sprintf("00-%s-%s-01", clientTraceID, hex.EncodeToString(clients[attempt].GetSpanId()))
		assert.Equal(t, want, <-seen, "attempt %d reaches the upstream with its client span as parent", attempt)
	}
	rcv.mu.Lock()
	assert.Contains(t, rcv.service, "ambassador-under-test", "OTEL_SERVICE_NAME names the resource")
	rcv.mu.Unlock()

	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.exitCode(t, 10*time.Second))
}

func TestTracesOfGRPCCall(t *testing.T) {
	rcv := newOTLPReceiver(t)
	up, _, ts := grpcUpstream(t)
	p, lis := serveTraced(t, tracingEnv(rcv), "grpc", up, `protocol: h2c
retry: {base_delay: 1ms, max_delay: 5ms}`)
	cc := grpcClient(t, lis)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", clientParent)
	err := cc.Invoke(ctx, "/test.Test/Do", &healthpb.HealthCheckRequest{Service: "flaky"}, new(healthpb.HealthCheckResponse))
	require.NoError(t, err)
	require.Equal(t, int64(2), ts.calls.Load(), "one UNAVAILABLE, retried once")

	checkTrace(t, waitTrace(t, rcv, 3), "grpc", up, 2)
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.exitCode(t, 10*time.Second))
}

// Without OTEL_TRACES_EXPORTER there is no tracing: nothing is exported,
// even on the flush at exit, and the caller's traceparent reaches the
// upstream as it was sent.
func TestTracesOffByDefault(t *testing.T) {
	rcv := newOTLPReceiver(t)
	seen := make(chan string, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Traceparent")
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	env := tracingEnv(rcv)[1:] // everything but OTEL_TRACES_EXPORTER
	p, lis := serveTraced(t, append(env, "OTEL_TRACES_EXPORTER="), "plain", hostOf(up.URL), "")
	req, err := http.NewRequest(http.MethodGet, "http://"+lis+"/x", nil)
	require.NoError(t, err)
	req.Header.Set("Traceparent", clientParent)
	resp, err := newClient(t).Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, clientParent, <-seen)
	p.signal(t, syscall.SIGTERM)
	require.Equal(t, 0, p.exitCode(t, 10*time.Second))
	assert.Zero(t, rcv.exports.Load(), "no export without OTEL_TRACES_EXPORTER")
}

func TestTracesBadExporterIsUsageError(t *testing.T) {
	admin, lis := freeAddr(t), freeAddr(t)
	path := writeConfig(t, oneServiceConfig(admin, lis, "x", "127.0.0.1:1", "", ""))
	p := startProcEnv(t, []string{"OTEL_TRACES_EXPORTER=bogus"}, "-config", path)
	assert.Equal(t, 2, p.exitCode(t, 10*time.Second))
	assert.Contains(t, p.out.String(), `OTEL_TRACES_EXPORTER="bogus"`, "the key and value at fault are named")
}
