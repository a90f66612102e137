package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// Raw-socket fakes for the adversarial tests (adversarial_*_test.go): an
// upstream that writes exact bytes and records exactly what reached it,
// and a client that writes exact bytes to the ambassador. The small HTTP
// head reader below is a test's own view of the bytes on the wire, kept
// deliberately simple: it is what the assertions compare, not a client.

// wireTimeout bounds every read and write of the raw fakes, so a test that
// goes wrong fails instead of hanging.
const wireTimeout = 5 * time.Second

// rawRequest is one request head as the raw upstream read it, and the body
// bytes it read after it (when the head framed one).
type rawRequest struct {
	Method, Target, Proto string
	Header                map[string][]string // canonical names
	Body                  []byte
}

// rawUpstream is a loopback TCP server whose handler gets each connection
// raw. It records every request head its handlers read with readRequest.
type rawUpstream struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	requests []rawRequest
	conns    int
	open     []net.Conn
}

// newRawUpstream starts a raw upstream; handle runs once per accepted
// connection (in its own goroutine) and owns it until it returns, when the
// connection is closed. Everything stops when the test ends.
func newRawUpstream(t *testing.T, handle func(u *rawUpstream, c net.Conn, br *bufio.Reader)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &rawUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns++
			u.open = append(u.open, c)
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(4 * wireTimeout))
				handle(u, c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(u.close)
	return u
}

func (u *rawUpstream) close() {
	_ = u.ln.Close()
	u.mu.Lock()
	for _, c := range u.open {
		_ = c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// Addr is the upstream's host:port.
func (u *rawUpstream) Addr() string { return u.ln.Addr().String() }

// Requests returns a copy of the request heads read so far.
func (u *rawUpstream) Requests() []rawRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]rawRequest(nil), u.requests...)
}

// Conns is the number of connections accepted so far.
func (u *rawUpstream) Conns() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

// readRequest reads one request head and, when it has a Content-Length or
// is chunked, its body, and records it. An error means the connection
// ended or sent something the test reader does not understand.
func (u *rawUpstream) readRequest(br *bufio.Reader) (rawRequest, error) {
	req, err := readRawRequest(br)
	if err != nil {
		return req, err
	}
	u.mu.Lock()
	u.requests = append(u.requests, req)
	u.mu.Unlock()
	return req, nil
}

// readRawRequest reads a request head and its framed body from br.
func readRawRequest(br *bufio.Reader) (rawRequest, error) {
	var req rawRequest
	line, err := readLine(br)
	if err != nil {
		return req, err
	}
	parts := strings.SplitN(line, " ", 3)
	if len(parts) != 3 {
		return req, fmt.Errorf("request line %q", line)
	}
	req.Method, req.Target, req.Proto = parts[0], parts[1], parts[2]
	req.Header, err = readHeaderLines(br)
	if err != nil {
		return req, err
	}
	req.Body, err = readFramedBody(br, req.Header, -1)
	return req, err
}

// rawResponse is a response head as the raw client read it, and its body
// when the head framed one.
type rawResponse struct {
	Status int
	Header map[string][]string
	Body   []byte
	// Complete is false when the body ended before its framing said it
	// would (short Content-Length, chunked without the last chunk).
	Complete bool
}

