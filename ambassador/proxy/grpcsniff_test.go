package proxy_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// serveH1AndH2C serves h over HTTP/1.1 and h2c on a loopback port until
// the test ends and returns its host:port.
func serveH1AndH2C(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protos, Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// h2cClient is HTTP/2 over cleartext with prior knowledge: one connection
// per host, reused by every request.
func h2cClient(t *testing.T) *http.Client {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func getPage(t *testing.T, c *http.Client, addr string) (int, string, string) {
	t.Helper()
	resp, err := c.Get("http://" + addr + "/page")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body), resp.Header.Get("Grpc-Status")
}

// A connection whose first request is gRPC is grpc-go's for its whole
// life: a plain request on it gets grpc-go's own answer (415, grpc-status
// INVALID_ARGUMENT), which net/http's server never gives. A connection
// whose first request is plain stays net/http's, and gRPC on it is proxied;
// so does every connection of a listener that routes to a service the
// native path cannot serve (host_header: preserve).
func TestSnifferHandsGRPCFirstConnectionsToGRPCGo(t *testing.T) {
	up := startRawUpstream(t, &rawUpstreamSvc{})
	native, _ := oneServiceAmbassador(t, []string{up}, "protocol: h2c", "")
	rproxy, _ := oneServiceAmbassador(t, []string{up}, "protocol: h2c\nhost_header: preserve", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("gRPC first", func(t *testing.T) {
		c := h2cClient(t)
		out, err := rawGRPCCall(ctx, c, native, "/t.T/Unary", "5S")
		require.NoError(t, err)
		assert.Equal(t, "0", out.status)
		code, _, gs := getPage(t, c, native)
		assert.Equal(t, http.StatusUnsupportedMediaType, code, "grpc-go's transport answers a plain request")
		assert.Equal(t, "3", gs)
	})
	t.Run("plain first", func(t *testing.T) {
		c := h2cClient(t)
		code, body, _ := getPage(t, c, native)
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "plain HTTP/2.0", body)
		out, err := rawGRPCCall(ctx, c, native, "/t.T/Unary", "5S")
		require.NoError(t, err)
		assert.Equal(t, "0", out.status, "gRPC on a net/http connection is proxied")
	})
	t.Run("listener not native", func(t *testing.T) {
		c := h2cClient(t)
		out, err := rawGRPCCall(ctx, c, rproxy, "/t.T/Unary", "5S")
		require.NoError(t, err)
		assert.Equal(t, "0", out.status)
		code, body, _ := getPage(t, c, rproxy)
		assert.Equal(t, http.StatusOK, code, "the connection stayed net/http's")
		assert.Equal(t, "plain HTTP/2.0", body)
	})
}

// Plain HTTP/2 with prior knowledge (Go's http2.Transport), HTTP/1.1 and an
// HTTP/1.1 request offering an h2c upgrade all work on a native listener.
// The HTTP/2 client acknowledges the sniffer's SETTINGS; were that ACK
// replayed, net/http's server would count one ACK more than the SETTINGS it
// sent and close the connection with PROTOCOL_ERROR: the requests on the
// one connection would fail.
func TestSnifferKeepsPlainHTTPWorking(t *testing.T) {
	addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, &rawUpstreamSvc{})}, "protocol: h2c", "")
	c := h2cClient(t)
	for i := range 20 {
		code, body, _ := getPage(t, c, addr)
		require.Equal(t, http.StatusOK, code, "request %d", i)
		require.Equal(t, "plain HTTP/2.0", body, "request %d: the upstream's view (h2c service)", i)
	}
	code, body, _ := getPage(t, client(t), addr)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "plain HTTP/2.0", body)

	conn, br := rawDial(t, addr)
	rawSend(t, conn, "GET /page HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	resp, err := readRawResponse(br, "GET")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.Status, "served as HTTP/1.1, not upgraded")
	assert.Equal(t, "plain HTTP/2.0", string(resp.Body))
}

