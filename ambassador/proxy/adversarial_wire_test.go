package proxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// The adversarial suite of the HTTP/1.1 hop: raw bytes that net/http
// itself must survive, sent by a hostile or broken upstream and by a
// hostile client. Each test checks both what the client got and what
// reached the upstream (how many requests, which paths): the ambassador
// must never answer one request with bytes meant for another, and never
// let a request the client smuggled inside another reach the upstream.

// ok is a complete 200 response carrying body.
func ok(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// scripted starts a raw upstream that reads requests one after another on
// each connection and writes answer(n, req) for each, n counting the
// requests of the whole upstream from 1. An answer ending in "\x00close"
// is written without that suffix and the connection is then closed.
func scripted(t *testing.T, answer func(n int, req rawRequest) string) *rawUpstream {
	t.Helper()
	var n atomic.Int64
	return newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		for {
			req, err := u.ReadRequest(br)
			if err != nil {
				return
			}
			a := answer(int(n.Add(1)), req)
			s, closeAfter := strings.CutSuffix(a, "\x00close")
			writeResponse(t, c, s)
			if closeAfter {
				return
			}
		}
	})
}

// paths lists the method and target of every request the upstream read.
func paths(u *rawUpstream) []string {
	var out []string
	for _, r := range u.Requests() {
		out = append(out, r.Method+" "+r.Target)
	}
	return out
}

// roundTrip sends raw on c and reads one response to a request of method.
func roundTrip(t *testing.T, c net.Conn, br *bufio.Reader, method, raw string) rawResponse {
	t.Helper()
	rawSend(t, c, raw)
	resp, err := readRawResponse(br, method)
	require.NoError(t, err)
	return resp
}

func getReq(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }

// readBroken sends raw on c and reads what comes back for a response
// whose body the upstream cut short. The client must see a broken
// response: the connection closes before a status line (the ambassador
// had not flushed the head yet), or after a head and part of the body but
// before the framing completes. It returns the response (zero when the
// connection closed first).
func readBroken(t *testing.T, c net.Conn, br *bufio.Reader, raw string) rawResponse {
	t.Helper()
	rawSend(t, c, raw)
	r, err := readRawResponse(br, "GET")
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Log("closed before a response head")
		return rawResponse{}
	}
	require.NoError(t, err)
	t.Logf("head %d, then %d body bytes and the close", r.Status, len(r.Body))
	assert.Equal(t, 200, r.Status)
	assert.False(t, r.Complete, "a truncated body must not look complete")
	assert.True(t, strings.HasPrefix("0123456789", string(r.Body)), "body %q", r.Body)
	requireClosed(t, br)
	return r
}

// requireClosed checks that the peer closes c (EOF or a reset) with
// nothing more to read; an assertion, so the test goes on to report what
// the upstream saw.
func requireClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	b, err := io.ReadAll(br)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		assert.False(t, errors.As(err, &ne) && ne.Timeout(), "connection still open: %v", err)
	}
	assert.Empty(t, string(b), "bytes after the last response")
}

// lateBytesUpstream answers the first request of its first connection
// with first and then, once the test calls sendLate, writes late on that
// now idle connection (half-closing it when closeWrite is set, as a server
// that closes after a 408 looks to its peer); an empty late is not waited
// for. noticed is closed when the ambassador closes that connection,
// whose later bytes are never read as requests. Every other connection
// answers each request with ok("real").
func lateBytesUpstream(t *testing.T, first, late string, closeWrite bool) (up *rawUpstream, sendLate func(), noticed <-chan struct{}) {
	t.Helper()
	var firstConn atomic.Bool
	gotFirst, goLate, closed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	stop := make(chan struct{})
	up = newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		if firstConn.Swap(true) {
			for {
				if _, err := u.ReadRequest(br); err != nil {
					return
				}
				writeResponse(t, c, ok("real"))
			}
		}
		if _, err := u.ReadRequest(br); err != nil {
			return
		}
		writeResponse(t, c, first)
		close(gotFirst)
		if late != "" {
			select {
			case <-goLate:
			case <-stop:
				return
			}
			writeResponse(t, c, late)
		}
		if closeWrite {
			_ = c.(*net.TCPConn).CloseWrite()
		}
		_, _ = io.Copy(io.Discard, br)
		close(closed)
	})
	t.Cleanup(func() { close(stop) }) // before up's own cleanup: unblocks the handler
	return up, func() {
		<-gotFirst
		if late != "" {
			close(goLate)
		}
	}, closed
}

