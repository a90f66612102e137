package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/ratelimit"
)

// named starts an upstream that answers its name.
func named(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func svc(addr string) ambassador.ServiceConfig {
	return ambassador.ServiceConfig{Discovery: discovery.Config{Static: []string{addr}}}
}

// serve runs s until the test ends and returns the listener URLs.
func serve(t *testing.T, s *proxy.Server) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	var urls []string
	for _, a := range s.Addrs() {
		urls = append(urls, "http://"+a.String())
	}
	return urls
}

func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func fetch(t *testing.T, c *http.Client, method, url, host string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get(proxy.HeaderError), string(b)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRoutingFirstMatchWins(t *testing.T) {
	cfg := &proxy.Config{
		Admin: proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{
			{Address: "127.0.0.1:0", Routes: []proxy.RouteConfig{
				{Host: "users.internal", PathPrefix: "/admin/", Service: "admin"},
				{Host: "users.internal", Service: "users"},
				{PathPrefix: "/pay/", Service: "payments"},
				{Host: "[::1]", Service: "v6"},
			}},
			{Address: "127.0.0.1:0", Service: "users"},
		},
		Services: map[string]ambassador.ServiceConfig{
			"admin":    svc(named(t, "admin")),
			"users":    svc(named(t, "users")),
			"payments": svc(named(t, "payments")),
			"v6":       svc(named(t, "v6")),
		},
	}
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	urls := serve(t, s)
	c := client(t)
	for _, tc := range []struct {
		host, path string
		want       string // body, or "no_route"
	}{
		{"users.internal", "/admin/x", "admin"},
		{"USERS.Internal:8080", "/admin/x", "admin"},
		{"users.internal", "/x", "users"},
		{"users.internal", "/pay/x", "users"}, // host route comes first
		{"other", "/pay/x", "payments"},
		{"other", "/payx", "no_route"},
		{"[::1]:99", "/", "v6"},
		{"users.internal.evil", "/", "no_route"},
	} {
		t.Run(tc.host+tc.path, func(t *testing.T) {
			code, reason, body := fetch(t, c, http.MethodGet, urls[0]+tc.path, tc.host)
			if tc.want == "no_route" {
				assert.Equal(t, http.StatusNotFound, code)
				assert.Equal(t, "no_route", reason)
				return
			}
			assert.Equal(t, http.StatusOK, code)
			assert.Equal(t, tc.want, body)
			assert.Empty(t, reason)
		})
	}
	code, _, body := fetch(t, c, http.MethodGet, urls[1]+"/anything", "whatever.example")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "users", body, "a service: listener takes every host")
}

func TestNewServerRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]*proxy.Config{
		"nil":          nil,
		"no listeners": {},
		"same address twice": {Listeners: []proxy.ListenerConfig{
			{Address: "127.0.0.1:1", Service: "a"}, {Address: "127.0.0.1:1", Service: "a"},
		}, Services: map[string]ambassador.ServiceConfig{"a": svc("127.0.0.1:2")}},
		"unknown service": {Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:1", Service: "nope"}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := proxy.NewServer(cfg)
			assert.Error(t, err)
		})
	}
}

func TestRunReturnsBindFailure(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	s, err := proxy.NewServer(&proxy.Config{
		Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{{Address: busy.Addr().String(), Service: "a"}},
		Services:  map[string]ambassador.ServiceConfig{"a": svc("127.0.0.1:1")},
	}, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	err = s.Run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), busy.Addr().String())
}

func TestAccessLogLine(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	s, err := proxy.NewServer(&proxy.Config{
		Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Routes: []proxy.RouteConfig{{PathPrefix: "/u/", Service: "users"}}}},
		Services:  map[string]ambassador.ServiceConfig{"users": svc(named(t, "users"))},
	}, proxy.WithLogger(logger))
	require.NoError(t, err)
	urls := serve(t, s)
	c := client(t)
	code, _, _ := fetch(t, c, http.MethodGet, urls[0]+"/u/1", "")
	require.Equal(t, http.StatusOK, code)
	code, _, _ = fetch(t, c, http.MethodGet, urls[0]+"/nothing", "")
	require.Equal(t, http.StatusNotFound, code)

	var lines []map[string]any
	for _, l := range strings.Split(buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	require.Len(t, lines, 2, buf.String())
	assert.Equal(t, "/u/", lines[0]["route"])
	assert.Equal(t, "users", lines[0]["service"])
	assert.EqualValues(t, 200, lines[0]["status"])
	assert.EqualValues(t, 1, lines[0]["attempts"])
	assert.Contains(t, lines[0], "duration_ms")
	assert.NotContains(t, lines[0], "error")
	assert.EqualValues(t, 404, lines[1]["status"])
	assert.Equal(t, "no_route", lines[1]["error"])
}

