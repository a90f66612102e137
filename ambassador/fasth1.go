package ambassador

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// h1Direct is the fast path of the default base transport for plain
// HTTP/1.1 (no TLS, no max_connections): the caller's goroutine writes the
// request and reads the response on a pooled keep-alive connection itself.
// net/http's Transport hands every request to a writer goroutine and every
// response over from a reader goroutine of the connection; on the proxy hop
// those two hand-offs, with the wake-ups they cost, were a large share of
// the added latency.
//
// It takes only requests it can replay on a fresh connection when a pooled
// one turns out to be closed by the server: GET and HEAD without a body,
// upgrade, Expect, Connection header or trailers. Everything else is declined
// with http.ErrSkipAltProtocol and goes through net/http's Transport (it is
// registered as that transport's "http" protocol).
//
// Idle connections are kept per endpoint up to baseMaxIdleConnsPerHost and
// closed after baseIdleConnTimeout (to a third more), found stale by a sweep
// timer (no goroutine per connection) or when taken from the pool. Their
// age is counted in sweep ticks, not read from the clock: a request costs
// no clock reading for the pool. close (called when the owning Stack
// closes) closes the idle connections and every one released afterwards.
type h1Direct struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	idle   map[string][]*h1Conn // by host:port, most recent last
	sweep  *time.Timer          // armed while idle connections exist
	tick   uint64               // sweeps so far: the idle clock
	closed bool
}

// Idle connections are swept every h1SweepEvery; one idle for h1IdleTicks
// sweeps has been idle for at least baseIdleConnTimeout.
const (
	h1SweepEvery = baseIdleConnTimeout / 3
	h1IdleTicks  = 4
)

type h1Conn struct {
	c      net.Conn
	lim    *headerLimit // under br: bounds the bytes a response head may take
	br     *bufio.Reader
	bw     *bufio.Writer
	addr   string
	idleAt uint64 // h1Direct.tick when it was pooled
	// abort fails the blocking I/O of the request in progress; made once
	// per connection, not per request.
	abort func()
}

const h1BufSize = 4 << 10

// h1MaxHeaderBytes bounds what the direct path reads for the status line
// and headers of one response (1xx included), as net/http's Transport
// bounds it with MaxResponseHeaderBytes.
const h1MaxHeaderBytes = 1 << 20

// errHeaderTooLarge is the answer to an upstream whose response head does
// not end within h1MaxHeaderBytes.
var errHeaderTooLarge = errors.New("outbound: upstream response headers exceed 1 MiB")

// headerLimit passes reads through while n > 0; the direct path arms it
// while it reads a response head and disarms it for the body.
type headerLimit struct {
	r io.Reader
	n int64 // < 0: no limit
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func newH1Direct(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *h1Direct {
	return &h1Direct{dial: dial, idle: make(map[string][]*h1Conn)}
}

// reqWriteExclude are the headers written by h1Direct itself.
var reqWriteExclude = map[string]bool{"Host": true, "User-Agent": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true}

// eligible reports whether req can take the fast path.
func (t *h1Direct) eligible(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	if req.ContentLength > 0 || len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 || req.Close {
		return false
	}
	h := req.Header
	if len(h["Connection"]) > 0 || len(h["Upgrade"]) > 0 || len(h["Expect"]) > 0 || len(h["Te"]) > 0 {
		return false
	}
	if m := req.Method; m != "" && m != http.MethodGet && m != http.MethodHead {
		return false
	}
	return req.URL.Host != "" && req.URL.Opaque == "" && req.URL.User == nil
}

func (t *h1Direct) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.eligible(req) {
		return nil, http.ErrSkipAltProtocol
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	addr := req.URL.Host
	if strings.LastIndexByte(addr, ':') <= strings.LastIndexByte(addr, ']') {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "80")
	}
	for {
		pc, reused, err := t.get(ctx, addr)
		if err != nil {
			return nil, err
		}
		resp, err := t.send(ctx, pc, req)
		if err == nil {
			return resp, nil
		}
		_ = pc.c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("outbound: %w: %w", context.Cause(ctx), err)
		}
		var re *retryableErr
		if reused && errors.As(err, &re) {
			continue // the server closed the idle connection: a fresh one
		}
		return nil, err
	}
}

