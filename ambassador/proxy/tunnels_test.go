package proxy_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/internal/testkit"
)

// tunnelAmb is an ambassador in front of an upstream that accepts
// WebSocket upgrades and then echoes, with one tunnel open through it.
type tunnelAmb struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	log    *testkit.SyncBuffer
	c      net.Conn
	br     *bufio.Reader
}

func openTunnel(t *testing.T, drainTimeout string) *tunnelAmb {
	t.Helper()
	up := h2cUpstream(t) // answers a websocket offer with 101, then echoes
	cfg, err := proxy.ParseConfig([]byte("admin: {address: 127.0.0.1:0}\nlimits: {drain_timeout: "+drainTimeout+"}\n"+
		"listeners:\n  - {address: 127.0.0.1:0, service: ws}\nservices:\n  ws: {discovery: {static: ["+up.Addr()+"]}}\n"), "")
	require.NoError(t, err)
	a := &tunnelAmb{done: make(chan error, 1), log: &testkit.SyncBuffer{}}
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()),
		proxy.WithAccessLog(slog.New(slog.NewJSONHandler(a.log, nil))))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	fin := make(chan struct{})
	go func() { a.done <- s.Run(ctx); close(fin) }()
	t.Cleanup(func() {
		cancel()
		if a.c != nil {
			_ = a.c.Close()
		}
		select {
		case <-fin:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	})
	select {
	case <-s.Ready():
	case err := <-a.done:
		t.Fatalf("Run: %v", err)
	}
	a.addr = s.Addrs()[0].String()
	a.c, a.br = rawDial(t, a.addr)
	r := roundTrip(t, a.c, a.br, "GET", "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	require.Equal(t, http.StatusSwitchingProtocols, r.Status)
	a.echo(t, "open")
	return a
}

// echo sends msg through the tunnel and reads it back.
func (a *tunnelAmb) echo(t *testing.T, msg string) {
	t.Helper()
	require.NoError(t, a.c.SetDeadline(time.Now().Add(wireTimeout)))
	rawSend(t, a.c, msg)
	b := make([]byte, len(msg))
	_, err := io.ReadFull(a.br, b)
	require.NoError(t, err, "echo of %q through the tunnel", msg)
	assert.Equal(t, msg, string(b))
}

// stopAccepting cancels Run and waits until the listener refuses new
// connections: the drain has begun.
func (a *tunnelAmb) stopAccepting(t *testing.T) {
	t.Helper()
	a.cancel()
	waitNotAccepting(t, a.addr)
}

// A WebSocket tunnel open when the drain begins keeps working, and Run
// waits for it (http.Server.Shutdown alone neither waits for a hijacked
// connection nor closes it); once the client closes it, Run returns with
// the tunnel's access-log line written: status 101 and the bytes relayed.
func TestWebSocketTunnelIsDrained(t *testing.T) {
	a := openTunnel(t, "1m")
	a.stopAccepting(t)
	a.echo(t, "during the drain")
	select {
	case err := <-a.done:
		t.Fatalf("Run returned (%v) while a WebSocket tunnel was open", err)
	default:
	}
	require.NoError(t, a.c.Close())
	waitRunReturned(t, a.done, "the tunnel closed")
	line := a.log.String()
	assert.Contains(t, line, `"path":"/ws"`)
	assert.Contains(t, line, `"status":101`)
	n := strconv.Itoa(len("open") + len("during the drain"))
	assert.Contains(t, line, `"bytes_in":`+n+`,"bytes_out":`+n+`,`)
}

// A tunnel still open when drain_timeout ends is closed by the ambassador,
// and Run returns after its handler let go of it.
func TestWebSocketTunnelClosedAtDrainTimeout(t *testing.T) {
	a := openTunnel(t, "100ms")
	a.stopAccepting(t)
	waitRunReturned(t, a.done, "drain_timeout")
	assert.Contains(t, a.log.String(), `"status":101`, "the line is written before Run returns")
	waitEOF(t, a.c)
}

// Bytes a client sends right behind its upgrade request, before the 101
// (HTTP allows it), reach the upstream: the server has read them with the
// request, and the relay takes them from its buffer before reading the
// connection (ReverseProxy alone reads only the connection and lost them).
func TestWebSocketTunnelKeepsBytesSentWithTheUpgrade(t *testing.T) {
	up := h2cUpstream(t) // websocket: 101, then echo
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	require.NoError(t, c.SetDeadline(time.Now().Add(wireTimeout)))
	rawSend(t, c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nEARLY")
	r, err := readRawResponse(br, "GET")
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, r.Status)
	b := make([]byte, len("EARLY"))
	_, err = io.ReadFull(br, b)
	require.NoError(t, err, "the early bytes come back through the tunnel")
	assert.Equal(t, "EARLY", string(b))
	rawSend(t, c, "late")
	b = make([]byte, len("late"))
	_, err = io.ReadFull(br, b)
	require.NoError(t, err)
	assert.Equal(t, "late", string(b))
}

// The upstream's hop-by-hop headers stay on its hop in a 101 too (the
// fields its Connection names, Keep-Alive, Proxy-*; ReverseProxy removes
// them from every other response): the client gets the switch itself
// (Connection: Upgrade, Upgrade) and the end-to-end headers.
func TestWebSocketSwitchKeepsHopHeadersOnTheirHop(t *testing.T) {
	up := newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		if _, err := u.ReadRequest(br); err != nil {
			return
		}
		writeResponse(t, c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade, X-Up-Secret\r\nUpgrade: websocket\r\n"+
			"X-Up-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authenticate: Basic\r\nX-Kept: yes\r\n\r\n")
		_, _ = io.Copy(c, br)
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	r := roundTrip(t, c, br, "GET", "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	require.Equal(t, http.StatusSwitchingProtocols, r.Status)
	assert.Equal(t, []string{"Upgrade"}, r.Header["Connection"])
	assert.Equal(t, []string{"websocket"}, r.Header["Upgrade"])
	assert.Equal(t, []string{"yes"}, r.Header["X-Kept"])
	for _, k := range []string{"X-Up-Secret", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate"} {
		assert.NotContains(t, r.Header, k, "response header %s", k)
	}
	require.NoError(t, c.SetDeadline(time.Now().Add(wireTimeout)))
	rawSend(t, c, "ping")
	b := make([]byte, 4)
	_, err := io.ReadFull(br, b)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(b))
}

// A switch the ambassador refuses (the upstream switched to a protocol the
// client did not ask for: 502) closes the upstream's connection at once;
// ReverseProxy alone left it open (golang/go#80875).
func TestRefusedSwitchClosesTheUpstreamConnection(t *testing.T) {
	closed := make(chan error, 1)
	up := newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		if _, err := u.ReadRequest(br); err != nil {
			return
		}
		writeResponse(t, c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(wireTimeout))
		_, err := br.ReadByte()
		closed <- err
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	r := roundTrip(t, c, br, "GET", "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	assert.Equal(t, http.StatusBadGateway, r.Status)
	err := <-closed
	assert.ErrorIs(t, err, io.EOF, "the ambassador closed the upstream connection (not the test's deadline)")
}
