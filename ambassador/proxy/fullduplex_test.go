package proxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lineEcho is an upstream that answers at once and then echoes each line of
// the request body as it arrives (a full-duplex exchange: it writes while
// the request is still coming), over HTTP/1.1 and h2c.
func lineEcho(t *testing.T) string {
	t.Helper()
	return serveH1AndH2C(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			_, _ = io.WriteString(w, "echo "+sc.Text()+"\n")
			_ = rc.Flush()
		}
	})
}

// A request body and its response stream both ways at once through the
// ambassador: each line the client sends comes back echoed before it sends
// the next. Over HTTP/1.1, net/http's server reads what is left of the
// request body itself before it writes the response headers unless the
// handler enables full duplex, so the echo of the first line never came:
// the client waited for it, the server for the rest of the body.
func TestRequestAndResponseStreamAtOnce(t *testing.T) {
	up := lineEcho(t)
	for _, tc := range []struct {
		name, extra string
		h2cClient   bool
		// knownLength sends a Content-Length (HTTP/1.1 only: Go's HTTP/2
		// client holds a known-length body's last bytes until it has seen
		// the body's end, to send them with END_STREAM, so no echo of
		// them could come first).
		knownLength bool
	}{
		{"http1 to http1", "", false, false},
		{"http1 with a Content-Length to http1", "", false, true},
		{"http1 with a Content-Length to h2c", "protocol: h2c", false, true},
		{"http1 with a Content-Length and retry", "retry: {}", false, true},
		{"http1 to h2c", "protocol: h2c", false, false},
		{"http1 with retry", "retry: {}", false, false},
		{"h2c to http1", "", true, false},
		{"h2c to h2c", "protocol: h2c", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := oneServiceAmbassador(t, []string{up}, tc.extra, "")
			c := client(t)
			if tc.h2cClient {
				c = h2cClient(t)
			}
			c.Timeout = 10 * time.Second // bounds the exchange should a reply never come
			pr, pw := io.Pipe()
			defer pw.Close()
			// Should a reply never come, a write the transport no longer
			// reads would block for good: closing the pipe ends it.
			stop := time.AfterFunc(10*time.Second, func() { _ = pr.CloseWithError(errors.New("no echo within 10s")) })
			defer stop.Stop()
			req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/stream", pr)
			require.NoError(t, err)
			if tc.knownLength {
				req.ContentLength = int64(len("one\ntwo\nthree\n"))
			}
			type result struct {
				resp *http.Response
				err  error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := c.Do(req)
				got <- result{resp, err}
			}()
			_, err = io.WriteString(pw, "one\n")
			require.NoError(t, err)
			r := <-got
			require.NoError(t, r.err)
			defer r.resp.Body.Close()
			require.Equal(t, http.StatusOK, r.resp.StatusCode)
			lines := bufio.NewReader(r.resp.Body)
			for _, msg := range []string{"one", "two", "three"} {
				if msg != "one" {
					_, err = io.WriteString(pw, msg+"\n")
					require.NoError(t, err)
				}
				line, err := lines.ReadString('\n')
				require.NoError(t, err, "echo of %q", msg)
				assert.Equal(t, "echo "+msg+"\n", line)
			}
			require.NoError(t, pw.Close())
			rest, err := io.ReadAll(lines)
			require.NoError(t, err)
			assert.Empty(t, string(rest))
		})
	}
}

// A body the upstream never reads does not cost the client its connection,
// or its next request: full duplex leaves the rest of the body to
// net/http's server after the handler, and there reaching the body's end
// started a read of the connection that nothing stopped, so the server's
// read of the next request panicked (golang/go#68560) and reset the
// connection under the client's next request. What is left of a body is
// read while the handler runs; more than the server reads after a handler
// (256 KiB) closes the connection, and the answer says so.
func TestUnreadBodyKeepsTheConnection(t *testing.T) {
	answersAtOnce := answerFirst(t)
	for _, tc := range []struct {
		name     string
		endpoint string
		size     int
		requests int
		status   int
		reused   bool // the next request goes on the same connection
	}{
		{"the endpoint refuses connections", deadAddr(t), 2, 30, http.StatusBadGateway, true},
		{"the upstream answers before reading", answersAtOnce.Addr(), 2, 30, http.StatusOK, true},
		// Far more than loopback's socket buffers take before the answer
		// comes back.
		{"more is left than the server drains", answersAtOnce.Addr(), 32 << 20, 4, http.StatusOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := oneServiceAmbassador(t, []string{tc.endpoint}, "", "")
			c := client(t)
			conns := 0
			body := strings.Repeat("x", tc.size)
			for i := range tc.requests {
				req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/upload", strings.NewReader(body))
				require.NoError(t, err)
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
					if !info.Reused {
						conns++
					}
				}}
				resp, err := c.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
				require.NoError(t, err, "request %d", i)
				_, _ = io.Copy(io.Discard, resp.Body)
				require.NoError(t, resp.Body.Close())
				require.Equal(t, tc.status, resp.StatusCode, "request %d", i)
				assert.Equal(t, !tc.reused, resp.Close, "request %d: Connection: close", i)
			}
			if tc.reused {
				assert.Equal(t, 1, conns, "connections the client opened")
			} else {
				assert.Equal(t, tc.requests, conns, "connections the client opened")
			}
		})
	}
}

// An answer made before the body was read goes out at once, when the
// connection is to close anyway: it does not wait for the rest of the
// body to be read and dropped. A client that sent Expect: 100-continue
// and waits for the 100 got its 502 only once it gave up waiting and sent
// the body; a chunked upload still streaming got its answer only after
// another 256 KiB.
func TestAnswerBeforeTheBodyIsNotHeld(t *testing.T) {
	answersAtOnce := answerFirst(t)
	for _, tc := range []struct {
		name     string
		endpoint string
		expect   bool // Expect: 100-continue with a known length; else a chunked body that stays open
		status   int
	}{
		{"expect 100-continue, the endpoint refuses", deadAddr(t), true, http.StatusBadGateway},
		{"a chunked upload, the endpoint refuses", deadAddr(t), false, http.StatusBadGateway},
		{"a chunked upload, the upstream answers first", answersAtOnce.Addr(), false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := oneServiceAmbassador(t, []string{tc.endpoint}, "", "")
			// The client waits for the 100 as long as the test runs.
			tr := &http.Transport{ExpectContinueTimeout: time.Hour}
			t.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			pr, pw := io.Pipe()
			defer pw.Close()
			req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/upload", pr)
			require.NoError(t, err)
			if tc.expect {
				req.ContentLength = 2048
				req.Header.Set("Expect", "100-continue")
			} else {
				go func() { _, _ = io.WriteString(pw, "first chunk\n") }()
			}
			resp, err := c.Do(req)
			require.NoError(t, err, "the answer came while the body was still pending")
			_, _ = io.Copy(io.Discard, resp.Body)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.True(t, resp.Close, "Connection: close")
		})
	}
}

// answerFirst is a raw upstream that answers each connection's request
// before it reads any of its body, then reads and drops the body (a small
// one is already on its way) and closes.
func answerFirst(t *testing.T) *rawUpstream {
	t.Helper()
	return newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		writeResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		_, _ = io.Copy(io.Discard, br)
	})
}
