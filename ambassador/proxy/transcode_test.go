package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

const checkPath = "/grpc.health.v1.Health/Check"

// TestTranscodeCheck: grpc.health.v1 Check with a JSON body answers the
// response message as JSON, with descriptors from server reflection v1,
// from a server with only v1alpha, and from a descriptor set file (the
// upstream then has no reflection at all).
func TestTranscodeCheck(t *testing.T) {
	cases := []struct {
		name string
		kind reflectionKind
		ts   string
	}{
		{"reflection v1", reflectionV1AndAlpha, "{}"},
		{"reflection v1alpha only", reflectionAlphaOnly, `{descriptor_set: ""}`},
		{"descriptor set file", noReflection, "{descriptor_set: health.pb}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up, _ := startHealthFake(t, tc.kind)
			dir := t.TempDir()
			healthDescriptorSet(t, dir, "health.pb")
			url := transcodeAmbassador(t, dir, transcodeConfig(up, tc.ts, ""))
			c := client(t)
			resp, body := postJSON(t, c, url+checkPath, `{"service": "users"}`)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.JSONEq(t, `{"status": "SERVING"}`, body)
			assert.Empty(t, resp.Header.Get(proxy.HeaderError))

			// An empty body is the empty request message: the server's
			// overall health.
			resp, body = postJSON(t, c, url+checkPath, "")
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.JSONEq(t, `{"status": "SERVING"}`, body)
		})
	}
}

// TestTranscodeWatchStreams: a server-streaming method answers NDJSON, one
// bare message per line as each arrives (the second line comes only after
// the test changes the status, so it must have been flushed on its own).
func TestTranscodeWatchStreams(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind reflectionKind
		ts   string
	}{{"reflection", reflectionV1AndAlpha, "{}"}, {"descriptor set file", noReflection, "{descriptor_set: health.pb}"}} {
		t.Run(tc.name, func(t *testing.T) {
			up, f := startHealthFake(t, tc.kind)
			dir := t.TempDir()
			healthDescriptorSet(t, dir, "health.pb")
			url := transcodeAmbassador(t, dir, transcodeConfig(up, tc.ts, ""))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/grpc.health.v1.Health/Watch", strings.NewReader(`{"service":"users"}`))
			require.NoError(t, err)
			resp, err := client(t).Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
			lines := bufio.NewScanner(resp.Body)
			require.True(t, lines.Scan(), lines.Err())
			assert.JSONEq(t, `{"status":"SERVING"}`, lines.Text())
			f.hs.SetServingStatus("users", healthpb.HealthCheckResponse_NOT_SERVING)
			require.True(t, lines.Scan(), lines.Err())
			assert.JSONEq(t, `{"status":"NOT_SERVING"}`, lines.Text())
		})
	}
}

// TestTranscodeStreamErrorAfterFirstMessage: an error after the first
// message is one last line {"error": {...}}.
func TestTranscodeStreamErrorAfterFirstMessage(t *testing.T) {
	up, _ := startHealthFake(t, reflectionV1AndAlpha)
	url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(up, "{}", ""))
	resp, body := postJSON(t, client(t), url+"/grpc.health.v1.Health/Watch", `{"service":"break-after"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	require.Len(t, lines, 2, body)
	assert.JSONEq(t, `{"status":"SERVING"}`, lines[0])
	assert.JSONEq(t, `{"error": {"code": 15, "message": "broke after one", "details": []}}`, lines[1])
}

// TestTranscodeErrorTable: every gRPC code from the upstream becomes
// DESIGN.md's HTTP status with the JSON body {"code", "message",
// "details"} (details as protojson Any) and no X-Outbound-Error.
func TestTranscodeErrorTable(t *testing.T) {
	up, _ := startHealthFake(t, reflectionV1AndAlpha)
	url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(up, "{}", ""))
	c := client(t)
	want := map[codes.Code]int{
		codes.Canceled: 499, codes.Unknown: 500, codes.InvalidArgument: 400, codes.DeadlineExceeded: 504,
		codes.NotFound: 404, codes.AlreadyExists: 409, codes.PermissionDenied: 403, codes.Unauthenticated: 401,
		codes.ResourceExhausted: 429, codes.FailedPrecondition: 400, codes.Aborted: 409, codes.OutOfRange: 400,
		codes.Unimplemented: 501, codes.Internal: 500, codes.Unavailable: 503, codes.DataLoss: 500,
	}
	for code, httpStatus := range want {
		t.Run(code.String(), func(t *testing.T) {
			name := "code:" + strings.TrimSpace(jsonNumber(int(code)))
			resp, body := postJSON(t, c, url+checkPath, `{"service":"`+name+`"}`)
			assert.Equal(t, httpStatus, resp.StatusCode, body)
			assert.Empty(t, resp.Header.Get(proxy.HeaderError), "the upstream's answer")
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var got struct {
				Code    int               `json:"code"`
				Message string            `json:"message"`
				Details []json.RawMessage `json:"details"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &got), body)
			assert.Equal(t, int(code), got.Code)
			assert.Equal(t, "fake says "+name, got.Message)
			require.Len(t, got.Details, 1)
			assert.JSONEq(t, `{"@type": "type.googleapis.com/google.rpc.BadRequest",
				"fieldViolations": [{"field": "service", "description": "steered"}]}`, string(got.Details[0]))
		})
	}
}

