package proxy_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/inbound/inboundtest"
	"github.com/outbound-go/outbound/retry"
)

// Adversarial tests of the inbound side: a client that sends a broken
// request body, or goes away half-way through its upload, must not make
// the ambassador eject a healthy endpoint for every other client. Errors
// reading the caller's body are the caller's, never the upstream's.

// inboundUpstream is a raw upstream that answers 200 to every request it
// reads whole, and signals on arrived when the bytes of a request begin to
// reach it (so a test can break its body only once the ambassador is
// forwarding it). A request whose body never completes is not recorded.
func inboundUpstream(t *testing.T) (*rawUpstream, <-chan struct{}) {
	arrived := make(chan struct{}, 16)
	up := newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		for {
			if _, err := br.Peek(1); err != nil {
				return
			}
			select {
			case arrived <- struct{}{}:
			default:
			}
			req, err := u.ReadRequest(br)
			if err != nil {
				return
			}
			body := "ok:" + strconv.Itoa(len(req.Body))
			writeResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
		}
	})
	return up, arrived
}

// waitArrived waits until the upstream saw the start of a request.
func waitArrived(t *testing.T, arrived <-chan struct{}) {
	t.Helper()
	select {
	case <-arrived:
	case <-time.After(wireTimeout):
		t.Fatal("the request never reached the upstream")
	}
}

// breakerState is the "up" service's one endpoint's breaker in /status.
func breakerState(t *testing.T, s *proxy.Server) string {
	t.Helper()
	eps := s.Status().Services["up"].Endpoints
	require.Len(t, eps, 1)
	return eps[0].Breaker
}

// assertHealthyForOthers checks that the endpoint's breaker is closed and
// that another client's plain GET is answered by the upstream with want.
func assertHealthyForOthers(t *testing.T, s *proxy.Server, addr, want string) {
	t.Helper()
	assert.Equal(t, "closed", breakerState(t, s))
	code, reason, body := fetch(t, client(t), http.MethodGet, "http://"+addr+"/other", "")
	assert.Equal(t, http.StatusOK, code, "another client's GET; X-Outbound-Error %q", reason)
	assert.Empty(t, reason)
	assert.Equal(t, want, body)
}

const inboundBreaker = "breaker: {consecutive_failures: 3, open_timeout: 1m}"

func TestAdversarialMalformedChunkedBodyDoesNotTripBreaker(t *testing.T) {
	up, arrived := inboundUpstream(t)
	addr, s := oneServiceAmbassador(t, []string{up.Addr()}, inboundBreaker, "")

	for i := range 5 {
		c, br := rawDial(t, addr)
		rawSend(t, c, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
		waitArrived(t, arrived)
		rawSend(t, c, "zz\r\n") // not a chunk size
		resp, err := readRawResponse(br, "POST")
		require.NoError(t, err, "request %d", i)
		assert.Equal(t, http.StatusBadRequest, resp.Status, "request %d", i)
		assert.Equal(t, []string{proxy.ReasonBadRequest}, resp.Header[proxy.HeaderError], "request %d", i)
		_ = c.Close()
	}

	assert.Empty(t, up.Requests(), "no broken request reached the upstream whole")
	assert.Equal(t, 5, up.Conns(), "each broken request was forwarded, on a connection of its own")
	assertHealthyForOthers(t, s, addr, "ok:0")
	reqs := up.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "/other", reqs[0].Target)
}

func TestAdversarialAbortedUploadsDoNotTripBreaker(t *testing.T) {
	up, arrived := inboundUpstream(t)
	addr, s := oneServiceAmbassador(t, []string{up.Addr()}, inboundBreaker, "")

	for range 5 {
		c, _ := rawDial(t, addr)
		rawSend(t, c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
		waitArrived(t, arrived)
		_ = c.Close()
		// The request is over once the service has nothing in flight.
		require.Eventually(t, func() bool { return s.Status().Services["up"].InFlight == 0 },
			wireTimeout, time.Millisecond, "the aborted request never finished")
	}

	assert.Empty(t, up.Requests(), "no aborted upload reached the upstream whole")
	assert.Equal(t, 5, up.Conns())
	assertHealthyForOthers(t, s, addr, "ok:0")
	reqs := up.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "/other", reqs[0].Target)
}

// TestAdversarialBrokenBodiesToH2CUpstreamWithRetry: the same two attacks
// against an h2c upstream through retry and breaker: no retry, no trip, the
// malformed bodies get 400 bad_request, and the access log says 400
// bad_request and 499 (the client went away) for them.
func TestAdversarialBrokenBodiesToH2CUpstreamWithRetry(t *testing.T) {
	up := inboundtest.Upstreams(t)[1]
	require.Equal(t, "h2c", up.Proto)
	var logs syncBuffer
	s, err := proxy.NewServer(&proxy.Config{
		Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Service: "up"}},
		Services: map[string]ambassador.ServiceConfig{"up": {
			Discovery: discovery.Config{Static: []string{up.Host}},
			Protocol:  ambassador.ProtocolH2C,
			Retry:     &retry.Config{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
			Breaker:   &breaker.Config{ConsecutiveFailures: 3, OpenTimeout: time.Minute},
		}},
	}, proxy.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	addr := strings.TrimPrefix(serve(t, s)[0], "http://")
	arrivedOnce := func(n int32) {
		t.Helper()
		require.Eventually(t, func() bool { return up.Arrived.Load() >= n }, wireTimeout, time.Millisecond)
	}

	for i := range 5 {
		c, br := rawDial(t, addr)
		rawSend(t, c, "PUT /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
		arrivedOnce(int32(i + 1))
		rawSend(t, c, "zz\r\n")
		resp, err := readRawResponse(br, "PUT")
		require.NoError(t, err, "request %d", i)
		assert.Equal(t, http.StatusBadRequest, resp.Status, "request %d", i)
		assert.Equal(t, []string{proxy.ReasonBadRequest}, resp.Header[proxy.HeaderError], "request %d", i)
		_ = c.Close()
	}
	for i := range 5 {
		c, _ := rawDial(t, addr)
		rawSend(t, c, "PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789")
		arrivedOnce(int32(5 + i + 1))
		_ = c.Close()
		require.Eventually(t, func() bool { return s.Status().Services["up"].InFlight == 0 },
			wireTimeout, time.Millisecond, "the aborted request never finished")
	}

	assert.EqualValues(t, 10, up.Arrived.Load(), "each broken request was sent once: no retry")
	assert.Zero(t, up.Complete.Load())
	assertHealthyForOthers(t, s, addr, "ok")
	assert.EqualValues(t, 1, up.Complete.Load())

	statuses := map[float64]int{}
	for _, l := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["path"] == "/upload" {
			statuses[m["status"].(float64)]++
			if m["status"] == float64(400) {
				assert.Equal(t, proxy.ReasonBadRequest, m["error"])
			}
		}
	}
	assert.Equal(t, map[float64]int{400: 5, 499: 5}, statuses, logs.String())
}
