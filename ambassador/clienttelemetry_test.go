package ambassador_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/retry"
)

// collectHistogram returns the data points of histogram name in reader,
// each with its attributes as a map of strings (ints formatted).
func collectHistogram[N int64 | float64](t *testing.T, reader sdkmetric.Reader, name string) []metricdata.HistogramDataPoint[N] {
	t.Helper()
	return testkit.MetricData[metricdata.Histogram[N]](t, reader, name).DataPoints
}

func attrMap(s attribute.Set) map[string]string {
	out := map[string]string{}
	for _, kv := range s.ToSlice() {
		out[string(kv.Key)] = kv.Value.String()
	}
	return out
}

// Each attempt is one measurement of http.client.request.duration (unit s)
// with the semantic conventions' attributes as otelhttp gave them and
// service: a 503 that is retried and the 200 after it are two series, and
// an attempt that could not connect has error.type and no status code.
func TestClientDurationAttributesPerAttempt(t *testing.T) {
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	addr := hostOf(t, up.URL)
	s := newStack(t, ambassador.ServiceConfig{Name: "users", Discovery: discovery.Config{Static: []string{addr}},
		Retry: &retry.Config{RetryOn: []string{"5xx"}, BaseDelay: 1, MaxDelay: 1}}, ambassador.WithMeterProvider(mp), quietLogs)
	body, err := get(t, s, "http://users/x")
	require.NoError(t, err)
	assert.Equal(t, "ok", body)

	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	common := map[string]string{
		"http.request.method": "GET", "server.address": host, "server.port": port, "url.scheme": "http",
		"network.protocol.name": "http", "network.protocol.version": "1.1", "service": "users",
	}
	byStatus := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, dp := range collectHistogram[float64](t, reader, "http.client.request.duration") {
		a := attrMap(dp.Attributes)
		byStatus[a["http.response.status_code"]] = dp
		for k, v := range common {
			assert.Equal(t, v, a[k], "attribute %s", k)
		}
		assert.Len(t, a, len(common)+1, "no other attributes: %v", a)
	}
	require.Len(t, byStatus, 2, "a 503 and a 200 attempt")
	assert.Equal(t, uint64(1), byStatus["503"].Count)
	assert.Equal(t, uint64(1), byStatus["200"].Count)
	assert.Greater(t, byStatus["200"].Sum, 0.0)
	assert.Less(t, byStatus["200"].Sum, 10.0, "seconds, not nanoseconds")

	// An endpoint that refuses connections: error.type, no status code.
	dead := deadAddr(t)
	s2 := newStack(t, ambassador.ServiceConfig{Name: "gone", Discovery: discovery.Config{Static: []string{dead}}},
		ambassador.WithMeterProvider(mp), quietLogs)
	_, err = get(t, s2, "http://gone/x")
	require.Error(t, err)
	var failed []map[string]string
	for _, dp := range collectHistogram[float64](t, reader, "http.client.request.duration") {
		if a := attrMap(dp.Attributes); a["service"] == "gone" {
			failed = append(failed, a)
		}
	}
	require.Len(t, failed, 1)
	assert.Equal(t, "connect-failure", failed[0]["error.type"])
	assert.NotContains(t, failed[0], "http.response.status_code")
}