// awaitNoticed waits, up to a bound, for the ambassador to drop the
// upstream connection that unsolicited bytes went to. An ambassador that
// never notices them is caught by the request that follows, which must
// not get them. (Waiting matters: a request sent while those bytes are
// still in flight could get them from any HTTP/1.1 client; net/http
// notices them on an idle connection as soon as they arrive.)
func awaitNoticed(t *testing.T, noticed <-chan struct{}) {
	t.Helper()
	select {
	case <-noticed:
	case <-time.After(time.Second):
		t.Log("the ambassador kept the upstream connection with unread bytes on it")
	}
}

// checkFreshAnswer sends /one on a client connection, expecting want1,
// waits for the ambassador to drop the first upstream connection, then
// sends /two (on the same client connection when reuse is set, else on
// another), which must get its own "real" answer from a second upstream
// connection.
func checkFreshAnswer(t *testing.T, first, late string, closeWrite bool, want1 int, reuse bool) {
	t.Helper()
	up, sendLate, noticed := lateBytesUpstream(t, first, late, closeWrite)
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c1, br1 := rawDial(t, addr)
	r := roundTrip(t, c1, br1, "GET", getReq("/one"))
	require.Equal(t, want1, r.Status)
	sendLate()
	awaitNoticed(t, noticed)
	c2, br2 := c1, br1
	if !reuse {
		c2, br2 = rawDial(t, addr)
	}
	r = roundTrip(t, c2, br2, "GET", getReq("/two"))
	assert.Equal(t, 200, r.Status)
	assert.Equal(t, "real", string(r.Body))
	assert.Equal(t, []string{"GET /one", "GET /two"}, paths(up))
	assert.Equal(t, 2, up.Conns(), "a second upstream connection: the poisoned one must not be reused")
}

// An upstream that writes a whole unsolicited response on a connection
// after answering (with the answer, or later when the connection is idle):
// the next request, from another client, gets its own answer on a fresh
// upstream connection, never the stale bytes.
func TestWireStaleBytesOnIdleUpstreamConnection(t *testing.T) {
	t.Run("with-answer", func(t *testing.T) {
		checkFreshAnswer(t, ok("first")+ok("evil"), "", false, 200, false)
	})
	t.Run("when-idle", func(t *testing.T) {
		checkFreshAnswer(t, ok("first"), ok("evil"), false, 200, false)
	})
}

// An upstream that times out an idle connection with a 408 and closes
// it: the next request gets the real answer, never the 408.
func TestWireIdle408IsNotAnAnswer(t *testing.T) {
	const timeout408 = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
	t.Run("with-answer", func(t *testing.T) {
		checkFreshAnswer(t, ok("first")+timeout408, "", true, 200, false)
	})
	t.Run("when-idle", func(t *testing.T) {
		checkFreshAnswer(t, ok("first"), timeout408, true, 200, false)
	})
}

// A body cut short by the upstream closing reaches the client as a broken
// response (the connection closes before the framing completes), never as
// a clean short body.
func TestWireTruncatedUpstreamBody(t *testing.T) {
	for name, answer := range map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789\x00close",
		"chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n\x00close",
	} {
		t.Run(name, func(t *testing.T) {
			up := scripted(t, func(int, rawRequest) string { return answer })
			addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
			c, br := rawDial(t, addr)
			readBroken(t, c, br, getReq("/cut"))
			assert.Equal(t, []string{"GET /cut"}, paths(up))
		})
	}
}

