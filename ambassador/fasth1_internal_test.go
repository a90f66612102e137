package ambassador

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
)

// h1Server is a loopback server that counts the connections it accepted.
func h1Server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	return countingServer(t, h, http.StateNew)
}

// closedConns counts the server-side connections that reached StateClosed.
func closedConns(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	return countingServer(t, h, http.StateClosed)
}

// countingServer is a loopback server that counts its connections entering
// state.
func countingServer(t *testing.T, h http.HandlerFunc, state http.ConnState) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == state {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

// h1Transport is an http.Transport with h1Direct as its "http" protocol,
// as newBaseTransport builds it for plain HTTP/1.1; idle reports the
// connections in h1Direct's pool, so a test knows which path served it.
func h1Transport(t *testing.T) *http.Transport {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	d := newH1Direct((&net.Dialer{}).DialContext)
	tr.RegisterProtocol("http", d)
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, list := range d.idle {
			for _, pc := range list {
				_ = pc.c.Close()
			}
		}
		if d.sweep != nil {
			d.sweep.Stop()
		}
	})
	lastDirect = d
	return tr
}

// lastDirect is the h1Direct of the last h1Transport (tests are serial).
var lastDirect *h1Direct

func pooled(d *h1Direct) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, list := range d.idle {
		n += len(list)
	}
	return n
}

func TestBaseTransportTakesTheDirectPathForPlainHTTP1(t *testing.T) {
	for _, tc := range []struct {
		c    ServiceConfig
		tls  bool
		want bool
	}{
		{ServiceConfig{}, false, true},
		{ServiceConfig{Protocol: ProtocolHTTP1}, false, true},
		{ServiceConfig{MaxConnections: 4}, false, false}, // net/http enforces the cap
		{ServiceConfig{Protocol: ProtocolH2C}, false, false},
		{ServiceConfig{}, true, false},
	} {
		assert.Equal(t, tc.want, useH1Direct(tc.c, tc.tls), "%+v tls=%v", tc.c, tc.tls)
	}
}

func get(t *testing.T, rt http.RoundTripper, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, string(b)
}

func TestH1DirectReusesOneConnection(t *testing.T) {
	srv, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "ua/1", r.Header.Get("User-Agent"))
		assert.Equal(t, "v", r.Header.Get("X-Custom"))
		_, _ = io.WriteString(w, "hello "+r.URL.RequestURI())
	})
	tr := h1Transport(t)
	for range 20 {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/a?b=c", nil)
		require.NoError(t, err)
		req.Header.Set("User-Agent", "ua/1")
		req.Header.Set("X-Custom", "v")
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, "hello /a?b=c", string(b))
	}
	assert.Equal(t, int32(1), conns.Load(), "sequential requests share one keep-alive connection")
	assert.Equal(t, 1, pooled(lastDirect), "the direct path served them and pooled the connection")
}

func TestH1DirectRetriesAConnectionTheServerClosed(t *testing.T) {
	srv, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	tr := h1Transport(t)
	_, body := get(t, tr, http.MethodGet, srv.URL)
	require.Equal(t, "ok", body)
	srv.CloseClientConnections() // the pooled connection is now dead
	resp, body := get(t, tr, http.MethodGet, srv.URL)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", body)
	assert.Equal(t, int32(2), conns.Load())
}

func TestH1DirectHonoursConnectionClose(t *testing.T) {
	srv, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	})
	tr := h1Transport(t)
	for range 3 {
		_, body := get(t, tr, http.MethodGet, srv.URL)
		assert.Equal(t, "bye", body)
	}
	assert.Equal(t, int32(3), conns.Load())
}

func TestH1DirectHeadAndEmptyBodies(t *testing.T) {
	srv, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/204" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Length", "5")
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, "12345")
		}
	})
	tr := h1Transport(t)
	resp, body := get(t, tr, http.MethodHead, srv.URL)
	assert.Equal(t, int64(5), resp.ContentLength)
	assert.Empty(t, body)
	resp, body = get(t, tr, http.MethodGet, srv.URL+"/204")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Empty(t, body)
	_, body = get(t, tr, http.MethodGet, srv.URL)
	assert.Equal(t, "12345", body)
	assert.Equal(t, int32(1), conns.Load())
}

func TestH1DirectBodyClosedEarlyClosesTheConnection(t *testing.T) {
	srv, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 64<<10))
	})
	tr := h1Transport(t)
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	buf := make([]byte, 10)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	_, body := get(t, tr, http.MethodGet, srv.URL)
	assert.Len(t, body, 64<<10)
	assert.Equal(t, int32(2), conns.Load(), "a half-read connection is not reused")
}

func TestH1DirectForwards1xx(t *testing.T) {
	srv, _ := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "done")
	})
	tr := h1Transport(t)
	var got []int
	var link string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, code)
			link = h.Get("Link")
			return nil
		},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, "done", string(b))
	assert.Equal(t, []int{http.StatusEarlyHints}, got)
	assert.Equal(t, "</style.css>; rel=preload", link)
}