func jsonNumber(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestTranscodeRefusesWithoutCallingUpstream: a body that is not JSON, or
// not JSON of the request message (an unknown field, a wrong type), is 400
// bad_request and an unknown method 404 no_route, none of them calling the
// upstream.
func TestTranscodeRefusesWithoutCallingUpstream(t *testing.T) {
	up, f := startHealthFake(t, reflectionV1AndAlpha)
	url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(up, "{}", ""))
	c := client(t)
	for _, tc := range []struct {
		name, path, body string
		status           int
		reason           string
	}{
		{"not JSON", checkPath, `{"service": `, 400, proxy.ReasonBadRequest},
		{"unknown field", checkPath, `{"service": "users", "colour": "blue"}`, 400, proxy.ReasonBadRequest},
		{"wrong type", checkPath, `{"service": 7}`, 400, proxy.ReasonBadRequest},
		{"unknown method", "/grpc.health.v1.Health/Nope", `{}`, 404, proxy.ReasonNoRoute},
		{"unknown service", "/pkg.Nothing/Check", `{}`, 404, proxy.ReasonNoRoute},
		{"not a method path", "/v1/health", `{}`, 404, proxy.ReasonNoRoute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := postJSON(t, c, url+tc.path, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode, body)
			assert.Equal(t, tc.reason, resp.Header.Get(proxy.HeaderError))
		})
	}
	// GET on a method path is no route either: gRPC-style paths take POST.
	resp, err := c.Get(url + checkPath)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, int64(0), f.checks.Load(), "no call reached the upstream")
}

// TestTranscodeBodyLimit: a body over transcode.DefaultMaxBody is 413.
func TestTranscodeBodyLimit(t *testing.T) {
	up, f := startHealthFake(t, reflectionV1AndAlpha)
	url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(up, "{}", ""))
	big := `{"service": "` + strings.Repeat("a", 4<<20) + `"}`
	resp, _ := postJSON(t, client(t), url+checkPath, big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, proxy.ReasonBadRequest, resp.Header.Get(proxy.HeaderError))
	assert.Equal(t, int64(0), f.checks.Load())
}