// The same over HTTP/2 (h2c) from the client: the stream is reset, the
// body read fails.
func TestWireTruncatedUpstreamBodyH2C(t *testing.T) {
	up := scripted(t, func(int, rawRequest) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789\x00close"
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: wireTimeout}).Get("http://" + addr + "/cut")
	t.Logf("head: %v", err)
	if err == nil {
		// The head was flushed before the cut: the body must fail.
		defer resp.Body.Close()
		assert.Equal(t, 2, resp.ProtoMajor)
		var b []byte
		b, err = io.ReadAll(resp.Body)
		assert.True(t, strings.HasPrefix("0123456789", string(b)), "body %q", b)
	}
	assert.Error(t, err, "the stream must be reset, not end cleanly")
	assert.Equal(t, []string{"GET /cut"}, paths(up))
}

// A response with both Content-Length and Transfer-Encoding from the
// upstream does not desync the client's connection: the next request on
// it gets its own answer.
func TestWireUpstreamCLAndTE(t *testing.T) {
	up := scripted(t, func(n int, req rawRequest) string {
		if n == 1 {
			// Content-Length 5 would end inside the chunk framing.
			return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
		}
		return ok("two")
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	r := roundTrip(t, c, br, "GET", getReq("/one"))
	assert.Equal(t, 200, r.Status)
	assert.True(t, r.Complete)
	assert.Equal(t, "abc", string(r.Body), "Transfer-Encoding wins")
	r = roundTrip(t, c, br, "GET", getReq("/two"))
	assert.Equal(t, 200, r.Status)
	assert.Equal(t, "two", string(r.Body))
	assert.Equal(t, []string{"GET /one", "GET /two"}, paths(up))
}

// A request with both Content-Length and Transfer-Encoding from the
// client: whichever framing the ambassador honours, the request hidden in
// the body never reaches the upstream as a request of its own.
func TestWireClientCLAndTENeverSmuggles(t *testing.T) {
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for name, body := range map[string]string{
		// CL covers everything; TE ends the body after "0\r\n\r\n".
		"te-shorter": "0\r\n\r\n" + smuggled,
		// TE covers everything; CL ends the body after "5\r\n".
		"cl-shorter": "5\r\n" + smuggled[:5] + "\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			up := scripted(t, func(int, rawRequest) string { return ok("ok") })
			addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
			c, br := rawDial(t, addr)
			cl := len(body)
			if name == "cl-shorter" {
				cl = 3
			}
			rawSend(t, c, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(cl)+
				"\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
			r, err := readRawResponse(br, "POST")
			require.NoError(t, err)
			t.Logf("answered %d", r.Status)
			if r.Status != http.StatusBadRequest {
				assert.Equal(t, 200, r.Status)
			}
			requireClosed(t, br)
			assert.NotContains(t, paths(up), "GET /smuggled")
			assert.LessOrEqual(t, len(up.Requests()), 1, "%v", paths(up))
		})
	}
}

// A chunked request without a Content-Length is proxied with its body,
// and its client connection closes after the answer (the ambassador cannot
// tell it from one that also had a Content-Length).
func TestWireChunkedRequestEndsClientConnection(t *testing.T) {
	up := scripted(t, func(_ int, req rawRequest) string { return ok("got:" + string(req.Body)) })
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	r := roundTrip(t, c, br, "POST", "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	assert.Equal(t, 200, r.Status)
	assert.Equal(t, "got:hello", string(r.Body))
	assert.Equal(t, []string{"close"}, r.Header["Connection"])
	requireClosed(t, br)
	assert.Equal(t, []string{"POST /up"}, paths(up))
}

// Two different Content-Lengths: from the client a 400 and nothing
// upstream; from the upstream a 502, and the client's connection stays in
// step.
func TestWireDuplicateContentLength(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		up := scripted(t, func(int, rawRequest) string { return ok("ok") })
		addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
		c, br := rawDial(t, addr)
		r := roundTrip(t, c, br, "POST", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 25\r\n\r\nabcGET /smuggled HTTP/1.1\r\n\r\n")
		assert.Equal(t, http.StatusBadRequest, r.Status)
		requireClosed(t, br)
		assert.Empty(t, paths(up))
	})
	t.Run("upstream", func(t *testing.T) {
		up := scripted(t, func(n int, req rawRequest) string {
			if n == 1 {
				return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 20\r\n\r\nevilHTTP/1.1 200 OK\r\n\r\n"
			}
			return ok("two")
		})
		addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
		c, br := rawDial(t, addr)
		r := roundTrip(t, c, br, "GET", getReq("/one"))
		assert.Equal(t, http.StatusBadGateway, r.Status)
		r = roundTrip(t, c, br, "GET", getReq("/two"))
		assert.Equal(t, 200, r.Status)
		assert.Equal(t, "two", string(r.Body))
		assert.Equal(t, []string{"GET /one", "GET /two"}, paths(up))
	})
}

// obs-fold (a header line starting with a space or tab) and bare-LF line
// ends from the client: refused or normalised, the upstream sees at most
// the one request, and a header folded into another never arrives as a
// header of its own.
func TestWireClientObsFoldAndBareLF(t *testing.T) {
	for name, raw := range map[string]string{
		"obs-fold-space": "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n X-Folded: 2\r\n\r\n",
		"obs-fold-tab":   "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tX-Folded: 2\r\n\r\n",
		// A folded Content-Length is part of X-A, never framing: "hello"
		// is then no request at all.
		"obs-fold-cl":      "POST /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Content-Length: 5\r\n\r\nhello\r\n\r\n",
		"bare-lf":          "GET /a HTTP/1.1\nHost: x\nX-A: 1\n\n",
		"bare-lf-in-value": "POST /a HTTP/1.1\r\nHost: x\r\nX-A: 1\nContent-Length: 26\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			up := scripted(t, func(int, rawRequest) string { return ok("ok") })
			addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
			c, br := rawDial(t, addr)
			rawSend(t, c, raw)
			r, err := readRawResponse(br, "GET")
			require.NoError(t, err)
			reqs := up.Requests()
			t.Logf("answered %d; the upstream saw %v", r.Status, paths(up))
			require.LessOrEqual(t, len(reqs), 1, "%v", paths(up))
			if r.Status == http.StatusBadRequest {
				assert.Empty(t, reqs)
				return
			}
			assert.Equal(t, 200, r.Status)
			require.Len(t, reqs, 1)
			assert.Equal(t, "/a", reqs[0].Target)
			assert.NotContains(t, reqs[0].Header, "X-Folded")
			if strings.HasPrefix(name, "obs-fold-cl") {
				assert.Empty(t, reqs[0].Body, "a folded Content-Length framed a body")
				// "hello" is not a request: 400 and the connection closes.
				r, err := readRawResponse(br, "GET")
				require.NoError(t, err)
				assert.Equal(t, http.StatusBadRequest, r.Status)
				requireClosed(t, br)
			}
			if strings.HasPrefix(name, "bare-lf-in-value") {
				assert.Equal(t, "GET /smuggled HTTP/1.1\r\n\r\n", string(reqs[0].Body), "the hidden request is body")
			}
			assert.Len(t, up.Requests(), 1, "%v", paths(up))
		})
	}
}

