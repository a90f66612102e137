package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// Adversarial tests of the inbound limits (limits.max_client_connections,
// limits.idle_timeout) and of what an upstream sends besides its final
// headers (1xx responses, trailers).

// limUpstream answers every request on a connection with 200 "ok"; a
// request for /block waits for a value on release first (or the end of
// the test).
func limUpstream(t *testing.T, release <-chan struct{}) *rawUpstream {
	stop := make(chan struct{})
	up := newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		for {
			req, err := u.ReadRequest(br)
			if err != nil {
				return
			}
			if req.Target == "/block" {
				select {
				case <-release:
				case <-stop:
					return
				}
			}
			writeResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	t.Cleanup(func() { close(stop) }) // runs before the upstream's own cleanup waits
	return up
}

// limGet sends a keep-alive GET for path on c and reads the answer.
func limGet(t *testing.T, c net.Conn, br *bufio.Reader, path string) (rawResponse, error) {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return rawResponse{}, err
	}
	return readRawResponse(br, "GET")
}

// limRequireOK sends a GET on c and requires 200 "ok".
func limRequireOK(t *testing.T, c net.Conn, br *bufio.Reader, path string) {
	t.Helper()
	resp, err := limGet(t, c, br, path)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Equal(t, "ok", string(resp.Body))
}

// limHealthz returns the status of the admin listener's /healthz.
func limHealthz(t *testing.T, s *proxy.Server) int {
	t.Helper()
	code, _, _ := fetch(t, client(t), http.MethodGet, "http://"+s.AdminAddr().String()+"/healthz", "")
	return code
}

// TestClientConnCapClosesIdleKeepAlive: at max_client_connections, a new
// client is served at once and one idle keep-alive connection is closed to
// make room; the admin listener is not counted.
func TestClientConnCapClosesIdleKeepAlive(t *testing.T) {
	const limit = 20
	up := limUpstream(t, nil)
	addr, s := oneServiceAmbassador(t, []string{up.Addr()}, "", "{max_client_connections: 20}")

	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	var idle []conn
	for range limit {
		c, br := rawDial(t, addr)
		limRequireOK(t, c, br, "/")
		idle = append(idle, conn{c, br})
	}
	assert.Equal(t, http.StatusOK, limHealthz(t, s), "admin at the cap")

	c, br := rawDial(t, addr)
	limRequireOK(t, c, br, "/") // the 21st, served without waiting for a close

	// Exactly one of the 20 was closed for it; the others still serve.
	closed := 0
	for _, ic := range idle {
		resp, err := limGet(t, ic.c, ic.br, "/")
		switch {
		case err == nil:
			assert.Equal(t, http.StatusOK, resp.Status)
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || limConnError(err):
			closed++
		default:
			t.Errorf("idle connection: %v", err)
		}
	}
	assert.Equal(t, 1, closed, "idle keep-alive connections closed to make room")
}

// limConnError reports a connection-level failure (reset, broken pipe),
// not a timeout.
func limConnError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && !oe.Timeout()
}

// TestClientConnCapHoldsNewConnUntilSlotFrees: at max_client_connections
// with every connection busy, a new client waits (not refused, not closed)
// while /healthz still answers; it is served once a connection frees its
// slot, and after all of them close, new clients are served.
func TestClientConnCapHoldsNewConnUntilSlotFrees(t *testing.T) {
	const limit = 20
	release := make(chan struct{}, limit+1)
	up := limUpstream(t, release)
	addr, s := oneServiceAmbassador(t, []string{up.Addr()}, "", "{max_client_connections: 20}")

	var busy []net.Conn
	var readers []*bufio.Reader
	for range limit {
		c, br := rawDial(t, addr)
		rawSend(t, c, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
		busy = append(busy, c)
		readers = append(readers, br)
	}
	// Every busy request reached the upstream: all 20 slots are taken.
	require.Eventually(t, func() bool { return len(up.Requests()) == limit }, wireTimeout, 5*time.Millisecond)

	c, br := rawDial(t, addr)
	rawSend(t, c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// A bounded look: nothing answers the 21st while every slot is busy.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err := br.Peek(1)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the 21st connection must wait, not be answered or closed")
	assert.Equal(t, http.StatusOK, limHealthz(t, s), "admin while clients wait")

	// One busy client gives up: its slot goes to the waiting one.
	require.NoError(t, busy[0].Close())
	require.NoError(t, c.SetReadDeadline(time.Now().Add(wireTimeout)))
	resp, err := readRawResponse(br, "GET")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.Status)

	// The rest finish and close; new clients are served. (One release
	// more: the handler of the request busy[0] abandoned may take one.)
	for range limit {
		release <- struct{}{}
	}
	for i := 1; i < limit; i++ {
		resp, err := readRawResponse(readers[i], "GET")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.Status)
		require.NoError(t, busy[i].Close())
	}
	for range 3 {
		nc, nbr := rawDial(t, addr)
		limRequireOK(t, nc, nbr, "/")
	}
}

