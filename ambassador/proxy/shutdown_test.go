package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// startShutdownServer runs a server with limits.shutdown_delay = delay in
// front of an upstream answering "a", and returns it, the cancel of Run's
// context and the channel Run's result arrives on.
func startShutdownServer(t *testing.T, delay string) (*proxy.Server, context.CancelFunc, <-chan error) {
	t.Helper()
	cfg, err := proxy.ParseConfig([]byte("admin: {address: 127.0.0.1:0}\nlimits: {shutdown_delay: "+delay+", drain_timeout: 2s}\n"+
		"listeners:\n  - {address: 127.0.0.1:0, service: a}\nservices:\n  a: {discovery: {static: ["+named(t, "a")+"]}}\n"), "")
	require.NoError(t, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done, fin := make(chan error, 1), make(chan struct{})
	go func() { done <- s.Run(ctx); close(fin) }()
	t.Cleanup(func() {
		cancel()
		s.EndShutdownDelay()
		select {
		case <-fin:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return s, cancel, done
}

// freshGet sends one GET over a new connection (no keep-alive reuse).
func freshGet(t *testing.T, url string) (int, string, error) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// assertShuttingDown checks that during the delay /readyz answers 503
// "shutting down" and a connection opened after the cancel is proxied.
func assertShuttingDown(t *testing.T, s *proxy.Server) {
	t.Helper()
	admin := "http://" + s.AdminAddr().String() + "/readyz"
	require.Eventually(t, func() bool {
		code, _, err := freshGet(t, admin)
		return err == nil && code == http.StatusServiceUnavailable
	}, 5*time.Second, 10*time.Millisecond, "/readyz turns 503 after the cancel")
	code, body, err := freshGet(t, admin)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "shutting down")

	code, body, err = freshGet(t, "http://"+s.Addrs()[0].String()+"/")
	require.NoError(t, err, "a new connection during shutdown_delay is served")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "a", body)
}

// assertRefused checks that the listener no longer accepts connections.
func assertRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
	}
	require.Error(t, err, "the listener is closed after the delay")
}

// TestShutdownDelayKeepsServing: after the cancel the server keeps
// accepting and serving new connections for shutdown_delay with /readyz
// at 503, then stops accepting, and Run returns nil, not before the delay.
func TestShutdownDelayKeepsServing(t *testing.T) {
	const delay = 500 * time.Millisecond
	s, cancel, done := startShutdownServer(t, delay.String())
	addr := s.Addrs()[0].String()
	code, _, err := freshGet(t, "http://"+s.AdminAddr().String()+"/readyz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, "ready before the cancel")

	start := time.Now()
	cancel()
	assertShuttingDown(t, s)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after shutdown_delay")
	}
	assert.GreaterOrEqual(t, time.Since(start), delay, "Run returned before shutdown_delay ended")
	assertRefused(t, addr)
}

// TestEndShutdownDelayDrainsAtOnce: EndShutdownDelay (the ambassador's
// second signal) ends a long delay: Run drains and returns nil at once.
func TestEndShutdownDelayDrainsAtOnce(t *testing.T) {
	s, cancel, done := startShutdownServer(t, "1h")
	addr := s.Addrs()[0].String()
	cancel()
	assertShuttingDown(t, s)
	select {
	case err := <-done:
		t.Fatalf("Run returned during the delay: %v", err)
	default:
	}
	s.EndShutdownDelay()
	s.EndShutdownDelay() // a third signal is harmless
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after EndShutdownDelay")
	}
	assertRefused(t, addr)
}

// TestShutdownDelayBounds: shutdown_delay must be within [0, 1h], and the
// error names the key.
func TestShutdownDelayBounds(t *testing.T) {
	base := "listeners:\n  - {address: 127.0.0.1:0, service: a}\nservices:\n  a: {discovery: {static: [127.0.0.1:1]}}\n"
	for _, tc := range []struct{ value, msg string }{{"-1s", "must be ≥ 0"}, {"2h", "at most 1h0m0s"}} {
		_, err := proxy.ParseConfig([]byte("limits: {shutdown_delay: "+tc.value+"}\n"+base), "")
		var ce *proxy.ConfigError
		require.True(t, errors.As(err, &ce), "%s: %v", tc.value, err)
		require.Len(t, ce.Problems, 1, "%s: %v", tc.value, err)
		assert.Equal(t, "limits.shutdown_delay", ce.Problems[0].Path)
		assert.Equal(t, 1, ce.Problems[0].Line)
		assert.Contains(t, ce.Problems[0].Msg, tc.msg)
	}
	cfg, err := proxy.ParseConfig([]byte("limits: {shutdown_delay: 1h}\n"+base), "")
	require.NoError(t, err)
	assert.Equal(t, time.Hour, cfg.Limits.ShutdownDelay)
}

// A request still waiting for its upstream when drain_timeout ends is cut
// (the client's connection is closed), and Run returns only after its
// handler has written the access-log line, as for a WebSocket tunnel: the
// process exits as Run returns, and a request it cut is still one line
// (here 499 after 0 bytes; the upstream never answered).
func TestDrainTimeoutLogsTheRequestItCuts(t *testing.T) {
	got := make(chan struct{})
	up := newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		if _, err := u.ReadRequest(br); err != nil {
			return
		}
		close(got)
		_, _ = io.Copy(io.Discard, br) // never answers; returns when the ambassador closes
	})
	cfg, err := proxy.ParseConfig([]byte("admin: {address: 127.0.0.1:0}\nlimits: {drain_timeout: 100ms}\n"+
		"listeners:\n  - {address: 127.0.0.1:0, service: a}\nservices:\n  a: {discovery: {static: ["+up.Addr()+"]}}\n"), "")
	require.NoError(t, err)
	log := &syncBuffer{}
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()),
		proxy.WithAccessLog(slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()

	c, br := rawDial(t, s.Addrs()[0].String())
	rawSend(t, c, "GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-got:
	case <-time.After(wireTimeout):
		t.Fatal("the request did not reach the upstream")
	}
	cancel()
	waitRunReturned(t, done, "drain_timeout")
	assert.Contains(t, log.String(), `"path":"/held"`, "the cut request's line is written before Run returns")
	requireClosed(t, br)
}