// A client that sends the HTTP/2 preface and then nothing gets the
// sniffer's SETTINGS and is closed at read_header_timeout; so is one that
// sends nothing at all.
func TestSnifferClosesSilentClientsAtTheDeadline(t *testing.T) {
	addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, &rawUpstreamSvc{})}, "protocol: h2c", "{read_header_timeout: 200ms}")
	var settings bytes.Buffer
	require.NoError(t, http2.NewFramer(&settings, nil).WriteSettings())
	for name, send := range map[string]string{"preface": http2.ClientPreface, "nothing": ""} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = io.WriteString(conn, send)
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second))) // the test's bound
		got, err := io.ReadAll(conn)
		assert.NoError(t, err, "%s: closed by the ambassador, not by the test's bound", name)
		if send != "" {
			assert.Equal(t, settings.Bytes(), got, name)
		} else {
			assert.Empty(t, got, name)
		}
		_ = conn.Close()
	}
}

// limits.max_client_connections counts the connections grpc-go serves: at
// a cap of one, a second gRPC client waits unanswered while the first is
// open, and is served once it has closed.
func TestSnifferConnectionLimitCountsGRPCConnections(t *testing.T) {
	addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, &rawUpstreamSvc{})}, "protocol: h2c", "{max_client_connections: 1}")
	in, out := []byte("x"), []byte(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := rawClient(t, addr)
	require.NoError(t, first.Invoke(ctx, "/t.T/Unary", &in, &out))

	second := rawClient(t, addr)
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	err := second.Invoke(short, "/t.T/Unary", &in, &out)
	cancelShort()
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "the second connection is held at the cap: %v", err)

	require.NoError(t, first.Close())
	require.NoError(t, second.Invoke(ctx, "/t.T/Unary", &in, &out, grpc.WaitForReady(true)), "served once the first closed")
	assert.Equal(t, "echo:x", string(out))
}

// gRPC clients connecting while the server shuts down (a stream keeps the
// drain open) are refused or served, never left hanging; Run returns once
// the stream ends, and no goroutine stays (goleak).
func TestSnifferGRPCConnectDuringShutdown(t *testing.T) {
	u := &rawUpstreamSvc{hold: make(chan struct{})}
	addr, s := startOwnAmbassador(t, startRawUpstream(t, u), "{drain_timeout: 10s}")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, out := openHold(ctx, t, rawClient(t, addr))
	in := []byte("x")

	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
			defer ccancel()
			var o []byte
			errs[i] = rawClient(t, addr).Invoke(cctx, "/t.T/Unary", &in, &o)
		}()
		if i == len(errs)/2 {
			s.stop()
		}
	}
	wg.Wait()
	for i, err := range errs {
		c := status.Code(err)
		assert.True(t, c == codes.OK || c == codes.Unavailable, "client %d: %v", i, err)
	}
	close(u.hold)
	require.NoError(t, st.RecvMsg(&out))
	assert.Equal(t, "second", string(out))
	assert.NoError(t, s.wait(5*time.Second))
}

// ownAmbassador is an ambassador the test shuts down itself.
type ownAmbassador struct {
	stop context.CancelFunc
	done chan struct{} // closed when Run has returned err
	err  error
}

func (a *ownAmbassador) wait(d time.Duration) error {
	select {
	case <-a.done:
		return a.err
	case <-time.After(d):
		return context.DeadlineExceeded
	}
}