// TestTranscodeRetriesUnavailable: a transcoded call is a gRPC call,
// retried on retriable_grpc_codes: the first attempt's UNAVAILABLE is
// retried and the caller sees the second attempt's answer.
func TestTranscodeRetriesUnavailable(t *testing.T) {
	up, f := startHealthFake(t, reflectionV1AndAlpha)
	url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(up, "{}",
		"retry: {max_attempts: 3, base_delay: 1ms, max_delay: 2ms, retriable_grpc_codes: [UNAVAILABLE]}"))
	resp, body := postJSON(t, client(t), url+checkPath, `{"service":"flaky"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.JSONEq(t, `{"status":"SERVING"}`, body)
	assert.Equal(t, int64(2), f.checks.Load(), "one retry")
}

// TestTranscodeMetadata: Grpc-Metadata-* and Authorization request headers
// are call metadata; response header and trailer metadata come back as
// Grpc-Metadata-* headers ("-bin" values base64).
func TestTranscodeMetadata(t *testing.T) {
	up, _ := startHealthFake(t, reflectionV1AndAlpha)
	url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(up, "{}", ""))
	resp, body := postJSON(t, client(t), url+checkPath, `{"service":"echo-md"}`,
		"Grpc-Metadata-Tenant", "acme", "Authorization", "Bearer t0k", "X-Other", "not metadata")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "acme", resp.Header.Get("Grpc-Metadata-X-Tenant"))
	assert.Equal(t, "Bearer t0k", resp.Header.Get("Grpc-Metadata-X-Auth"))
	assert.Equal(t, "AAE=", resp.Header.Get("Grpc-Metadata-X-Bin"))
	assert.Empty(t, resp.Header.Values("Grpc-Metadata-Content-Type"), "the transport's headers are not metadata")

	// A -bin header is base64, padded or not, and reaches the upstream as
	// the bytes it encodes (echoed back, base64 again); one that is not
	// base64 is refused before any call.
	for _, v := range []string{"AP8=", "AP8"} {
		resp, body = postJSON(t, client(t), url+checkPath, `{"service":"echo-md"}`, "Grpc-Metadata-Blob-Bin", v)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		assert.Equal(t, "AP8=", resp.Header.Get("Grpc-Metadata-X-Echo-Bin"), "sent as %q", v)
	}
	resp, body = postJSON(t, client(t), url+checkPath, `{"service":"echo-md"}`, "Grpc-Metadata-Blob-Bin", "not base64!")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	assert.Equal(t, "bad_request", resp.Header.Get(proxy.HeaderError))
	assert.Contains(t, body, "Grpc-Metadata-Blob-Bin")
}

// TestTranscodeRoute: transcode: on a route; the other route of the
// listener still proxies plain HTTP.
func TestTranscodeRoute(t *testing.T) {
	up, _ := startHealthFake(t, reflectionV1AndAlpha)
	web := named(t, "web")
	yml := "admin: {address: 127.0.0.1:0}\nlisteners:\n  - address: 127.0.0.1:0\n    routes:\n" +
		"      - {path_prefix: /grpc.health.v1.Health/, service: up, transcode: {}}\n" +
		"      - {service: web}\n" +
		"services:\n  up:\n    protocol: h2c\n    discovery: {static: [" + up + "]}\n" +
		"  web:\n    discovery: {static: [" + web + "]}\n"
	url := transcodeAmbassador(t, t.TempDir(), yml)
	c := client(t)
	resp, body := postJSON(t, c, url+checkPath, `{"service":"users"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.JSONEq(t, `{"status":"SERVING"}`, body)
	code, _, got := fetch(t, c, http.MethodGet, url+"/page", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, got, "web")
}

// TestTranscodeListenerStillProxiesGRPC: a gRPC client can use a transcode
// listener: application/grpc requests are proxied as they are.
func TestTranscodeListenerStillProxiesGRPC(t *testing.T) {
	up, _ := startHealthFake(t, reflectionV1AndAlpha)
	url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(up, "{}", ""))
	cc, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "users"})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
}

