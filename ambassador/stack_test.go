package ambassador_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// upstream starts a loopback server that answers with its id and the path.
func upstream(t *testing.T, id string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, id+" "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return u.Host
}

func newStack(t *testing.T, c ambassador.ServiceConfig, opts ...ambassador.Option) *ambassador.Stack {
	t.Helper()
	s, err := ambassador.NewStack(c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

func get(t *testing.T, rt http.RoundTripper, rawURL string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestNewTransportSendsServiceHostToEndpoints(t *testing.T) {
	a, b, other := upstream(t, "a"), upstream(t, "b"), upstream(t, "other")
	rt, err := ambassador.NewTransport(ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{hostOf(t, a.URL), hostOf(t, b.URL)}},
		Retry:     &retry.Config{},
		RateLimit: &ratelimit.Config{RPS: 1000},
		Breaker:   &breaker.Config{},
	})
	require.NoError(t, err)
	closer, ok := rt.(io.Closer)
	require.True(t, ok, "the transport is an io.Closer")
	defer func() { assert.NoError(t, closer.Close()) }()
	client := &http.Client{Transport: rt}

	seen := map[string]int{}
	for range 6 {
		resp, err := client.Get("http://users/profile/7")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		id, path, _ := strings.Cut(string(body), " ")
		assert.Equal(t, "/profile/7", path)
		seen[id]++
	}
	assert.Equal(t, 3, seen["a"], "round robin over both endpoints: %v", seen)
	assert.Equal(t, 3, seen["b"], "round robin over both endpoints: %v", seen)

	body, err := get(t, rt, other.URL+"/elsewhere")
	require.NoError(t, err)
	assert.Equal(t, "other /elsewhere", body, "other hosts pass through")
}

func TestStackPoliciesOnlyWhenConfigured(t *testing.T) {
	eps := discovery.Config{Static: []string{"127.0.0.1:1"}}
	bare := newStack(t, ambassador.ServiceConfig{Name: "users", Discovery: eps})
	assert.Nil(t, bare.Limiter())
	assert.Nil(t, bare.Breaker())
	assert.NotNil(t, bare.Discovery())

	full := newStack(t, ambassador.ServiceConfig{
		Name: "users", Discovery: eps, Timeout: time.Second, MaxConcurrentRequests: 7,
		Retry: &retry.Config{}, RateLimit: &ratelimit.Config{RPS: 5}, Breaker: &breaker.Config{},
	})
	assert.NotNil(t, full.Limiter())
	assert.NotNil(t, full.Breaker())
}

func TestNewStackRejectsBadConfig(t *testing.T) {
	_, err := ambassador.NewStack(ambassador.ServiceConfig{Name: "users", Protocol: "h3", RateLimit: &ratelimit.Config{}})
	require.Error(t, err)
	var ce *proxy.ConfigError // the error type ServiceConfig.Validate documents
	require.ErrorAs(t, err, &ce)
	var paths []string
	for _, p := range ce.Problems {
		paths = append(paths, p.Path)
	}
	assert.Equal(t, []string{"discovery", "protocol", "ratelimit.rps"}, paths)

	_, err = ambassador.DialOptions(ambassador.ServiceConfig{Name: "users", Protocol: "http1",
		Discovery: discovery.Config{Static: []string{"127.0.0.1:1"}}})
	assert.ErrorContains(t, err, "gRPC needs protocol h2c or h2")
}

func TestWithBaseAndUntouchedPassthrough(t *testing.T) {
	var got []*http.Request
	base := rtFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, r)
		return &http.Response{StatusCode: http.StatusTeapot, Body: http.NoBody, Request: r}, nil
	})
	s := newStack(t, ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{"10.0.0.1:8080"}},
		TLS:       ambassador.TLSConfig{ServerName: "users.internal"},
		Retry:     &retry.Config{},
	}, ambassador.WithBase(base))

	req, err := http.NewRequest(http.MethodGet, "http://users/a?b=c", nil)
	require.NoError(t, err)
	resp, err := s.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, http.StatusTeapot, resp.StatusCode)
	require.Len(t, got, 1)
	assert.Equal(t, "https://10.0.0.1:8080/a?b=c", got[0].URL.String(), "endpoint picked, TLS scheme")
	assert.Equal(t, "http://users/a?b=c", req.URL.String(), "caller's request not mutated")

	other, err := http.NewRequest(http.MethodGet, "http://example.com/x", nil)
	require.NoError(t, err)
	_, err = s.RoundTrip(other)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Same(t, other, got[1], "another host reaches the base untouched")
}

