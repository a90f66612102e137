package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The observed peer must do the work it is measured for: proxy the
// request, write its access line and record both duration metrics.
func TestObservedProxyLogsAndMeasures(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer up.Close()
	target, err := url.Parse(up.URL)
	require.NoError(t, err)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }, Transport: tr}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	var log bytes.Buffer
	front := httptest.NewServer(observed(rp, mp, &log))
	defer front.Close()

	resp, err := http.Get(front.URL + "/path")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	require.Equal(t, "hello", string(body))

	line := log.String()
	for _, want := range []string{"msg=request", "method=GET", "path=/path", "status=200", "bytes_out=5"} {
		require.Contains(t, line, want)
	}
	names := testkit.MetricNames(t, reader)
	assert.Contains(t, names, "http.server.request.duration")
	assert.Contains(t, names, "http.client.request.duration")
}
