package proxy_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/internal/testkit"
)

// TestTCPEchoFourMiBBothWaysWithHalfClose sends 4 MiB through a tcp
// listener to an echo upstream while reading the echo, then half-closes:
// the upstream sees EOF, half-closes back, and the client reads every
// byte, in order, then EOF. Once without and once with an idle timer
// (which stamps every read).
func TestTCPEchoFourMiBBothWaysWithHalfClose(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"no idle timeout", ""},
		{"idle timeout", "tcp: {idle_timeout: 1m}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startEcho(t, "")
			a := startTCPAmb(t, []string{up.Addr()}, tc.extra, "")
			c := a.dial(t)
			require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))

			data := make([]byte, 4<<20)
			_, _ = rand.Read(data)
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(data)
				if err == nil {
					err = c.CloseWrite()
				}
				werr <- err
			}()
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			require.NoError(t, <-werr)
			require.Equal(t, len(data), len(got))
			require.True(t, bytes.Equal(data, got), "echo differs")
			require.NoError(t, c.Close())

			// The pair's line: both byte counts and a clean end.
			require.Eventually(t, func() bool { return strings.Contains(a.log.String(), `"end":"closed"`) }, 5*time.Second, 5*time.Millisecond)
			line := a.log.String()
			assert.Contains(t, line, `"bytes_in":4194304`)
			assert.Contains(t, line, `"bytes_out":4194304`)
			assert.Contains(t, line, `"endpoint":"`+up.Addr()+`"`)
			assert.Equal(t, int64(1), a.counter(t, "outbound.tcp.connections", map[string]string{"service": "db", "result": "connected"}))
			assert.Equal(t, int64(4<<20), a.counter(t, "outbound.tcp.transferred", map[string]string{"direction": "in"}))
			assert.Equal(t, int64(4<<20), a.counter(t, "outbound.tcp.transferred", map[string]string{"direction": "out"}))
			assert.Zero(t, a.counter(t, "outbound.tcp.open_connections", nil))
		})
	}
}

// TestTCPConnectRetriesAnotherEndpoint: with one endpoint refusing, every
// client connection still reaches the live one (retry.max_attempts 2),
// and the refusals are the dead endpoint's failures in /status.
func TestTCPConnectRetriesAnotherEndpoint(t *testing.T) {
	up := startEcho(t, "")
	dead := deadAddr(t)
	a := startTCPAmb(t, []string{dead, up.Addr()}, "retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}", "")
	for i := range 6 {
		c := a.dial(t)
		echoOnce(t, c, "ping")
		require.NoError(t, c.Close(), "connection %d", i)
	}
	st := a.srv.Status().Services["db"]
	var deadFailures int64
	for _, ep := range st.Endpoints {
		if ep.Address == dead {
			deadFailures = ep.Failures
			assert.Contains(t, ep.LastError, "refused")
		}
	}
	// round_robin alternates, so the dead endpoint was picked first for
	// about half of the connections, and each time it failed.
	assert.Positive(t, deadFailures)
	assert.Equal(t, int64(6), a.counter(t, "outbound.tcp.connections", map[string]string{"result": "connected"}))
}

// TestTCPConnectFailsWithoutRetry: one attempt by default; a refused
// connect closes the client connection and counts connect_failed.
func TestTCPConnectFailsWithoutRetry(t *testing.T) {
	a := startTCPAmb(t, []string{deadAddr(t)}, "", "")
	c := a.dial(t)
	waitEOF(t, c)
	require.Eventually(t, func() bool {
		return a.counter(t, "outbound.tcp.connections", map[string]string{"result": "connect_failed"}) == 1
	}, 5*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(a.log.String(), `"end":"connect_failed"`) }, 5*time.Second, 5*time.Millisecond)
}

// TestTCPBreakerEjectsEndpoint: consecutive connect failures open the
// dead endpoint's breaker, after which no connection tries it.
func TestTCPBreakerEjectsEndpoint(t *testing.T) {
	up := startEcho(t, "")
	dead := deadAddr(t)
	a := startTCPAmb(t, []string{dead, up.Addr()},
		"retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}\nbreaker: {consecutive_failures: 2, open_timeout: 1m}", "")
	breakerOf := func() string {
		for _, ep := range a.srv.Status().Services["db"].Endpoints {
			if ep.Address == dead {
				return ep.Breaker
			}
		}
		return ""
	}
	for i := 0; breakerOf() != "open"; i++ {
		require.Less(t, i, 20, "the breaker did not open")
		c := a.dial(t)
		echoOnce(t, c, "x")
		require.NoError(t, c.Close())
	}
	failures := func() int64 {
		for _, ep := range a.srv.Status().Services["db"].Endpoints {
			if ep.Address == dead {
				return ep.Failures
			}
		}
		return -1
	}
	before := failures()
	require.Equal(t, int64(2), before)
	for range 6 {
		c := a.dial(t)
		echoOnce(t, c, "y")
		require.NoError(t, c.Close())
	}
	assert.Equal(t, before, failures(), "an ejected endpoint was dialled")
}