// retryableErr is a failure before any byte of a response arrived on a
// reused connection.
type retryableErr struct{ err error }

func (e *retryableErr) Error() string { return e.err.Error() }
func (e *retryableErr) Unwrap() error { return e.err }

func (t *h1Direct) send(ctx context.Context, pc *h1Conn, req *http.Request) (*http.Response, error) {
	// A cancelled or expired context aborts the blocking I/O.
	stop := context.AfterFunc(ctx, pc.abort)
	if err := writeRequest(pc.bw, req); err != nil {
		stop()
		return nil, &retryableErr{err}
	}
	trace := httptrace.ContextClientTrace(ctx)
	for {
		// The head is read under the byte cap; the body is not. The cap is
		// lifted before pc can go back to the pool, where another request
		// may take it at once.
		pc.lim.n = h1MaxHeaderBytes
		if _, err := pc.br.Peek(1); err != nil {
			pc.lim.n = -1
			stop()
			return nil, &retryableErr{err}
		}
		if req.Method == http.MethodGet || req.Method == "" {
			// The whole head is usually in the buffer after the first read.
			buf, _ := pc.br.Peek(pc.br.Buffered())
			if resp, n, ok := parsePlainHead(buf, req); ok {
				pc.lim.n = -1
				_, _ = pc.br.Discard(n)
				if resp.ContentLength == 0 {
					resp.Body = http.NoBody
					t.release(pc, false, stop)
					return resp, nil
				}
				resp.Body = &h1Body{ctx: ctx, t: t, pc: pc, stop: stop, remain: resp.ContentLength}
				return resp, nil
			}
		}
		resp, err := http.ReadResponse(pc.br, req)
		pc.lim.n = -1
		if err != nil {
			stop()
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			if trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
					stop()
					return nil, err
				}
			}
			continue
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// Not asked for (no Upgrade header): the connection is no
			// longer HTTP; it is not reused.
			stop()
			return nil, errors.New("outbound: unsolicited 101 Switching Protocols")
		}
		if resp.Body == http.NoBody || resp.Body == nil {
			t.release(pc, resp.Close, stop)
			return resp, nil
		}
		resp.Body = &h1Body{ctx: ctx, rc: resp.Body, t: t, pc: pc, close: resp.Close, stop: stop}
		return resp, nil
	}
}

// writeRequest writes a bodiless HTTP/1.1 request as net/http would for
// the headers ReverseProxy leaves (User-Agent "" means none).
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	m := req.Method
	if m == "" {
		m = http.MethodGet
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	uri := req.URL.RequestURI()
	if strings.ContainsAny(host, " \r\n") || strings.ContainsAny(uri, " \r\n") {
		return fmt.Errorf("outbound: invalid host or URI %q %q", host, uri)
	}
	bw.WriteString(m)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	if ua, ok := req.Header["User-Agent"]; !ok {
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n")
	} else if len(ua) > 0 && ua[0] != "" {
		bw.WriteString("User-Agent: ")
		bw.WriteString(ua[0])
		bw.WriteString("\r\n")
	}
	if err := req.Header.WriteSubset(bw, reqWriteExclude); err != nil {
		return err
	}
	bw.WriteString("\r\n")
	return bw.Flush()
}

// h1Body returns the connection to the pool once the body was read to its
// end; closed before that, the connection is closed. It reads net/http's
// body (rc), or for a head parsePlainHead read, remain bytes from the
// connection itself.
type h1Body struct {
	ctx    context.Context
	rc     io.ReadCloser
	remain int64 // without rc: the bytes of the body not read yet
	t      *h1Direct
	pc     *h1Conn
	close  bool
	stop   func() bool
	done   bool
	mu     sync.Mutex
}