// obs-fold and bare-LF line ends from the upstream: the client gets one
// well-framed answer (or a 502), a folded line never arrives as a header
// of its own, and its next request gets its own answer.
func TestWireUpstreamObsFoldAndBareLF(t *testing.T) {
	for name, answer := range map[string]string{
		"obs-fold": "HTTP/1.1 200 OK\r\nX-A: 1\r\n X-Folded: evil\r\nContent-Length: 2\r\n\r\nok",
		"bare-lf":  "HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 2\n\nok",
		"bare-lf-cl": "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 40\r\nContent-Length: 2\r\n\r\nok" +
			ok("evil"),
	} {
		t.Run(name, func(t *testing.T) {
			up := scripted(t, func(n int, req rawRequest) string {
				if n == 1 {
					return answer
				}
				return ok("two")
			})
			addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
			c, br := rawDial(t, addr)
			r := roundTrip(t, c, br, "GET", getReq("/one"))
			t.Logf("answered %d %q", r.Status, r.Body)
			if r.Status != http.StatusBadGateway {
				assert.Equal(t, 200, r.Status)
				assert.Equal(t, "ok", string(r.Body))
				assert.NotContains(t, r.Header, "X-Folded")
			}
			r = roundTrip(t, c, br, "GET", getReq("/two"))
			assert.Equal(t, 200, r.Status)
			assert.Equal(t, "two", string(r.Body))
			assert.Equal(t, []string{"GET /one", "GET /two"}, paths(up))
		})
	}
}