// readRawResponse reads one response (skipping nothing: a 1xx is returned
// as it is) from br. method is the request's method: a HEAD response has
// no body whatever its head says.
func readRawResponse(br *bufio.Reader, method string) (rawResponse, error) {
	var resp rawResponse
	line, err := readLine(br)
	if err != nil {
		return resp, err
	}
	parts := strings.SplitN(line, " ", 3)
	if len(parts) < 2 {
		return resp, fmt.Errorf("status line %q", line)
	}
	resp.Status, err = strconv.Atoi(parts[1])
	if err != nil {
		return resp, fmt.Errorf("status line %q", line)
	}
	resp.Header, err = readHeaderLines(br)
	if err != nil {
		return resp, err
	}
	if method == "HEAD" || resp.Status < 200 || resp.Status == 204 || resp.Status == 304 {
		resp.Complete = true
		return resp, nil
	}
	resp.Body, err = readFramedBody(br, resp.Header, 0)
	resp.Complete = err == nil
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return resp, err
}

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if line != "" && err == io.EOF {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func readHeaderLines(br *bufio.Reader) (map[string][]string, error) {
	h := map[string][]string{}
	for {
		line, err := readLine(br)
		if err != nil {
			return h, err
		}
		if line == "" {
			return h, nil
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return h, fmt.Errorf("header line %q", line)
		}
		k = canonical(k)
		h[k] = append(h[k], strings.TrimSpace(v))
	}
}

// canonical is the header name with each dash-separated word capitalised.
func canonical(k string) string {
	b := []byte(strings.ToLower(k))
	up := true
	for i, c := range b {
		if up && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '-'
	}
	return string(b)
}

// readFramedBody reads a body framed by Transfer-Encoding: chunked or
// Content-Length. Without either, a request has no body (noFraming 0
// would read nothing too) and a response (noFraming -1 is only for
// requests) runs to EOF.
func readFramedBody(br *bufio.Reader, h map[string][]string, noFraming int) ([]byte, error) {
	if te := h["Transfer-Encoding"]; len(te) > 0 && strings.EqualFold(te[len(te)-1], "chunked") {
		return readChunked(br)
	}
	if cl := h["Content-Length"]; len(cl) > 0 {
		n, err := strconv.Atoi(cl[0])
		if err != nil || n < 0 {
			return nil, fmt.Errorf("content-length %q", cl)
		}
		b := make([]byte, n)
		m, err := io.ReadFull(br, b)
		return b[:m], err
	}
	if noFraming < 0 {
		return nil, nil
	}
	return io.ReadAll(br)
}

func readChunked(br *bufio.Reader) ([]byte, error) {
	var body []byte
	for {
		line, err := readLine(br)
		if err != nil {
			return body, err
		}
		size, _, _ := strings.Cut(line, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 32)
		if err != nil {
			return body, fmt.Errorf("chunk size %q", line)
		}
		if n == 0 {
			_, err := readHeaderLines(br) // trailers
			return body, err
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return append(body, b...), err
		}
		body = append(body, b...)
		if _, err := readLine(br); err != nil {
			return body, err
		}
	}
}

// rawDial opens a connection to addr with reads and writes bounded by
// wireTimeout, closed when the test ends.
func rawDial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wireTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(wireTimeout)))
	return c, bufio.NewReader(c)
}

// rawSend writes raw bytes (\n is sent as written: spell \r\n out) and
// fails the test if the write fails.
func rawSend(t *testing.T, c net.Conn, s string) {
	t.Helper()
	_, err := io.WriteString(c, s)
	require.NoError(t, err)
}

// oneServiceAmbassador starts an ambassador with one listener sending
// everything to service "up" at the given endpoints; extra is YAML
// appended under the service (indented by four spaces), limits is YAML for
// the top-level limits section (a flow mapping such as "{idle_timeout: 1s}"
// or ""). It returns the listener's host:port and the server.
func oneServiceAmbassador(t *testing.T, endpoints []string, extra, limits string) (string, *proxy.Server) {
	t.Helper()
	var b strings.Builder
	b.WriteString("admin: {address: 127.0.0.1:0}\n")
	if limits != "" {
		b.WriteString("limits: " + limits + "\n")
	}
	b.WriteString("listeners:\n  - {address: 127.0.0.1:0, service: up}\nservices:\n  up:\n")
	b.WriteString("    discovery: {static: [" + strings.Join(endpoints, ", ") + "]}\n")
	for _, l := range strings.Split(strings.TrimSpace(extra), "\n") {
		if l != "" {
			b.WriteString("    " + l + "\n")
		}
	}
	cfg, err := proxy.ParseConfig([]byte(b.String()), t.TempDir())
	require.NoError(t, err, "config:\n%s", b.String())
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	urls := serve(t, s)
	return strings.TrimPrefix(urls[0], "http://"), s
}

// writeResponse writes a raw response string to c and fails the test on a
// write error.
func writeResponse(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Errorf("upstream write: %v", err)
	}
}

// TestRawFakesRoundTrip checks the fakes themselves against the
// ambassador: a request written byte by byte reaches the raw upstream as
// one request with its body, and the raw answer comes back whole.
func TestRawFakesRoundTrip(t *testing.T) {
	up := newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		for {
			req, err := u.readRequest(br)
			if err != nil {
				return
			}
			writeResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(req.Body)+3)+"\r\n\r\nok:"+string(req.Body))
		}
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	rawSend(t, c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	resp, err := readRawResponse(br, "POST")
	require.NoError(t, err)
	require.Equal(t, 200, resp.Status)
	require.True(t, resp.Complete)
	require.Equal(t, "ok:hello", string(resp.Body))
	reqs := up.Requests()
	require.Len(t, reqs, 1)
	require.Equal(t, "/echo", reqs[0].Target)
	require.Equal(t, "hello", string(reqs[0].Body))
}