// TestTCPMaxConnectionsQueueFIFO: with max_connections 1, the second and
// third client connections queue; each proceeds, in arrival order, when
// the slot before it frees.
func TestTCPMaxConnectionsQueueFIFO(t *testing.T) {
	up := startEcho(t, "")
	a := startTCPAmb(t, []string{up.Addr()}, "max_connections: 1\ntcp: {queue_timeout: 10s}", "")
	queued := func(n int) func() bool {
		return func() bool { return a.srv.Status().Services["db"].Queued == n }
	}
	first := a.dial(t)
	echoOnce(t, first, "1")
	second := a.dial(t)
	require.Eventually(t, queued(1), 5*time.Second, time.Millisecond)
	third := a.dial(t)
	require.Eventually(t, queued(2), 5*time.Second, time.Millisecond)
	_, err := io.WriteString(third, "3")
	require.NoError(t, err)

	require.NoError(t, first.Close())
	echoOnce(t, second, "2") // the head of the queue got the slot
	assert.Equal(t, 1, a.srv.Status().Services["db"].Queued, "the third connection must still wait")
	eps := a.srv.Status().Services["db"].Endpoints
	require.Len(t, eps, 1)
	assert.Equal(t, 1, eps[0].InFlight, "the open pair counts as in flight")

	require.NoError(t, second.Close())
	got := make([]byte, 1)
	require.NoError(t, third.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadFull(third, got)
	require.NoError(t, err)
	assert.Equal(t, "3", string(got))
	assert.Equal(t, int64(3), a.counter(t, "outbound.tcp.connections", map[string]string{"result": "connected"}))
}

// TestTCPQueueTimeout: a queued connection whose slot never frees is
// closed after queue_timeout and counted as queued_timeout; with no
// queue_timeout it is refused at once.
func TestTCPQueueTimeout(t *testing.T) {
	for _, tc := range []struct{ name, tcp, result string }{
		{"queued", "tcp: {queue_timeout: 50ms}", "queued_timeout"},
		{"no queue", "", "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startEcho(t, "")
			a := startTCPAmb(t, []string{up.Addr()}, "max_connections: 1\n"+tc.tcp, "")
			first := a.dial(t)
			echoOnce(t, first, "1")
			second := a.dial(t)
			waitEOF(t, second)
			require.Eventually(t, func() bool {
				return a.counter(t, "outbound.tcp.connections", map[string]string{"result": tc.result}) == 1
			}, 5*time.Second, 5*time.Millisecond)
			echoOnce(t, first, "still open")
		})
	}
}

// TestTCPMaxConcurrentRequestsClosesAtOnce: over max_concurrent_requests
// a client connection is closed at once, counted refused, even with a
// queue configured.
func TestTCPMaxConcurrentRequestsClosesAtOnce(t *testing.T) {
	up := startEcho(t, "")
	a := startTCPAmb(t, []string{up.Addr()}, "max_concurrent_requests: 1\ntcp: {queue_timeout: 10s}", "")
	first := a.dial(t)
	echoOnce(t, first, "1")
	second := a.dial(t)
	waitEOF(t, second)
	assert.Equal(t, int64(1), a.counter(t, "outbound.tcp.connections", map[string]string{"result": "refused"}))
	require.NoError(t, first.Close())
	require.Eventually(t, func() bool { return a.srv.Status().Services["db"].InFlight == 0 }, 5*time.Second, time.Millisecond)
	third := a.dial(t)
	echoOnce(t, third, "3")
}

// TestTCPIdleTimeoutClosesSilentPair: a pair with no bytes either way for
// idle_timeout is closed (both sides); traffic before it keeps it open.
func TestTCPIdleTimeoutClosesSilentPair(t *testing.T) {
	up := startEcho(t, "")
	a := startTCPAmb(t, []string{up.Addr()}, "tcp: {idle_timeout: 150ms}", "")
	c := a.dial(t)
	start := time.Now()
	for range 5 {
		echoOnce(t, c, "tick")
	}
	waitEOF(t, c)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(a.log.String(), `"end":"idle_timeout"`) }, 5*time.Second, 5*time.Millisecond)
}

// TestTCPDrainOnShutdown: after shutdown starts no connection is accepted,
// an open pair keeps working during the drain, and is closed when
// drain_timeout ends.
func TestTCPDrainOnShutdown(t *testing.T) {
	up := startEcho(t, "")
	a := startTCPAmb(t, []string{up.Addr()}, "", "{drain_timeout: 1s}")
	c := a.dial(t)
	echoOnce(t, c, "before")
	a.cancel()
	waitNotAccepting(t, a.addr)
	echoOnce(t, c, "during the drain")
	waitEOF(t, c)
	waitRunReturned(t, a.done, "drain_timeout")
	assert.Contains(t, a.log.String(), `"end":"drain"`)
}