// TestIdleTimeoutClosesKeepAlive: limits.idle_timeout closes an idle client
// connection (the default, 2m, would let the read below hit its deadline).
func TestIdleTimeoutClosesKeepAlive(t *testing.T) {
	up := limUpstream(t, nil)
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "{idle_timeout: 200ms}")
	c, br := rawDial(t, addr)
	limRequireOK(t, c, br, "/")
	_, err := br.ReadByte() // blocks until the server closes, or wireTimeout
	assert.ErrorIs(t, err, io.EOF, "the idle connection must be closed by the server")
}

// TestLimitsKeysChecked: the new keys are range-checked with their paths.
func TestLimitsKeysChecked(t *testing.T) {
	cases := []struct {
		limits string
		want   want
	}{
		{"{idle_timeout: -1s}", want{"limits.idle_timeout", 6, "must be ≥ 0"}},
		{"{idle_timeout: 25h}", want{"limits.idle_timeout", 6, "must be at most 24h"}},
		{"{max_client_connections: -1}", want{"limits.max_client_connections", 6, "must be ≥ 0"}},
		{"{max_client_connections: 2000000}", want{"limits.max_client_connections", 6, "must be at most 1048576"}},
		{"{max_client_connections: many}", want{"limits.max_client_connections", 6, "many"}},
	}
	for _, tc := range cases {
		t.Run(tc.limits, func(t *testing.T) {
			got := parseProblems(t, base+"limits: "+tc.limits+"\n")
			require.Len(t, got, 1, "%v", got)
			assert.Equal(t, tc.want.path, got[0].Path)
			assert.Equal(t, tc.want.line, got[0].Line)
			assert.Contains(t, got[0].Msg, tc.want.msg)
		})
	}
	c, err := proxy.ParseConfig([]byte(base+"limits: {idle_timeout: 24h, max_client_connections: 1048576}\n"), "")
	require.NoError(t, err)
	assert.Equal(t, 24*time.Hour, c.Limits.IdleTimeoutOrDefault())
	assert.Equal(t, 1048576, c.Limits.MaxClientConnectionsOrDefault())
	assert.Equal(t, 2*time.Minute, proxy.LimitsConfig{}.IdleTimeoutOrDefault())
	assert.Positive(t, proxy.LimitsConfig{}.MaxClientConnectionsOrDefault())
}

// limFixedUpstream is an upstream that answers every connection with the exact
// bytes of resp after reading one request.
func limFixedUpstream(t *testing.T, resp string) *rawUpstream {
	return newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		if _, err := u.ReadRequest(br); err != nil {
			return
		}
		writeResponse(t, c, resp)
	})
}

// limExchange sends one GET with Connection: close and returns every byte of
// the answer.
func limExchange(t *testing.T, addr string) string {
	t.Helper()
	c, br := rawDial(t, addr)
	rawSend(t, c, "GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
	raw, err := io.ReadAll(br)
	require.NoError(t, err)
	return string(raw)
}

// TestUpstreamErrorHeaderNeverReachesClientHTTP1: an upstream's
// X-Outbound-Error in a 103, in an announced trailer and in an unannounced
// chunked trailer is removed; the rest of what it sent passes.
func TestUpstreamErrorHeaderNeverReachesClientHTTP1(t *testing.T) {
	const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	const body = "\r\n2\r\nok\r\n0\r\nX-Outbound-Error: circuit_open\r\nX-Checksum: abc\r\n\r\n"
	cases := []struct {
		name, resp string
		trailer    bool
	}{
		{"103", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nX-Outbound-Error: circuit_open\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"announced trailer", chunked + "Trailer: X-Outbound-Error, X-Checksum\r\n" + body, true},
		{"unannounced trailer", chunked + body, true},
		{"partly announced trailer", chunked + "Trailer: X-Checksum\r\n" + body, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := limFixedUpstream(t, tc.resp)
			addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
			raw := limExchange(t, addr)
			assert.NotContains(t, strings.ToLower(raw), "x-outbound-error", "answer:\n%s", raw)
			if !tc.trailer {
				assert.Contains(t, raw, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n")
			}
			br := bufio.NewReader(strings.NewReader(raw))
			for strings.HasPrefix(raw, "HTTP/1.1 1") {
				_, err := readRawResponse(br, "GET")
				require.NoError(t, err)
				raw = raw[strings.Index(raw, "\r\n\r\n")+4:]
			}
			resp, err := http.ReadResponse(br, nil)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, "ok", string(b))
			if tc.trailer {
				assert.Equal(t, "abc", resp.Trailer.Get("X-Checksum"), "the other trailer passes")
			}
		})
	}
}