// Hop-by-hop headers (RFC 9110 §7.6.1: Connection and every field it
// names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade; and
// the proxy credentials) are not forwarded, either way.
func TestWireHopByHopHeadersStayOnTheirHop(t *testing.T) {
	up := scripted(t, func(int, rawRequest) string {
		return "HTTP/1.1 200 OK\r\nConnection: X-Up-Secret, Keep-Alive\r\nX-Up-Secret: 1\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Authenticate: Basic\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok"
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	r := roundTrip(t, c, br, "GET", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: X-Secret, Keep-Alive\r\nX-Secret: 1\r\n"+
		"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: gzip\r\n"+
		"Upgrade: foo\r\nX-Kept: yes\r\n\r\n")
	assert.Equal(t, 200, r.Status)
	assert.Equal(t, []string{"yes"}, r.Header["X-Kept"])
	for _, k := range []string{"X-Up-Secret", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection"} {
		assert.NotContains(t, r.Header, k, "response header %s", k)
	}
	if v := r.Header["Connection"]; len(v) > 0 {
		assert.NotContains(t, strings.ToLower(strings.Join(v, ",")), "x-up-secret")
	}
	reqs := up.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, []string{"yes"}, reqs[0].Header["X-Kept"])
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Upgrade", "Connection"} {
		assert.NotContains(t, reqs[0].Header, k, "request header %s", k)
	}
}

// h2cUpstream answers an offer to upgrade to h2c with 101 and bytes that
// would be the upstream's HTTP/2 connection; an offer of websocket alone
// with 101 websocket, after which it echoes the raw bytes it reads; and
// anything else with "plain".
func h2cUpstream(t *testing.T) *rawUpstream {
	return newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		for {
			req, err := u.ReadRequest(br)
			if err != nil {
				return
			}
			up := strings.ToLower(strings.Join(req.Header["Upgrade"], ","))
			switch {
			case strings.Contains(up, "h2c"):
				writeResponse(t, c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"+
					"\x00\x00\x00\x04\x00\x00\x00\x00\x00 raw HTTP/2 past the ambassador")
				return
			case up == "websocket":
				writeResponse(t, c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
				_, _ = io.Copy(c, br)
				return
			default:
				writeResponse(t, c, ok("plain"))
			}
		}
	})
}

