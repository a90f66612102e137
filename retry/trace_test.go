package retry_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/outbound-go/outbound/retry"
)

func TestAttemptSpanEventsAndServiceAttribute(t *testing.T) {
	up := &flaky{n: 1, fail: failWith(502)}
	srv, _, mk := serve(t, up)
	client, _, m := mk(retry.Config{}, retry.WithService("users"))

	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("test").Start(context.Background(), "call users")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	require.NoError(t, err)
	readAll(t, resp)
	span.End()

	host := mustHost(t, srv.URL)
	spans := sr.Ended()
	require.Len(t, spans, 1)
	events := spans[0].Events()
	require.Len(t, events, 2)
	for i, ev := range events {
		attrs := attribute.NewSet(ev.Attributes...)
		n, _ := attrs.Value("outbound.attempt")
		assert.EqualValues(t, i+1, n.AsInt64())
		ep, _ := attrs.Value("outbound.endpoint")
		assert.Equal(t, host, ep.AsString())
		resend, ok := attrs.Value("http.request.resend_count")
		if i == 0 {
			assert.False(t, ok, "the first attempt is no resend")
		} else {
			assert.EqualValues(t, i, resend.AsInt64())
		}
	}

	var rm = m.outcomes(t)
	assert.Equal(t, map[string]int64{"retried": 1, "success": 1}, rm)
	assert.True(t, hasServiceAttr(t, m, "users"))
}

func mustHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}

func TestWithTracerProviderMakesChildSpans(t *testing.T) {
	up := &flaky{n: 1, fail: failWith(503)}
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	srv, _, mk := serve(t, up)
	client, _, _ := mk(retry.Config{}, retry.WithTracerProvider(tp))

	ctx, parent := tp.Tracer("test").Start(context.Background(), "call")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	require.NoError(t, err)
	readAll(t, resp)
	parent.End()

	var attempts []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == "outbound.retry.attempt" {
			attempts = append(attempts, s)
		}
	}
	require.Len(t, attempts, 2)
	for i, s := range attempts {
		assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID())
		attrs := attribute.NewSet(s.Attributes()...)
		n, _ := attrs.Value("outbound.attempt")
		assert.EqualValues(t, i+1, n.AsInt64())
		ep, _ := attrs.Value("outbound.endpoint")
		assert.Equal(t, mustHost(t, srv.URL), ep.AsString())
	}
	assert.Empty(t, sr.Ended()[len(sr.Ended())-1].Events(), "no events on the caller's span when attempts are spans")
}
