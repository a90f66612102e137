package proxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// With tracing on, a call on the native gRPC path gets what a proxied HTTP
// request gets: a server span that continues the caller's traceparent, and
// under it one client span per attempt carrying service, outbound.attempt,
// http.request.resend_count and the endpoint, whose own trace context is
// what the upstream receives. A failed attempt's span has an error status.
func TestNativeGRPCTracesEveryAttempt(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	u := &rawUpstreamSvc{}
	up := startRawUpstream(t, u)
	cfg, err := proxy.ParseConfig([]byte("admin: {address: 127.0.0.1:0}\nlisteners: [{address: 127.0.0.1:0, service: up}]\n"+
		"services:\n  up: {protocol: h2c, discovery: {static: ["+up+"]}, retry: {}}\n"), "")
	require.NoError(t, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()), proxy.WithTracerProvider(tp))
	require.NoError(t, err)
	addr := serve(t, s)[0][len("http://"):]
	cc := rawClient(t, addr)

	const callerTrace, callerSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	in, out := []byte("x"), []byte(nil)
	require.NoError(t, cc.Invoke(ctx, "/t.T/Flaky", &in, &out), "the second attempt succeeds")
	assert.Equal(t, "ok", string(out))

	var server sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		server, attempts = nil, nil
		for _, sp := range spans.Ended() {
			switch sp.SpanKind() {
			case trace.SpanKindServer:
				server = sp
			case trace.SpanKindClient:
				attempts = append(attempts, sp)
			}
		}
		return server != nil && len(attempts) == 2
	}, 5*time.Second, 10*time.Millisecond, "a server span and two attempt spans end")

	assert.Equal(t, callerTrace, server.SpanContext().TraceID().String())
	assert.Equal(t, callerSpan, server.Parent().SpanID().String(), "the server span continues the caller's")
	for i, sp := range attempts {
		n := i + 1
		assert.Equal(t, "grpc /t.T/Flaky", sp.Name())
		assert.Equal(t, server.SpanContext().SpanID(), sp.Parent().SpanID(), "attempt %d is a child of the server span", n)
		attrs := attribute.NewSet(sp.Attributes()...)
		for k, want := range map[attribute.Key]attribute.Value{
			"service":                   attribute.StringValue("up"),
			"outbound.attempt":          attribute.IntValue(n),
			"http.request.resend_count": attribute.IntValue(n - 1),
			"outbound.endpoint":         attribute.StringValue(up),
		} {
			got, ok := attrs.Value(k)
			assert.True(t, ok, "attempt %d has %s", n, k)
			assert.Equal(t, want, got, "attempt %d: %s", n, k)
		}
	}
	assert.Equal(t, otelcodes.Error, attempts[0].Status().Code, "the UNAVAILABLE attempt")
	assert.Equal(t, otelcodes.Unset, attempts[1].Status().Code)

	u.mu.Lock()
	got := u.md.Get("traceparent") // of the last call: the second attempt
	u.mu.Unlock()
	require.Len(t, got, 1, "one traceparent upstream, the attempt's, not the caller's as well")
	assert.Equal(t, "00-"+callerTrace+"-"+attempts[1].SpanContext().SpanID().String()+"-01", got[0])
}