// An h2c upgrade is never forwarded: the request goes upstream as a plain
// request, without Upgrade: h2c or HTTP2-Settings; other offers in the
// same header (websocket) are kept.
func TestWireH2CUpgradeIsNotForwarded(t *testing.T) {
	const settings = "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
	for _, tc := range []struct {
		name, headers string
		wantUpgrade   []string
	}{
		{"h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n" + settings, nil},
		{"H2C", "Connection: upgrade, http2-settings\r\nUpgrade: H2C\r\n" + settings, nil},
		{"settings-not-in-connection", "Connection: Upgrade\r\nUpgrade: h2c\r\n" + settings, nil},
		{"settings-alone", settings, nil},
		{"websocket-h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: websocket, h2c\r\n" + settings, []string{"websocket"}},
		{"h2c-websocket", "Connection: Upgrade\r\nUpgrade: h2c, websocket\r\n", []string{"websocket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := h2cUpstream(t)
			addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
			c, br := rawDial(t, addr)
			r := roundTrip(t, c, br, "GET", "GET /up HTTP/1.1\r\nHost: x\r\n"+tc.headers+"\r\n")
			reqs := up.Requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, tc.wantUpgrade, reqs[0].Header["Upgrade"])
			assert.NotContains(t, reqs[0].Header, "Http2-Settings")
			if tc.wantUpgrade == nil {
				assert.NotContains(t, reqs[0].Header, "Connection")
				assert.Equal(t, 200, r.Status)
				assert.Equal(t, "plain", string(r.Body))
				// The client's connection is still HTTP/1.1.
				r = roundTrip(t, c, br, "GET", getReq("/again"))
				assert.Equal(t, "plain", string(r.Body))
				return
			}
			// The WebSocket switch still works.
			require.Equal(t, http.StatusSwitchingProtocols, r.Status)
			assert.Equal(t, []string{"websocket"}, r.Header["Upgrade"])
			rawSend(t, c, "ping")
			b := make([]byte, 4)
			_, err := io.ReadFull(br, b)
			require.NoError(t, err)
			assert.Equal(t, "ping", string(b))
		})
	}
}

// A client offers h2c and the upstream switches to it whatever the
// request said: the ambassador forwarded no offer, so it refuses the switch
// (502) and the client never gets a tunnel.
func TestWireH2CSwitchFromUpstreamIsRefused(t *testing.T) {
	up := scripted(t, func(int, rawRequest) string {
		return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	r := roundTrip(t, c, br, "GET", "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
	assert.Equal(t, http.StatusBadGateway, r.Status)
	assert.Equal(t, []string{"GET /up"}, paths(up))
	assert.NotContains(t, up.Requests()[0].Header, "Upgrade")
}

// HEAD answered with Content-Length and no body: the client gets the
// header and no body, and its next request on the connection works.
func TestWireHeadWithContentLength(t *testing.T) {
	up := scripted(t, func(_ int, req rawRequest) string {
		if req.Method == "HEAD" {
			return "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
		}
		return ok("two")
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	r := roundTrip(t, c, br, "HEAD", "HEAD /one HTTP/1.1\r\nHost: x\r\n\r\n")
	assert.Equal(t, 200, r.Status)
	assert.Equal(t, []string{"1000"}, r.Header["Content-Length"])
	r = roundTrip(t, c, br, "GET", getReq("/two"))
	assert.Equal(t, 200, r.Status)
	assert.Equal(t, "two", string(r.Body))
	assert.Equal(t, []string{"HEAD /one", "GET /two"}, paths(up))
}

// 204 and 304 followed by body bytes: those bytes never reach the client
// as the next response; its next request on the connection gets its own
// answer.
func TestWireNoBodyStatusWithBody(t *testing.T) {
	for _, status := range []string{"204 No Content", "304 Not Modified"} {
		t.Run(status[:3], func(t *testing.T) {
			want, _ := strconv.Atoi(status[:3])
			checkFreshAnswer(t, "HTTP/1.1 "+status+"\r\n\r\n"+ok("evil"), "", false, want, true)
		})
	}
}

// An upstream that hangs after the headers and part of the body is
// bounded by the service timeout: the client sees the truncated response
// within the bound.
func TestWireHangingUpstreamIsBoundedByTimeout(t *testing.T) {
	for name, head := range map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
		"chunked":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			up := newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
				if _, err := u.ReadRequest(br); err != nil {
					return
				}
				writeResponse(t, c, head)
				_, _ = io.Copy(io.Discard, br) // hang until the ambassador gives up
			})
			addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "timeout: 1s", "")
			c, br := rawDial(t, addr)
			start := time.Now()
			readBroken(t, c, br, getReq("/hang"))
			took := time.Since(start)
			assert.Less(t, took, 3*time.Second)
			assert.GreaterOrEqual(t, took, 900*time.Millisecond)
			assert.Equal(t, []string{"GET /hang"}, paths(up))
		})
	}
}

