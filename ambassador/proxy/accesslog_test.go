package proxy_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
)

func TestWithAccessLogSeparatesTheAccessLog(t *testing.T) {
	var procLog, accessLog syncBuffer
	s, err := proxy.NewServer(&proxy.Config{
		Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Service: "users"}},
		Services:  map[string]ambassador.ServiceConfig{"users": svc(named(t, "users"))},
	}, proxy.WithLogger(slog.New(slog.NewJSONHandler(&procLog, nil))),
		proxy.WithAccessLog(slog.New(slog.NewJSONHandler(&accessLog, nil))))
	require.NoError(t, err)
	urls := serve(t, s)
	resp, err := client(t).Post(urls[0]+"/u", "text/plain", strings.NewReader("0123456789"))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The line is written when the handler returns, which may be after the
	// client has its answer.
	require.Eventually(t, func() bool { return strings.Contains(accessLog.String(), `"msg":"request"`) },
		5*time.Second, 5*time.Millisecond)
	assert.Contains(t, procLog.String(), `"msg":"listening"`)
	assert.NotContains(t, procLog.String(), `"msg":"request"`)
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(accessLog.String())), &line), accessLog.String())
	assert.Equal(t, "request", line["msg"])
	assert.Equal(t, strings.TrimPrefix(urls[0], "http://"), line["host"])
	assert.Contains(t, line["remote"], "127.0.0.1:")
	assert.EqualValues(t, 10, line["bytes_in"])
	assert.EqualValues(t, len("users"), line["bytes_out"])
	assert.IsType(t, 0.0, line["duration_ms"])
	assert.NotContains(t, line, "trace_id", "no span, no traceparent")
}