// TestUpstreamErrorHeaderNeverReachesClientH2C: the same over h2c on both
// sides, with trailers announced (Trailer header) and not (TrailerPrefix).
func TestUpstreamErrorHeaderNeverReachesClientH2C(t *testing.T) {
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	up := &http.Server{Protocols: protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Link", "</a.css>; rel=preload")
		h.Set(proxy.HeaderError, "circuit_open")
		w.WriteHeader(http.StatusEarlyHints)
		clear(h)
		if r.URL.Path == "/announced" {
			h.Set("Trailer", "X-Outbound-Error, X-Checksum")
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok")
		if r.URL.Path == "/announced" {
			h.Set(proxy.HeaderError, "circuit_open")
			h.Set("X-Checksum", "abc")
		} else {
			h.Set(http.TrailerPrefix+proxy.HeaderError, "circuit_open")
			h.Set(http.TrailerPrefix+"X-Checksum", "abc")
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })
	addr, _ := oneServiceAmbassador(t, []string{ln.Addr().String()}, "protocol: h2c", "")

	tr := &http.Transport{Protocols: protos}
	t.Cleanup(tr.CloseIdleConnections)
	for _, path := range []string{"/announced", "/unannounced"} {
		t.Run(path, func(t *testing.T) {
			var hints []textproto.MIMEHeader
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					hints = append(hints, h)
					return nil
				},
			})
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, "ok", string(b))
			assert.Equal(t, 2, resp.ProtoMajor)
			require.Len(t, hints, 1)
			assert.Equal(t, "</a.css>; rel=preload", hints[0].Get("Link"))
			assert.Empty(t, hints[0].Values(proxy.HeaderError), "in the 103")
			assert.Empty(t, resp.Header.Values(proxy.HeaderError), "in the headers")
			assert.Equal(t, "abc", resp.Trailer.Get("X-Checksum"))
			_, has := resp.Trailer[proxy.HeaderError]
			assert.False(t, has, "in the trailers: %v", resp.Trailer)
		})
	}
}

// TestInformationalResponsesBounded: an upstream sending 1000 × 103 before
// its 200 gets five of them relayed, then its 200 as it came.
func TestInformationalResponsesBounded(t *testing.T) {
	var b bytes.Buffer
	for range 1000 {
		b.WriteString("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
	}
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	up := limFixedUpstream(t, b.String())
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")

	c, br := rawDial(t, addr)
	rawSend(t, c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	n1xx := 0
	for {
		resp, err := readRawResponse(br, "GET")
		require.NoError(t, err)
		if resp.Status < 200 {
			n1xx++
			assert.Equal(t, http.StatusEarlyHints, resp.Status)
			require.LessOrEqual(t, n1xx, 5, "1xx responses relayed")
			continue
		}
		assert.Equal(t, http.StatusOK, resp.Status)
		assert.Equal(t, "ok", string(resp.Body))
		break
	}
	assert.Equal(t, 5, n1xx)
}

// TestClientConnCapWaitingConnEndsOnShutdown: a connection waiting for a
// slot does not hold up shutdown; it is closed when the listener closes.
// (The first connection, mid-head, is closed when drain_timeout ends.)
func TestClientConnCapWaitingConnEndsOnShutdown(t *testing.T) {
	up := limUpstream(t, nil)
	cfg, err := proxy.ParseConfig([]byte("admin: {address: 127.0.0.1:0}\nlimits: {max_client_connections: 1, drain_timeout: 100ms}\n"+
		"listeners:\n  - {address: 127.0.0.1:0, service: up}\nservices:\n  up: {discovery: {static: ["+up.Addr()+"]}}\n"), "")
	require.NoError(t, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()
	addr := s.Addrs()[0].String()

	first, fbr := rawDial(t, addr)
	rawSend(t, first, "GET / HTTP/1.1\r\nHost: x\r\n") // half a head: active, not idle
	second, sbr := rawDial(t, addr)
	rawSend(t, second, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, second.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = sbr.Peek(1)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the second connection waits for the only slot")
	require.NoError(t, second.SetReadDeadline(time.Now().Add(wireTimeout)))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(wireTimeout):
		t.Fatal("Run did not return while a connection waited for a slot")
	}
	_, err = sbr.ReadByte()
	assert.Error(t, err, "the waiting connection is closed, never answered")
	_, err = fbr.ReadByte()
	assert.Error(t, err)
}
