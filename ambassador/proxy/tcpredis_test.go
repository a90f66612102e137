package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/testserver"
)

// respConn is a minimal RESP client for the tests: commands as arrays of
// bulk strings, answers read as one line (a bulk string's line after its
// length).
type respConn struct {
	c  net.Conn
	br *bufio.Reader
}

func (r respConn) do(t *testing.T, args ...string) string {
	t.Helper()
	require.NoError(t, r.c.SetDeadline(time.Now().Add(5*time.Second)))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_, err := r.c.Write([]byte(b.String()))
	require.NoError(t, err)
	line, err := r.br.ReadString('\n')
	require.NoError(t, err)
	if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
		line, err = r.br.ReadString('\n')
		require.NoError(t, err)
	}
	return strings.TrimSuffix(line, "\r\n")
}

func (a *tcpAmb) redis(t *testing.T) respConn {
	c := a.dial(t)
	return respConn{c: c, br: bufio.NewReader(c)}
}

// TestTCPRedisThroughAmbassador: PING, SET and GET on a real redis-server
// through a tcp listener, and the value is in that redis.
func TestTCPRedisThroughAmbassador(t *testing.T) {
	r := testserver.StartRedis(t)
	a := startTCPAmb(t, []string{r.Addr}, "", "")
	rc := a.redis(t)
	assert.Equal(t, "+PONG", rc.do(t, "PING"))
	assert.Equal(t, "+OK", rc.do(t, "SET", "greeting", "hello through the ambassador"))
	assert.Equal(t, "hello through the ambassador", rc.do(t, "GET", "greeting"))
	got, err := r.Do("STRLEN", "greeting") // Do reads one line: the length is enough
	require.NoError(t, err)
	assert.Equal(t, "28", got)
}

// TestTCPRedisEndpointStopped: with two redis endpoints, one stopped
// mid-test, the pair open to it ends and every new connection is joined
// to the live one (connect retry, then the breaker ejects the dead one).
func TestTCPRedisEndpointStopped(t *testing.T) {
	r1, r2 := testserver.StartRedis(t), testserver.StartRedis(t)
	a := startTCPAmb(t, []string{r1.Addr, r2.Addr},
		"retry: {max_attempts: 2, base_delay: 1ms, max_delay: 2ms}\nbreaker: {consecutive_failures: 1, open_timeout: 1m}", "")

	// Open pairs to both endpoints (round_robin alternates).
	var onR1 respConn
	for i := range 2 {
		rc := a.redis(t)
		key := fmt.Sprintf("pair%d", i)
		require.Equal(t, "+OK", rc.do(t, "SET", key, "x"))
		if n, err := r1.Do("EXISTS", key); err == nil && n == "1" {
			onR1 = rc
		}
	}
	require.NotNil(t, onR1.c, "no pair reached the first redis")

	r1.Stop()
	waitEOF(t, onR1.c) // the pair to the stopped redis ends

	for i := range 6 {
		rc := a.redis(t)
		require.Equal(t, "+PONG", rc.do(t, "PING"), "connection %d", i)
		require.Equal(t, "+OK", rc.do(t, "SET", fmt.Sprintf("k%d", i), "v"))
		require.NoError(t, rc.c.Close())
	}
	n, err := r2.Do("EXISTS", "k0", "k1", "k2", "k3", "k4", "k5")
	require.NoError(t, err)
	assert.Equal(t, "6", n, "every new connection reached the live redis")
	for _, ep := range a.srv.Status().Services["db"].Endpoints {
		if ep.Address == r1.Addr {
			assert.Equal(t, "open", ep.Breaker)
		}
	}
}
