package ambassador_test

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

// Raw-socket fakes for the re-send tests (a copy of the ones in
// ../proxy/wire_helpers_test.go, which the adversarial tests use): an
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

// writeResponse writes a raw response string to c and fails the test on a
// write error.
func writeResponse(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Errorf("upstream write: %v", err)
	}
}