// http.client.request.body.size is the bytes sent: the Content-Length of
// a body that has one, the bytes read of one that has none.
func TestClientRequestBodySize(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer up.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	s := newStack(t, ambassador.ServiceConfig{Name: "users", Discovery: discovery.Config{Static: []string{hostOf(t, up.URL)}}},
		ambassador.WithMeterProvider(mp), quietLogs)

	post := func(body io.Reader) {
		req, err := http.NewRequest(http.MethodPost, "http://users/x", body)
		require.NoError(t, err)
		resp, err := s.RoundTrip(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	post(strings.NewReader(strings.Repeat("a", 1000)))                // Content-Length 1000
	post(io.MultiReader(strings.NewReader(strings.Repeat("b", 234)))) // chunked: no length
	require.Eventually(t, func() bool {
		dps := collectHistogram[int64](t, reader, "http.client.request.body.size")
		return len(dps) == 1 && dps[0].Count == 2
	}, 5*time.Second, 10*time.Millisecond, "two measurements (the chunked one once the transport closed the body)")
	dps := collectHistogram[int64](t, reader, "http.client.request.body.size")
	assert.Equal(t, int64(1234), dps[0].Sum)
	assert.Equal(t, "POST", attrMap(dps[0].Attributes)["http.request.method"])
}

// With a tracer provider every attempt is a client span "HTTP GET", a
// child of the caller's span, with otelhttp's attributes and the stack's
// (service, outbound.attempt, outbound.endpoint, http.request.resend_count);
// the upstream gets the attempt span's context in traceparent, the
// caller's header is left as it was, and the span ends when the body is
// closed.
func TestAttemptSpansTree(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer otel.SetTextMapPropagator(prev)

	var n atomic.Int64
	seen := make(chan string, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Traceparent")
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer up.Close()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	addr := hostOf(t, up.URL)
	s := newStack(t, ambassador.ServiceConfig{Name: "users", Discovery: discovery.Config{Static: []string{addr}},
		Retry: &retry.Config{RetryOn: []string{"5xx"}, BaseDelay: 1, MaxDelay: 1}}, ambassador.WithTracerProvider(tp), quietLogs)

	ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://users/x?q=1", nil)
	require.NoError(t, err)
	req.Header.Set("X-Mine", "1")
	resp, err := s.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, http.Header{"X-Mine": {"1"}}, req.Header, "the caller's header is not written")
	require.Len(t, spans.Ended(), 1, "the failed attempt's span ended; the answer's is open while its body is")
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(b))
	require.NoError(t, resp.Body.Close())
	parent.End()

	ended := spans.Ended()
	require.Len(t, ended, 3)
	attempts := ended[:2]
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	for i, sp := range attempts {
		nAttempt := i + 1
		assert.Equal(t, "HTTP GET", sp.Name())
		assert.Equal(t, trace.SpanKindClient, sp.SpanKind())
		assert.Equal(t, parent.SpanContext().SpanID(), sp.Parent().SpanID(), "attempt %d is the caller's span's child", nAttempt)
		a := attrMap(attribute.NewSet(sp.Attributes()...))
		assert.Equal(t, "users", a["service"])
		assert.Equal(t, strconv.Itoa(nAttempt), a["outbound.attempt"])
		assert.Equal(t, strconv.Itoa(nAttempt-1), a["http.request.resend_count"])
		assert.Equal(t, addr, a["outbound.endpoint"])
		assert.Equal(t, "GET", a["http.request.method"])
		assert.Equal(t, "http://"+addr+"/x?q=1", a["url.full"])
		assert.Equal(t, host, a["server.address"])
		assert.Equal(t, port, a["server.port"])
		assert.Equal(t, "1.1", a["network.protocol.version"])
		tp := <-seen
		assert.Equal(t, "00-"+sp.SpanContext().TraceID().String()+"-"+sp.SpanContext().SpanID().String()+"-01", tp,
			"attempt %d's traceparent is its own span", nAttempt)
	}
	a1 := attrMap(attribute.NewSet(attempts[0].Attributes()...))
	assert.Equal(t, "503", a1["http.response.status_code"])
	assert.Equal(t, "503", a1["error.type"])
	assert.Equal(t, otelcodes.Error, attempts[0].Status().Code)
	a2 := attrMap(attribute.NewSet(attempts[1].Attributes()...))
	assert.Equal(t, "200", a2["http.response.status_code"])
	assert.NotContains(t, a2, "error.type")
	assert.Equal(t, otelcodes.Unset, attempts[1].Status().Code)
}

// A meter provider that records nothing (no SDK) and the stack without
// providers cost the same allocations: the telemetry layer checks Enabled
// and passes the request on.
func TestNoopMeterProviderAllocatesNothing(t *testing.T) {
	resp := &http.Response{StatusCode: http.StatusOK, Body: staticBody{}}
	base := rtFunc(func(*http.Request) (*http.Response, error) { return resp, nil })
	allocs := func(opts ...ambassador.Option) float64 {
		s := newStack(t, ambassador.ServiceConfig{Name: "users", Discovery: discovery.Config{Static: []string{"10.0.0.1:80"}}},
			append([]ambassador.Option{ambassador.WithBase(base), quietLogs}, opts...)...)
		req, err := http.NewRequest(http.MethodGet, "http://users/x", nil)
		require.NoError(t, err)
		return testing.AllocsPerRun(200, func() {
			resp.Body = staticBody{}
			r, err := s.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = r.Body.Close()
		})
	}
	none := allocs()
	assert.Equal(t, none, allocs(ambassador.WithMeterProvider(noop.NewMeterProvider())), "a no-op meter provider")

	// And with an SDK behind it, a measurement allocates nothing either.
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	assert.Equal(t, none, allocs(ambassador.WithMeterProvider(mp)), "an SDK meter provider")
	require.NotEmpty(t, collectHistogram[float64](t, reader, "http.client.request.duration"))
}