func TestReloadFinishesInFlightOnRemovedService(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "old")
	}))
	defer slow.Close()
	lis := proxy.ListenerConfig{Address: "127.0.0.1:0", Service: "a"}
	s, err := proxy.NewServer(&proxy.Config{
		Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{lis},
		Services:  map[string]ambassador.ServiceConfig{"a": svc(slow.Listener.Addr().String())},
	}, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	urls := serve(t, s)
	c := client(t)

	got := make(chan string, 1)
	go func() {
		_, _, body := fetch(t, c, http.MethodGet, urls[0]+"/", "")
		got <- body
	}()
	<-entered
	// Service a is replaced by b on the same listener.
	lis.Service = "b"
	require.NoError(t, s.Reload(&proxy.Config{
		Listeners: []proxy.ListenerConfig{lis},
		Services:  map[string]ambassador.ServiceConfig{"b": svc(named(t, "new"))},
	}))
	_, _, body := fetch(t, c, http.MethodGet, urls[0]+"/", "")
	assert.Equal(t, "new", body)
	close(release)
	assert.Equal(t, "old", <-got)

	// A reload that changes the listener set is refused; the old one serves.
	err = s.Reload(&proxy.Config{
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:1", Service: "b"}},
		Services:  map[string]ambassador.ServiceConfig{"b": svc("127.0.0.1:1")},
	})
	assert.Error(t, err)
	_, _, body = fetch(t, c, http.MethodGet, urls[0]+"/", "")
	assert.Equal(t, "new", body)
}

// An unchanged service keeps its stack across a reload: its rate-limit
// bucket stays empty. A changed one starts afresh. (Needs the real
// ratelimit package.)
func TestReloadKeepsUnchangedStack(t *testing.T) {
	up := named(t, "ok")
	limited := svc(up)
	limited.RateLimit = &ratelimit.Config{RPS: 0.01, Burst: 1, Scope: "global"}
	cfg := func(sc ambassador.ServiceConfig) *proxy.Config {
		return &proxy.Config{
			Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
			Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Service: "a"}},
			Services:  map[string]ambassador.ServiceConfig{"a": sc},
		}
	}
	s, err := proxy.NewServer(cfg(limited), proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	urls := serve(t, s)
	c := client(t)
	code, _, _ := fetch(t, c, http.MethodGet, urls[0], "")
	require.Equal(t, http.StatusOK, code)
	code, reason, _ := fetch(t, c, http.MethodGet, urls[0], "")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Equal(t, "rate_limited", reason)

	same := limited
	same.RateLimit = &ratelimit.Config{RPS: 0.01, Burst: 1, Scope: "global"} // equal value, new pointer
	require.NoError(t, s.Reload(cfg(same)))
	code, _, _ = fetch(t, c, http.MethodGet, urls[0], "")
	assert.Equal(t, http.StatusTooManyRequests, code, "the unchanged service kept its limiter")

	changed := limited
	changed.RateLimit = &ratelimit.Config{RPS: 0.01, Burst: 2, Scope: "global"}
	require.NoError(t, s.Reload(cfg(changed)))
	code, _, _ = fetch(t, c, http.MethodGet, urls[0], "")
	assert.Equal(t, http.StatusOK, code, "the changed service has a new limiter")
}

func TestAdminStatusAndReady(t *testing.T) {
	s, err := proxy.NewServer(&proxy.Config{
		Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Service: "a"}},
		Services:  map[string]ambassador.ServiceConfig{"a": svc(named(t, "a"))},
	}, proxy.WithLogger(quietLogger()),
		proxy.WithMetricsHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "# metrics\n")
		})))
	require.NoError(t, err)
	assert.NotEmpty(t, s.NotReady(), "not ready before Run binds")
	serve(t, s)
	admin := "http://" + s.AdminAddr().String()
	c := client(t)
	code, _, body := fetch(t, c, http.MethodGet, admin+"/readyz", "")
	assert.Equal(t, http.StatusOK, code, body)
	code, _, body = fetch(t, c, http.MethodGet, admin+"/metrics", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "# metrics\n", body)
	code, _, body = fetch(t, c, http.MethodGet, admin+"/status", "")
	require.Equal(t, http.StatusOK, code)
	var st proxy.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Len(t, st.Services["a"].Endpoints, 1)
	assert.True(t, st.Services["a"].Endpoints[0].Ready)
	assert.Contains(t, body, `"ewma_ms"`)
	assert.Contains(t, body, `"in_flight"`)
}

func TestSlowHeaderSenderIsCutOff(t *testing.T) {
	s, err := proxy.NewServer(&proxy.Config{
		Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Service: "a"}},
		Services:  map[string]ambassador.ServiceConfig{"a": svc(named(t, "a"))},
		Limits:    proxy.LimitsConfig{ReadHeaderTimeout: 100 * time.Millisecond},
	}, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	serve(t, s)
	conn, err := net.Dial("tcp", s.Addrs()[0].String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	start := time.Now()
	_, err = io.ReadAll(conn) // the server closes the connection
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 3*time.Second)
}

// /readyz lists each service without a ready endpoint. (Needs the real
// discovery package's health checks.)
func TestReadyzListsServicesWithoutReadyEndpoint(t *testing.T) {
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "sick", http.StatusInternalServerError)
	}))
	defer sick.Close()
	bad := svc(sick.Listener.Addr().String())
	bad.Discovery.HealthCheck = discovery.HealthCheckConfig{Path: "/health", Interval: 20 * time.Millisecond, Timeout: time.Second}
	s, err := proxy.NewServer(&proxy.Config{
		Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Routes: []proxy.RouteConfig{{PathPrefix: "/a/", Service: "good"}, {Service: "bad"}}}},
		Services:  map[string]ambassador.ServiceConfig{"good": svc(named(t, "good")), "bad": bad},
	}, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	serve(t, s)
	c := client(t)
	admin := "http://" + s.AdminAddr().String()
	require.Eventually(t, func() bool {
		code, _, body := fetch(t, c, http.MethodGet, admin+"/readyz", "")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "services.bad") && !strings.Contains(body, "services.good")
	}, 5*time.Second, 10*time.Millisecond)
}