func (b *h1Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, io.EOF
	}
	var (
		n   int
		err error
	)
	if b.rc != nil {
		n, err = b.rc.Read(p)
	} else {
		n, err = b.readLength(p)
	}
	if err == io.EOF {
		b.done = true
		b.t.release(b.pc, b.close, b.stop)
	} else if err != nil {
		b.done = true
		b.stop()
		_ = b.pc.c.Close()
		if b.ctx.Err() != nil {
			// The deadline we set on the connection is the context's doing.
			err = fmt.Errorf("outbound: reading the response body: %w: %w", context.Cause(b.ctx), err)
		}
	}
	return n, err
}

// readLength reads up to remain bytes; the last ones come with io.EOF, and
// a connection that ends before is io.ErrUnexpectedEOF, as net/http's body
// of a known length reports it.
func (b *h1Body) readLength(p []byte) (int, error) {
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.pc.br.Read(p)
	b.remain -= int64(n)
	if b.remain == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *h1Body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil
	}
	b.done = true
	b.stop()
	return b.pc.c.Close()
}

// release pools pc after a complete response, unless the server asked to
// close, the context fired meanwhile or bytes nobody asked for wait.
func (t *h1Direct) release(pc *h1Conn, closeConn bool, stop func() bool) {
	if !stop() || closeConn || pc.br.Buffered() > 0 {
		_ = pc.c.Close()
		return
	}
	t.mu.Lock()
	list := t.idle[pc.addr]
	if t.closed || len(list) >= baseMaxIdleConnsPerHost {
		t.mu.Unlock()
		_ = pc.c.Close()
		return
	}
	pc.idleAt = t.tick
	t.idle[pc.addr] = append(list, pc)
	if t.sweep == nil {
		t.sweep = time.AfterFunc(h1SweepEvery, t.sweepIdle)
	}
	t.mu.Unlock()
}

// get takes the most recent idle connection to addr or dials one.
func (t *h1Direct) get(ctx context.Context, addr string) (*h1Conn, bool, error) {
	t.mu.Lock()
	for list := t.idle[addr]; len(list) > 0; list = t.idle[addr] {
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		if t.tick-pc.idleAt < h1IdleTicks {
			t.mu.Unlock()
			return pc, true, nil
		}
		_ = pc.c.Close()
	}
	t.mu.Unlock()
	c, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	lim := &headerLimit{r: c, n: -1}
	pc := &h1Conn{c: c, lim: lim, br: bufio.NewReaderSize(lim, h1BufSize), bw: bufio.NewWriterSize(c, h1BufSize), addr: addr}
	pc.abort = func() { _ = c.SetDeadline(time.Unix(1, 0)) }
	return pc, false, nil
}

// sweepIdle advances the idle clock, closes connections idle for
// h1IdleTicks sweeps and re-arms itself while any remain.
func (t *h1Direct) sweepIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sweep == nil {
		return // closed meanwhile
	}
	t.tick++
	for addr, list := range t.idle {
		keep := list[:0]
		for _, pc := range list {
			if t.tick-pc.idleAt >= h1IdleTicks {
				_ = pc.c.Close()
				continue
			}
			keep = append(keep, pc)
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(t.idle, addr)
		} else {
			t.idle[addr] = keep
		}
	}
	if len(t.idle) > 0 {
		t.sweep.Reset(h1SweepEvery)
	} else {
		t.sweep = nil
	}
}

// CloseIdleConnections closes the pooled connections now.
func (t *h1Direct) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = make(map[string][]*h1Conn)
	if t.sweep != nil {
		t.sweep.Stop()
		t.sweep = nil
	}
	t.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			_ = pc.c.Close()
		}
	}
}

// close closes the pooled connections and, from now on, every connection
// a finished request releases.
func (t *h1Direct) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
}