// TestTCPReloadKeepsOpenPair: a reload that points the service at another
// endpoint sends new connections there, while a pair opened before it
// stays on the old endpoint and keeps working.
func TestTCPReloadKeepsOpenPair(t *testing.T) {
	oldUp, newUp := startEcho(t, "old\n"), startEcho(t, "new\n")
	a := startTCPAmb(t, []string{oldUp.Addr()}, "", "")
	before := a.dial(t)
	require.Equal(t, "old\n", readGreeting(t, before, 4))

	src := tcpConfig([]string{newUp.Addr()}, "", "")
	cfg, err := proxy.ParseConfig([]byte(src), t.TempDir())
	require.NoError(t, err)
	require.NoError(t, a.srv.Reload(cfg))

	after := a.dial(t)
	require.Equal(t, "new\n", readGreeting(t, after, 4))
	echoOnce(t, before, "the old pair still works")
	echoOnce(t, after, "and so does the new one")
}

// TestTCPReloadRefusesProtocolChange: a listener cannot turn from tcp to
// http by a reload.
func TestTCPReloadRefusesProtocolChange(t *testing.T) {
	up := startEcho(t, "")
	a := startTCPAmb(t, []string{up.Addr()}, "", "")
	cfg, err := proxy.ParseConfig([]byte(`admin: {address: 127.0.0.1:0}
listeners: [{address: 127.0.0.1:0, service: web}]
services: {web: {discovery: {static: [`+up.Addr()+`]}}}
`), "")
	require.NoError(t, err)
	err = a.srv.Reload(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "listeners[0].protocol")
}

// TestTCPLeastRequestCountsOpenConnections: with least_request over two
// endpoints, open pairs count as in flight, so eight held connections
// split four and four, and /status shows them per endpoint.
func TestTCPLeastRequestCountsOpenConnections(t *testing.T) {
	u1, u2 := startEcho(t, ""), startEcho(t, "")
	a := startTCPAmb(t, []string{u1.Addr(), u2.Addr()}, "discovery: {static: ["+u1.Addr()+", "+u2.Addr()+"], balancer: least_request}", "")
	var held []net.Conn
	for range 8 {
		c := a.dial(t)
		echoOnce(t, c, "hold")
		held = append(held, c)
	}
	st := a.srv.Status().Services["db"]
	require.Len(t, st.Endpoints, 2)
	for _, ep := range st.Endpoints {
		assert.Equal(t, 4, ep.InFlight, "endpoint %s", ep.Address)
	}
	assert.Equal(t, int64(8), st.InFlight)
	assert.Equal(t, int64(8), a.counter(t, "outbound.tcp.open_connections", nil))
	for _, c := range held {
		require.NoError(t, c.Close())
	}
	require.Eventually(t, func() bool {
		for _, ep := range a.srv.Status().Services["db"].Endpoints {
			if ep.InFlight != 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, time.Millisecond)
}

// TestTCPTinyIdleTimeout: an idle_timeout shorter than the time it takes
// to start the pair still closes every pair as idle. (The timer may fire
// before run has stored it; tcpPair.tmu orders the two. That ordering was
// found by reading, not by this test: 5 -race runs without the lock did
// not hit the window.)
func TestTCPTinyIdleTimeout(t *testing.T) {
	up := startEcho(t, "")
	a := startTCPAmb(t, []string{up.Addr()}, "tcp: {idle_timeout: 1ns}", "")
	for range 5 {
		waitEOF(t, a.dial(t))
	}
	require.Eventually(t, func() bool { return strings.Count(a.log.String(), `"end":"idle_timeout"`) == 5 }, 5*time.Second, 5*time.Millisecond)
}

// A reset on either side reaches the other as a reset, not as a clean
// close: a client that reads to EOF (a response delimited by the close,
// a dump) must not take an upstream that crashed mid-answer for one that
// finished, and an upstream learns that its client aborted.
func TestTCPResetPassesThrough(t *testing.T) {
	for _, tc := range []struct {
		name        string
		clientReset bool // the client resets; otherwise the upstream does
	}{
		{"client resets", true},
		{"upstream resets", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upErr := make(chan error, 1)
			up := testkit.NewRawUpstream(t, func(_ *testkit.RawUpstream, c net.Conn, br *bufio.Reader) {
				if _, err := br.ReadString('\n'); err != nil {
					upErr <- err
					return
				}
				if !tc.clientReset {
					_ = c.(*net.TCPConn).SetLinger(0)
					_ = c.Close()
					return
				}
				_, err := io.WriteString(c, "ready\n")
				if err == nil {
					_, err = br.ReadByte()
				}
				upErr <- err
			})
			a := startTCPAmb(t, []string{up.Addr()}, "", "")
			c := a.dial(t)
			require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
			_, err := io.WriteString(c, "hello\n")
			require.NoError(t, err)
			if tc.clientReset {
				line, err := bufio.NewReader(c).ReadString('\n')
				require.NoError(t, err)
				require.Equal(t, "ready\n", line)
				require.NoError(t, c.SetLinger(0))
				require.NoError(t, c.Close())
				select {
				case err := <-upErr:
					require.ErrorIs(t, err, syscall.ECONNRESET, "what the upstream read")
				case <-time.After(5 * time.Second):
					t.Fatal("the upstream saw nothing within 5s")
				}
				return
			}
			_, err = c.Read(make([]byte, 1))
			require.ErrorIs(t, err, syscall.ECONNRESET, "what the client read")
		})
	}
}