// An upstream that never answers at all: 504 upstream_timeout within the
// service timeout.
func TestWireSilentUpstreamIsBoundedByTimeout(t *testing.T) {
	up := newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		if _, err := u.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, br)
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "timeout: 1s", "")
	c, br := rawDial(t, addr)
	start := time.Now()
	r := roundTrip(t, c, br, "GET", getReq("/hang"))
	assert.Equal(t, http.StatusGatewayTimeout, r.Status)
	assert.Equal(t, []string{"upstream_timeout"}, r.Header["X-Outbound-Error"])
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Equal(t, []string{"GET /hang"}, paths(up))
}

// Slowloris: a client dripping its header one byte at a time, each byte
// well within limits.read_header_timeout but the whole header slower, is
// cut off at that timeout, and nothing reaches the upstream.
func TestWireSlowlorisIsCutOff(t *testing.T) {
	up := scripted(t, func(int, rawRequest) string { return ok("ok") })
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "{read_header_timeout: 300ms}")
	c, br := rawDial(t, addr)
	head := "GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 200) + "\r\n\r\n"
	done := make(chan struct{})
	dripped := make(chan int, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond) // the attack's pace, not a wait for state
		defer tick.Stop()
		i := 0
		defer func() { dripped <- i }()
		for ; i < len(head); i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{head[i]}); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	_, err := io.ReadAll(br) // the server closes the connection
	took := time.Since(start)
	close(done)
	n := <-dripped
	if err != nil {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "not cut off: %v", err)
	}
	assert.Less(t, took, 2*time.Second)
	assert.Less(t, n, len(head), "the whole header got through")
	assert.Empty(t, paths(up))
}

