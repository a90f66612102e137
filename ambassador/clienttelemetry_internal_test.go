package ambassador

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
)

// durationPoints collects the http.client.request.duration data points.
func durationPoints(t *testing.T, r *sdkmetric.ManualReader) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "http.client.request.duration" {
				assert.Equal(t, "s", m.Unit)
				return m.Data.(metricdata.Histogram[float64]).DataPoints
			}
		}
	}
	return nil
}

func attrMap(s attribute.Set) map[string]string {
	out := map[string]string{}
	for _, kv := range s.ToSlice() {
		out[string(kv.Key)] = kv.Value.String()
	}
	return out
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestClientTelemetryMeasuresEachAttemptWithSemconvAttributes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	defer up.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ct := newClientTelemetry(tr, mp, nil)

	for range 3 {
		req, err := http.NewRequest(http.MethodGet, up.URL+"/x", nil)
		require.NoError(t, err)
		resp, err := ct.RoundTrip(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	pts := durationPoints(t, reader)
	require.Len(t, pts, 1, "one attribute set for three identical attempts")
	assert.EqualValues(t, 3, pts[0].Count)
	host, port := splitHostPort(up.Listener.Addr().String())
	assert.Equal(t, map[string]string{
		"http.request.method":       "GET",
		"server.address":            host,
		"server.port":               strconv.Itoa(port),
		"url.scheme":                "http",
		"network.protocol.name":     "http",
		"network.protocol.version":  "1.1",
		"http.response.status_code": "418",
	}, attrMap(pts[0].Attributes))
	assert.Len(t, *ct.sets.Load(), 1, "the attribute set is built once")
}

func TestClientTelemetryRecordsTheErrorTypeOfAFailedAttempt(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	boom := errors.New("boom")
	ct := newClientTelemetry(rtFunc(func(*http.Request) (*http.Response, error) { return nil, boom }), mp, nil)

	req, err := http.NewRequest("purge", "http://10.0.0.1:80/x", nil)
	require.NoError(t, err)
	_, err = ct.RoundTrip(req)
	require.ErrorIs(t, err, boom)
	pts := durationPoints(t, reader)
	require.Len(t, pts, 1)
	got := attrMap(pts[0].Attributes)
	assert.Equal(t, "_OTHER", got["http.request.method"])
	assert.Equal(t, "10.0.0.1", got["server.address"])
	assert.NotContains(t, got, "server.port", "the scheme's default port is left out")
	assert.NotContains(t, got, "http.response.status_code")
	assert.Equal(t, "errors.errorString", got["error.type"])
}

func TestClientTelemetrySpanAndPropagation(t *testing.T) {
	var gotTraceparent string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTraceparent = r.Header.Get("Traceparent")
		_, _ = io.WriteString(w, "hello")
	}))
	defer up.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()

	for _, sampled := range []bool{true, false} {
		t.Run("sampled="+strconv.FormatBool(sampled), func(t *testing.T) {
			spans := tracetest.NewSpanRecorder()
			sampler := sdktrace.NeverSample()
			if sampled {
				sampler = sdktrace.AlwaysSample()
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans), sdktrace.WithSampler(sampler))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			ct := newClientTelemetry(tr, nil, tp)
			ct.prop = propagation.TraceContext{}

			req, err := http.NewRequest(http.MethodGet, up.URL+"/x", nil)
			require.NoError(t, err)
			gotTraceparent = ""
			resp, err := ct.RoundTrip(req)
			require.NoError(t, err)
			assert.Empty(t, req.Header, "the caller's request is not changed")
			assert.Empty(t, spans.Ended(), "the span lasts until the body is done")
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, "hello", string(body))
			require.NoError(t, resp.Body.Close())
			assert.NotEmpty(t, gotTraceparent, "the trace context reaches the upstream, sampled or not")
			if !sampled {
				assert.Empty(t, spans.Ended())
				return
			}
			require.Len(t, spans.Ended(), 1)
			sp := spans.Ended()[0]
			assert.Equal(t, "HTTP GET", sp.Name())
			assert.Contains(t, gotTraceparent, sp.SpanContext().SpanID().String())
			attrs := attrMap(attribute.NewSet(sp.Attributes()...))
			assert.Equal(t, "200", attrs["http.response.status_code"])
			assert.Equal(t, up.URL+"/x", attrs["url.full"])
		})
	}
}

// Without a recorded span and with a propagator that writes nothing, the
// attempt goes on as the very request the layer was given.
func TestClientTelemetryPassesAnUnrecordedRequestThrough(t *testing.T) {
	var seen *http.Request
	ct := newClientTelemetry(rtFunc(func(r *http.Request) (*http.Response, error) {
		seen = r
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	}), nil, nil)
	ct.prop = propagation.NewCompositeTextMapPropagator()
	req := httptest.NewRequest(http.MethodGet, "http://users/x", nil)
	_, err := ct.RoundTrip(req)
	require.NoError(t, err)
	assert.Same(t, req, seen)
}

func TestSplitHostPort(t *testing.T) {
	for in, want := range map[string]struct {
		host string
		port int
	}{
		"":               {"", -1},
		"a":              {"a", -1},
		"a:8080":         {"a", 8080},
		"[::1]":          {"::1", -1},
		"[::1]:9":        {"::1", 9},
		"a:x":            {"a", -1},
		"[::1":           {"", -1},
		"a:99999":        {"a", -1},
		"127.0.0.1:8081": {"127.0.0.1", 8081},
	} {
		h, p := splitHostPort(in)
		assert.Equal(t, want.host, h, in)
		assert.Equal(t, want.port, p, in)
	}
}

// Without an explicit provider the attempt's span comes from the global
// one: nothing (not even a span start) while no SetTracerProvider replaced
// OpenTelemetry's placeholder, recorded spans once one did.
func TestClientTelemetryFollowsTheGlobalTracerProvider(t *testing.T) {
	rt := rtFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	ct := newClientTelemetry(rt, nil, nil)
	require.True(t, globalTracerUnset(), "no test in this package sets the global tracer provider before this one")
	_, err := ct.RoundTrip(httptest.NewRequest(http.MethodGet, "http://users/x", nil))
	require.NoError(t, err)

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	assert.False(t, globalTracerUnset())
	_, err = ct.RoundTrip(httptest.NewRequest(http.MethodGet, "http://users/x", nil))
	require.NoError(t, err)
	require.Len(t, spans.Ended(), 1)
	assert.Equal(t, "HTTP GET", spans.Ended()[0].Name())
}