func TestH1DirectCancelWhileWaiting(t *testing.T) {
	entered := make(chan struct{})
	srv, _ := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done()
	})
	tr := h1Transport(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	go func() {
		<-entered
		cancel()
	}()
	_, err = tr.RoundTrip(req)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}

func TestH1DirectLeavesBodiesToNetHTTP(t *testing.T) {
	srv, _ := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+string(b))
	})
	tr := h1Transport(t)
	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("payload"))
	require.NoError(t, err)
	assert.False(t, newH1Direct(nil).eligible(req), "a POST with a body is net/http's")
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, "POST payload", string(b))
	for _, h := range []string{"Connection", "Upgrade", "Expect", "Te"} {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		req.Header.Set(h, "x")
		assert.False(t, newH1Direct(nil).eligible(req), h)
	}
}

func TestH1DirectBoundsTheResponseHead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		_, _ = c.Read(buf) // the request
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Big: " + strings.Repeat("a", 1000) + "\r\n"
		for range (h1MaxHeaderBytes / len(line)) + 2 {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	}()
	defer func() {
		_ = ln.Close()
		<-done
	}()
	tr := h1Transport(t)
	req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	require.Error(t, err)
	assert.ErrorIs(t, err, errHeaderTooLarge)
}

func TestH1DirectIdleClockCountsSweeps(t *testing.T) {
	srv, _ := h1Server(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	tr := h1Transport(t)
	d := lastDirect
	get(t, tr, http.MethodGet, srv.URL)
	require.Equal(t, 1, pooled(d))
	for range h1IdleTicks - 1 {
		d.sweepIdle()
	}
	assert.Equal(t, 1, pooled(d), "idle for fewer sweeps than h1IdleTicks: kept")
	_, body := get(t, tr, http.MethodGet, srv.URL) // reused, pooled again at the current tick
	assert.Equal(t, "ok", body)
	for range h1IdleTicks - 1 {
		d.sweepIdle()
	}
	assert.Equal(t, 1, pooled(d), "its idle time starts again when it is pooled again")
	d.sweepIdle()
	assert.Equal(t, 0, pooled(d), "idle for h1IdleTicks sweeps: closed")
	d.mu.Lock()
	assert.Nil(t, d.sweep, "no idle connection left: the sweep is not re-armed")
	d.mu.Unlock()
}

// A Stack's Close closes the direct path's idle connections at once (not
// after the idle timeout), and a connection whose request finishes after
// Close is closed instead of pooled.
func TestStackCloseClosesDirectConnections(t *testing.T) {
	release := make(chan struct{})
	srv, closed := closedConns(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	s, err := NewStack(ServiceConfig{Name: "users", Discovery: discovery.Config{Static: []string{srv.Listener.Addr().String()}}})
	require.NoError(t, err)
	d := s.owned.direct
	require.NotNil(t, d, "the default base transport has a direct path")

	_, body := get(t, s, http.MethodGet, "http://users/fast")
	require.Equal(t, "ok", body)
	require.Equal(t, 1, pooled(d))

	req, err := http.NewRequest(http.MethodGet, "http://users/slow", nil)
	require.NoError(t, err)
	resp, err := s.RoundTrip(req) // takes the pooled connection and holds it
	require.NoError(t, err)
	require.Equal(t, 0, pooled(d))

	// A second connection, pooled, for Close to find.
	_, body = get(t, s, http.MethodGet, "http://users/fast")
	require.Equal(t, "ok", body)
	require.Equal(t, 1, pooled(d))

	require.NoError(t, s.Close())
	assert.Equal(t, 0, pooled(d))
	require.Eventually(t, func() bool { return closed.Load() == 1 }, 5*time.Second, time.Millisecond, "the idle connection is closed by Close")

	close(release)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(b))
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, 0, pooled(d), "released after Close: not pooled")
	require.Eventually(t, func() bool { return closed.Load() == 2 }, 5*time.Second, time.Millisecond, "and closed")
}

// Stack.CloseIdleConnections (what http.Client.CloseIdleConnections calls)
// reaches the direct path's pool too, and the stack stays usable.
func TestStackCloseIdleConnectionsReachesDirectPath(t *testing.T) {
	srv, closed := closedConns(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	s, err := NewStack(ServiceConfig{Name: "users", Discovery: discovery.Config{Static: []string{srv.Listener.Addr().String()}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	d := s.owned.direct
	require.NotNil(t, d, "the default base transport has a direct path")

	_, body := get(t, s, http.MethodGet, "http://users/")
	require.Equal(t, "ok", body)
	require.Equal(t, 1, pooled(d))

	(&http.Client{Transport: s}).CloseIdleConnections()
	assert.Equal(t, 0, pooled(d))
	require.Eventually(t, func() bool { return closed.Load() == 1 }, 5*time.Second, time.Millisecond, "the idle connection is closed")

	_, body = get(t, s, http.MethodGet, "http://users/")
	assert.Equal(t, "ok", body, "the stack still works on a new connection")
	assert.Equal(t, 1, pooled(d))
}