// TestTranscodeRateLimitedIsLocal: a call the service's limiter refuses is
// the ambassador's answer, 429 rate_limited with Retry-After, as on the
// HTTP path.
func TestTranscodeRateLimitedIsLocal(t *testing.T) {
	up, f := startHealthFake(t, noReflection)
	dir := t.TempDir()
	healthDescriptorSet(t, dir, "health.pb")
	url := transcodeAmbassador(t, dir, transcodeConfig(up, "{descriptor_set: health.pb}", "ratelimit: {rps: 0.001, burst: 1}"))
	c := client(t)
	resp, body := postJSON(t, c, url+checkPath, `{"service":"users"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	resp, body = postJSON(t, c, url+checkPath, `{"service":"users"}`)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	assert.Equal(t, proxy.ReasonRateLimited, resp.Header.Get(proxy.HeaderError))
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Equal(t, int64(1), f.checks.Load())
}

// TestTranscodeReflectionFetchedOnce: concurrent first calls share one
// reflection fetch; a failed fetch is not kept (the next call fetches
// again); a reload fetches anew.
func TestTranscodeReflectionFetchedOnce(t *testing.T) {
	up, f := startHealthFake(t, reflectionV1AndAlpha)
	f.failReflections.Store(1)
	dir := t.TempDir()
	yml := transcodeConfig(up, "{}", "")
	path := dir + "/ambassador.yaml"
	require.NoError(t, os.WriteFile(path, []byte(yml), 0o600))
	cfg, err := proxy.LoadConfig(path)
	require.NoError(t, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	url := serve(t, s)[0]
	c := client(t)

	resp, body := postJSON(t, c, url+checkPath, `{"service":"users"}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	assert.JSONEq(t, `{"code": 14, "message": "reflection is down", "details": []}`, body)
	assert.Empty(t, resp.Header.Get(proxy.HeaderError), "the upstream's answer")
	require.Equal(t, int64(1), f.reflections.Load())

	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Go(func() {
			resp, _ := postJSON(t, c, url+checkPath, `{"service":"users"}`)
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for _, code := range codes {
		assert.Equal(t, http.StatusOK, code)
	}
	assert.Equal(t, int64(2), f.reflections.Load(), "the failed fetch was not kept; the 20 calls shared one fetch")

	cfg2, err := proxy.LoadConfig(path)
	require.NoError(t, err)
	require.NoError(t, s.Reload(cfg2))
	resp, body = postJSON(t, c, url+checkPath, `{"service":"users"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, int64(3), f.reflections.Load(), "a reload fetches again")
}

// TestTranscodeClientStreamingIs501: a client-streaming method has no JSON
// form: 501 with a message saying so, no upstream call.
func TestTranscodeClientStreamingIs501(t *testing.T) {
	dir := t.TempDir()
	fd := &descriptorpb.FileDescriptorProto{
		Name: proto.String("up.proto"), Package: proto.String("up"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("M")}},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("S"), Method: []*descriptorpb.MethodDescriptorProto{
			{Name: proto.String("Upload"), InputType: proto.String(".up.M"), OutputType: proto.String(".up.M"), ClientStreaming: proto.Bool(true)},
		}}},
	}
	b, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{fd}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dir+"/up.pb", b, 0o600))
	up, f := startHealthFake(t, noReflection)
	url := transcodeAmbassador(t, dir, transcodeConfig(up, "{descriptor_set: up.pb}", ""))
	resp, body := postJSON(t, client(t), url+"/up.S/Upload", `{}`)
	assert.Equal(t, http.StatusNotImplemented, resp.StatusCode)
	assert.Contains(t, body, "client- or bidi-streaming")
	assert.Equal(t, int64(0), f.checks.Load()+f.reflections.Load())
}

// TestTranscodeMetricsRouteIsMethod: http.server.request.duration and the
// access log record a transcoded call with the gRPC method as the route.
func TestTranscodeMetricsRouteIsMethod(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	var logs syncBuffer
	up, _ := startHealthFake(t, reflectionV1AndAlpha)
	url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(up, "{}", ""), proxy.WithMeterProvider(mp),
		proxy.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	resp, _ := postJSON(t, client(t), url+checkPath, `{"service":"users"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = postJSON(t, client(t), url+checkPath, `{"service":"code:5"}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	want := map[attribute.Distinct]uint64{
		attrs(http.MethodPost, 200, checkPath, "up"): 1,
		attrs(http.MethodPost, 404, checkPath, "up"): 1,
	}
	require.Eventually(t, func() bool {
		got := durations(t, reader)
		for k, n := range want {
			if got[k] != n {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "route=/grpc.health.v1.Health/Check service=up endpoint="+up+" status=404")
	}, 5*time.Second, 10*time.Millisecond, "access log:\n%s", logs.String())
}

// TestTranscodeCircuitOpenIsLocal: once the endpoint's breaker opens, a
// transcoded call is refused by the ambassador, 503 with X-Outbound-Error,
// and never reaches the upstream; the upstream's own UNAVAILABLE before it
// carried no X-Outbound-Error. The breaker is per endpoint, at the
// balancer's pick (the stack's DialOptions), so the service's one endpoint
// ejected is no_endpoints, as on the HTTP path (DESIGN.md).
func TestTranscodeCircuitOpenIsLocal(t *testing.T) {
	up, f := startHealthFake(t, noReflection)
	dir := t.TempDir()
	healthDescriptorSet(t, dir, "health.pb")
	url := transcodeAmbassador(t, dir, transcodeConfig(up, "{descriptor_set: health.pb}",
		"breaker: {consecutive_failures: 1, open_timeout: 1m}"))
	c := client(t)
	resp, body := postJSON(t, c, url+checkPath, `{"service":"code:14"}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	assert.Empty(t, resp.Header.Get(proxy.HeaderError), "the upstream's UNAVAILABLE")
	resp, body = postJSON(t, c, url+checkPath, `{"service":"users"}`)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	assert.Equal(t, proxy.ReasonNoEndpoints, resp.Header.Get(proxy.HeaderError))
	assert.Equal(t, int64(1), f.checks.Load())
}

// TestTranscodeTimeoutIsLocal: the service's timeout is the call's
// deadline; when it passes the ambassador answers 504 upstream_timeout.
func TestTranscodeTimeoutIsLocal(t *testing.T) {
	up := grpcUpstream(t) // unknown methods block until their deadline
	dir := t.TempDir()
	writeSet(t, dir, "extra.pb", protodescHealthWithExtraMethod(t))
	url := transcodeAmbassador(t, dir, transcodeConfig(up, "{descriptor_set: extra.pb}", "timeout: 200ms"))
	resp, body := postJSON(t, client(t), url+"/grpc.health.v1.Health/Slow", `{}`)
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, body)
	assert.Equal(t, proxy.ReasonUpstreamTimeout, resp.Header.Get(proxy.HeaderError))
}

// TestTranscodeTraceContext: the upstream gets the caller's traceparent as
// it came when tracing is off, and the ambassador's server span (same
// trace, its own span id) when it is on.
func TestTranscodeTraceContext(t *testing.T) {
	const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	t.Run("tracing off", func(t *testing.T) {
		up, _ := startHealthFake(t, reflectionV1AndAlpha)
		url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(up, "{}", ""))
		resp, body := postJSON(t, client(t), url+checkPath, `{"service":"echo-md"}`, "Traceparent", caller)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		assert.Equal(t, caller, resp.Header.Get("Grpc-Metadata-X-Traceparent"))
	})
	t.Run("tracing on", func(t *testing.T) {
		prev := otel.GetTextMapPropagator()
		otel.SetTextMapPropagator(propagation.TraceContext{})
		t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		up, _ := startHealthFake(t, reflectionV1AndAlpha)
		url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(up, "{}", ""), proxy.WithTracerProvider(tp))
		resp, body := postJSON(t, client(t), url+checkPath, `{"service":"echo-md"}`, "Traceparent", caller)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		got := strings.Split(resp.Header.Get("Grpc-Metadata-X-Traceparent"), "-")
		want := strings.Split(caller, "-")
		require.Len(t, got, 4)
		assert.Equal(t, want[1], got[1], "the caller's trace")
		assert.NotEqual(t, want[2], got[2], "the server span is the parent")
	})
}

// TestTranscodeReflectionIsNotAnAttempt: the reflection fetch made for the
// first call is not an attempt of that call: its access-log line says one
// attempt, at the endpoint that answered it.
func TestTranscodeReflectionIsNotAnAttempt(t *testing.T) {
	a, _ := startHealthFake(t, reflectionV1AndAlpha)
	b, _ := startHealthFake(t, reflectionV1AndAlpha)
	var logs syncBuffer
	url := transcodeAmbassador(t, t.TempDir(), transcodeConfig(a+", "+b, "{}", ""),
		proxy.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	resp, body := postJSON(t, client(t), url+checkPath, `{"service":"users"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "msg=request") }, 5*time.Second, 10*time.Millisecond)
	assert.Regexp(t, `route=/grpc.health.v1.Health/Check service=up endpoint=127.0.0.1:\d+ status=200 attempts=1 `, logs.String())
}
