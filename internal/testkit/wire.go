// Package testkit holds the fakes the tests of ambassador and
// ambassador/proxy share: raw-socket upstreams and clients, a test PKI, a
// grpc upstream. Only tests import it.
package testkit

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
)

// Raw-socket fakes for the adversarial tests (ambassador/proxy) and the
// re-send tests (ambassador): an
// upstream that writes exact bytes and records exactly what reached it,
// and a client that writes exact bytes to the ambassador. The small HTTP
// head reader below is a test's own view of the bytes on the wire, kept
// deliberately simple: it is what the assertions compare, not a client.

// WireTimeout bounds every read and write of the raw fakes, so a test that
// goes wrong fails instead of hanging.
const WireTimeout = 5 * time.Second

// RawRequest is one request head as the raw upstream read it, and the body
// bytes it read after it (when the head framed one).
type RawRequest struct {
	Method, Target, Proto string
	Header                map[string][]string // canonical names
	Body                  []byte
}

// RawUpstream is a loopback TCP server whose handler gets each connection
// raw. It records every request head its handlers read with ReadRequest.
type RawUpstream struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	requests []RawRequest
	conns    int
	open     []net.Conn
}

// NewRawUpstream starts a raw upstream; handle runs once per accepted
// connection (in its own goroutine) and owns it until it returns, when the
// connection is closed. Everything stops when the test ends.
func NewRawUpstream(t *testing.T, handle func(u *RawUpstream, c net.Conn, br *bufio.Reader)) *RawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := &RawUpstream{ln: ln}
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
				_ = c.SetDeadline(time.Now().Add(4 * WireTimeout))
				handle(u, c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(u.close)
	return u
}

func (u *RawUpstream) close() {
	_ = u.ln.Close()
	u.mu.Lock()
	for _, c := range u.open {
		_ = c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// Addr is the upstream's host:port.
func (u *RawUpstream) Addr() string { return u.ln.Addr().String() }

// Requests returns a copy of the request heads read so far.
func (u *RawUpstream) Requests() []RawRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]RawRequest(nil), u.requests...)
}

// Conns is the number of connections accepted so far.
func (u *RawUpstream) Conns() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

// ReadRequest reads one request head and, when it has a Content-Length or
// is chunked, its body, and records it. An error means the connection
// ended or sent something the test reader does not understand.
func (u *RawUpstream) ReadRequest(br *bufio.Reader) (RawRequest, error) {
	req, err := ReadRawRequest(br)
	if err != nil {
		return req, err
	}
	u.mu.Lock()
	u.requests = append(u.requests, req)
	u.mu.Unlock()
	return req, nil
}

// ReadRawRequest reads a request head and its framed body from br.
func ReadRawRequest(br *bufio.Reader) (RawRequest, error) {
	req, err := ReadRawRequestHead(br)
	if err != nil {
		return req, err
	}
	req.Body, err = readFramedBody(br, req.Header, -1)
	return req, err
}

// ReadRawRequestHead reads a request head from br and leaves its body, if
// any, unread.
func ReadRawRequestHead(br *bufio.Reader) (RawRequest, error) {
	var req RawRequest
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
	return req, err
}

// RawResponse is a response head as the raw client read it, and its body
// when the head framed one.
type RawResponse struct {
	Status int
	Header map[string][]string
	Body   []byte
	// Complete is false when the body ended before its framing said it
	// would (short Content-Length, chunked without the last chunk).
	Complete bool
}

// ReadRawResponse reads one response (skipping nothing: a 1xx is returned
// as it is) from br. method is the request's method: a HEAD response has
// no body whatever its head says.
func ReadRawResponse(br *bufio.Reader, method string) (RawResponse, error) {
	var resp RawResponse
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

// RawDial opens a connection to addr with reads and writes bounded by
// WireTimeout, closed when the test ends.
func RawDial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, WireTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(WireTimeout)))
	return c, bufio.NewReader(c)
}

// RawSend writes raw bytes (\n is sent as written: spell \r\n out) and
// fails the test if the write fails.
func RawSend(t *testing.T, c net.Conn, s string) {
	t.Helper()
	_, err := io.WriteString(c, s)
	require.NoError(t, err)
}

// WriteResponse writes a raw response string to c and fails the test on a
// write error.
func WriteResponse(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Errorf("upstream write: %v", err)
	}
}