// startOwnAmbassador runs an ambassador with one listener for service up
// (protocol h2c) at endpoint; the test calls stop.
func startOwnAmbassador(t *testing.T, endpoint, limits string) (string, *ownAmbassador) {
	t.Helper()
	cfg, err := proxy.ParseConfig([]byte(`admin: {address: 127.0.0.1:0}
limits: `+limits+`
listeners: [{address: 127.0.0.1:0, service: up}]
services:
  up: {discovery: {static: [`+endpoint+`]}, protocol: h2c}
`), t.TempDir())
	require.NoError(t, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	a := &ownAmbassador{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = s.Run(ctx)
	}()
	<-s.Ready()
	t.Cleanup(func() {
		stop()
		_ = a.wait(10 * time.Second)
	})
	return s.Addrs()[0].String(), a
}

// Calls on grpc-go's side are routed by :authority and path with the
// listener's routes, and a call that matches none is UNIMPLEMENTED
// no_route, without an upstream call.
func TestNativeGRPCRoutesByAuthorityAndPath(t *testing.T) {
	a, b := &rawUpstreamSvc{}, &rawUpstreamSvc{}
	cfg, err := proxy.ParseConfig([]byte(`admin: {address: 127.0.0.1:0}
listeners:
  - address: 127.0.0.1:0
    routes:
      - {host: alpha, service: a}
      - {path_prefix: /t.T/, service: b}
services:
  a: {discovery: {static: [`+startRawUpstream(t, a)+`]}, protocol: h2c}
  b: {discovery: {static: [`+startRawUpstream(t, b)+`]}, protocol: h2c}
`), t.TempDir())
	require.NoError(t, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	addr := serve(t, s)[0][len("http://"):]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, out := []byte("x"), []byte(nil)

	alpha, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("alpha:80"), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(bytesCodec{})))
	require.NoError(t, err)
	t.Cleanup(func() { _ = alpha.Close() })
	require.NoError(t, alpha.Invoke(ctx, "/t.T/Unary", &in, &out))
	assert.Equal(t, int64(1), a.calls.Load(), "host alpha: service a")

	other := rawClient(t, addr)
	require.NoError(t, other.Invoke(ctx, "/t.T/Unary", &in, &out))
	assert.Equal(t, int64(1), b.calls.Load(), "path prefix /t.T/: service b")

	var trailer metadata.MD
	err = other.Invoke(ctx, "/x.Y/Z", &in, &out, grpc.Trailer(&trailer))
	assert.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
	assert.Equal(t, []string{proxy.ReasonNoRoute}, trailer.Get("x-outbound-error"))
	assert.Equal(t, [2]int64{1, 1}, [2]int64{a.calls.Load(), b.calls.Load()}, "no upstream call for no_route")
}

// A reload that sends a listener's service off the native path
// (host_header: preserve) leaves connections grpc-go already serves with
// grpc-go: their calls are UNAVAILABLE no_endpoints. New connections go
// to net/http and are proxied.
func TestNativeGRPCReloadOffTheNativePath(t *testing.T) {
	u := &rawUpstreamSvc{}
	up := startRawUpstream(t, u)
	conf := func(extra string) *proxy.Config {
		cfg, err := proxy.ParseConfig([]byte(`admin: {address: 127.0.0.1:0}
listeners: [{address: 127.0.0.1:0, service: up}]
services:
  up: {discovery: {static: [`+up+`]}, protocol: h2c`+extra+`}
`), t.TempDir())
		require.NoError(t, err)
		return cfg
	}
	s, err := proxy.NewServer(conf(""), proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	addr := serve(t, s)[0][len("http://"):]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, out := []byte("x"), []byte(nil)
	old := rawClient(t, addr)
	require.NoError(t, old.Invoke(ctx, "/t.T/Unary", &in, &out))

	require.NoError(t, s.Reload(conf(", host_header: preserve")))
	var trailer metadata.MD
	err = old.Invoke(ctx, "/t.T/Unary", &in, &out, grpc.Trailer(&trailer))
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	assert.Equal(t, []string{proxy.ReasonNoEndpoints}, trailer.Get("x-outbound-error"))

	c := h2cClient(t)
	o, err := rawGRPCCall(ctx, c, addr, "/t.T/Unary", "5S")
	require.NoError(t, err)
	assert.Equal(t, "0", o.status, "a new connection is proxied")
	code, _, _ := getPage(t, c, addr)
	assert.Equal(t, http.StatusOK, code, "and stays net/http's")
	assert.Equal(t, int64(2), u.calls.Load())
}

// A stream still open when limits.drain_timeout ends is cut (GracefulStop,
// then Stop) and Run returns.
func TestNativeGRPCDrainTimeoutCutsTheStream(t *testing.T) {
	u := &rawUpstreamSvc{hold: make(chan struct{})}
	defer close(u.hold)
	addr, s := startOwnAmbassador(t, startRawUpstream(t, u), "{drain_timeout: 200ms}")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, out := openHold(ctx, t, rawClient(t, addr))

	s.stop()
	require.NoError(t, s.wait(5*time.Second), "Run returns after the drain timeout")
	err := st.RecvMsg(&out)
	assert.Equal(t, codes.Unavailable, status.Code(err), "the stream was cut: %v", err)
}