func TestTimeoutBoundsSlowUpstream(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	s := newStack(t, ambassador.ServiceConfig{
		Name: "users", Timeout: 50 * time.Millisecond,
		Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}},
		Retry:     &retry.Config{},
	})
	start := time.Now()
	_, err := get(t, s, "http://users/slow")
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestTimeoutCoversBodyButDoesNotCutItEarly(t *testing.T) {
	more := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "head ")
		w.(http.Flusher).Flush()
		select {
		case <-more:
			_, _ = io.WriteString(w, "tail")
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	eps := discovery.Config{Static: []string{hostOf(t, srv.URL)}}

	t.Run("body read within the timeout completes", func(t *testing.T) {
		s := newStack(t, ambassador.ServiceConfig{Name: "users", Timeout: 10 * time.Second, Discovery: eps})
		req, err := http.NewRequest(http.MethodGet, "http://users/", nil)
		require.NoError(t, err)
		resp, err := s.RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		buf := make([]byte, 5)
		_, err = io.ReadFull(resp.Body, buf)
		require.NoError(t, err)
		assert.Equal(t, "head ", string(buf))
		more <- struct{}{}
		rest, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "tail", string(rest))
	})
	t.Run("a body that outlives the timeout is cut", func(t *testing.T) {
		// The headers must arrive within the timeout: 1s leaves room for a
		// loaded machine; the body never ends on its own.
		s := newStack(t, ambassador.ServiceConfig{Name: "users", Timeout: time.Second, Discovery: eps})
		req, err := http.NewRequest(http.MethodGet, "http://users/", nil)
		require.NoError(t, err)
		resp, err := s.RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		require.Error(t, err)
		assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	})
}

func TestMaxConnectionsCapsConnectionsPerEndpoint(t *testing.T) {
	var conns, inFlight, maxInFlight, arrived atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		arrived.Add(1)
		<-release
		inFlight.Add(-1)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	s := newStack(t, ambassador.ServiceConfig{
		Name: "users", MaxConnections: 1,
		Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}},
	})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			_, err := get(t, s, "http://users/")
			assert.NoError(t, err)
		})
	}
	for i := int32(1); i <= 3; i++ {
		require.Eventually(t, func() bool { return arrived.Load() == i }, 5*time.Second, time.Millisecond)
		assert.Equal(t, int32(1), inFlight.Load())
		release <- struct{}{}
	}
	wg.Wait()
	assert.Equal(t, int32(1), maxInFlight.Load())
	assert.Equal(t, int32(1), conns.Load(), "one connection to the endpoint")
}

func TestProtocolH2C(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	defer srv.Close()
	eps := discovery.Config{Static: []string{hostOf(t, srv.URL)}}

	for proto, want := range map[string]string{"": "HTTP/1.1", "http1": "HTTP/1.1", "h2c": "HTTP/2.0"} {
		s := newStack(t, ambassador.ServiceConfig{Name: "users", Protocol: proto, Discovery: eps})
		body, err := get(t, s, "http://users/")
		require.NoError(t, err)
		assert.Equal(t, want, body, "protocol %q", proto)
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	pki := newPKI(t)
	before := goleak.IgnoreCurrent()
	s, err := ambassador.NewStack(ambassador.ServiceConfig{
		Name: "users", Protocol: "h2",
		Discovery: discovery.Config{Static: []string{"127.0.0.1:1"}},
		TLS:       pki.ClientTLS("client-1"),
		Breaker:   &breaker.Config{}, RateLimit: &ratelimit.Config{RPS: 1},
	})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	goleak.VerifyNone(t, before)
}

func TestCallerDeadlineTighterThanTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	s := newStack(t, ambassador.ServiceConfig{Name: "users", Timeout: time.Minute,
		Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://users/", nil)
	require.NoError(t, err)
	_, err = s.RoundTrip(req)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
}

// An upgraded connection (101) belongs to the caller: its body stays an
// io.ReadWriteCloser (httputil.ReverseProxy needs that) and lives on after
// the request's deadline is released.
func TestUpgradeOutlivesTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	defer srv.Close()
	// The handshake must finish within the timeout (50ms was within reach
	// of scheduling delays on a loaded machine); the echo below runs only
	// once the timeout has passed.
	const timeout = 500 * time.Millisecond
	s := newStack(t, ambassador.ServiceConfig{Name: "users", Timeout: timeout,
		Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}}})
	start := time.Now()
	req, err := http.NewRequest(http.MethodGet, "http://users/echo", nil)
	require.NoError(t, err)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := s.RoundTrip(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	require.True(t, ok, "101 body is writable")
	defer rwc.Close()
	assert.Error(t, resp.Request.Context().Err(), "the request's deadline is released at the handshake")
	<-time.After(time.Until(start.Add(timeout + 50*time.Millisecond))) // past the timeout
	_, err = rwc.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(rwc, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
}