// An absolute-form request target without a path ("GET http://host
// HTTP/1.1") is the path "/" (RFC 9110, section 4.2.3): it takes a route
// with path_prefix "/" and reaches the upstream as "GET /".
func TestWireAbsoluteFormWithoutPathIsRoot(t *testing.T) {
	up := scripted(t, func(int, rawRequest) string { return ok("root") })
	cfg, err := proxy.ParseConfig([]byte("admin: {address: 127.0.0.1:0}\n"+
		"listeners:\n  - address: 127.0.0.1:0\n    routes:\n      - {path_prefix: /, service: up}\n"+
		"services:\n  up:\n    discovery: {static: ["+up.Addr()+"]}\n"), t.TempDir())
	require.NoError(t, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	addr := strings.TrimPrefix(serve(t, s)[0], "http://")
	c, br := rawDial(t, addr)
	r := roundTrip(t, c, br, "GET", "GET http://"+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	assert.Equal(t, 200, r.Status)
	assert.Equal(t, "root", string(r.Body))
	r = roundTrip(t, c, br, "GET", "GET http://"+addr+"/x HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	assert.Equal(t, 200, r.Status)
	assert.Equal(t, []string{"GET /", "GET /x"}, paths(up))
}

// An absolute-form OPTIONS without a path asks about the server itself: the
// ambassador, the last proxy before the upstream, sends it on as
// "OPTIONS *" (RFC 9112, section 3.2.4), not as "OPTIONS /", a question
// about the root resource; with a path it goes on as it came.
func TestWireOptionsWithoutPathIsAsterisk(t *testing.T) {
	for _, tc := range []struct{ name, routes string }{
		{"service listener", "service: up"},
		{"routes", "routes:\n      - {path_prefix: /, service: up}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := scripted(t, func(int, rawRequest) string { return ok("opts") })
			cfg, err := proxy.ParseConfig([]byte("admin: {address: 127.0.0.1:0}\n"+
				"listeners:\n  - address: 127.0.0.1:0\n    "+tc.routes+"\n"+
				"services:\n  up:\n    discovery: {static: ["+up.Addr()+"]}\n"), t.TempDir())
			require.NoError(t, err)
			s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
			require.NoError(t, err)
			addr := strings.TrimPrefix(serve(t, s)[0], "http://")
			c, br := rawDial(t, addr)
			r := roundTrip(t, c, br, "OPTIONS", "OPTIONS http://"+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
			assert.Equal(t, 200, r.Status)
			r = roundTrip(t, c, br, "OPTIONS", "OPTIONS http://"+addr+"/x HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
			assert.Equal(t, 200, r.Status)
			assert.Equal(t, []string{"OPTIONS *", "OPTIONS /x"}, paths(up))
		})
	}
}

// The query reaches the upstream byte for byte, also when it holds what
// url.ParseQuery refuses (a ';', a bad %-escape), which ReverseProxy
// would otherwise drop and re-encode.
func TestWireQueryIsForwardedAsWritten(t *testing.T) {
	up := scripted(t, func(int, rawRequest) string { return ok("q") })
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	queries := []string{"a=1&b=2", "q=a;b", "y=%zz&a=1", "b=2&a=1;c=3", "x", "k=%E2%82%AC&k=2"}
	for _, q := range queries {
		r := roundTrip(t, c, br, "GET", getReq("/s?"+q))
		assert.Equal(t, 200, r.Status, q)
	}
	var want []string
	for _, q := range queries {
		want = append(want, "GET /s?"+q)
	}
	assert.Equal(t, want, paths(up))
}

// The application's forwarding headers (Forwarded, X-Forwarded-*) reach
// the upstream as it sent them, the ambassador adding none of its own; one
// that the request's Connection names is hop-by-hop and is removed.
func TestWireForwardingHeadersPassThrough(t *testing.T) {
	up := scripted(t, func(int, rawRequest) string { return ok("f") })
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	r := roundTrip(t, c, br, "GET", "GET /a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 10.0.0.1\r\n"+
		"X-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\nForwarded: for=203.0.113.7;proto=https\r\n\r\n")
	assert.Equal(t, 200, r.Status)
	r = roundTrip(t, c, br, "GET", "GET /b HTTP/1.1\r\nHost: x\r\nConnection: X-Forwarded-Host\r\nX-Forwarded-Host: hop.example\r\n"+
		"X-Forwarded-Proto: http\r\n\r\n")
	assert.Equal(t, 200, r.Status)
	reqs := up.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, []string{"203.0.113.7", "10.0.0.1"}, reqs[0].Header["X-Forwarded-For"])
	assert.Equal(t, []string{"https"}, reqs[0].Header["X-Forwarded-Proto"])
	assert.Equal(t, []string{"shop.example"}, reqs[0].Header["X-Forwarded-Host"])
	assert.Equal(t, []string{"for=203.0.113.7;proto=https"}, reqs[0].Header["Forwarded"])
	assert.NotContains(t, reqs[1].Header, "X-Forwarded-Host", "named by Connection: hop-by-hop")
	assert.NotContains(t, reqs[1].Header, "X-Forwarded-For", "none sent, none added")
	assert.Equal(t, []string{"http"}, reqs[1].Header["X-Forwarded-Proto"])
}

// A response the upstream sent without a Content-Type reaches the client
// without one: net/http's server would otherwise guess it from the body
// (here text/html).
func TestWireNoContentTypeIsGuessed(t *testing.T) {
	up := scripted(t, func(n int, _ rawRequest) string {
		if n == 1 {
			return "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n<html>hi</html>"
		}
		return "HTTP/1.1 200 OK\r\nContent-Type: application/x-typed\r\nContent-Length: 2\r\n\r\nty"
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	r := roundTrip(t, c, br, "GET", getReq("/untyped"))
	assert.Equal(t, 200, r.Status)
	assert.Equal(t, "<html>hi</html>", string(r.Body))
	assert.NotContains(t, r.Header, "Content-Type")
	r = roundTrip(t, c, br, "GET", getReq("/typed"))
	assert.Equal(t, []string{"application/x-typed"}, r.Header["Content-Type"])
}
