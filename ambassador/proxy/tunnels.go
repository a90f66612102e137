package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// tunnels keeps the client connections that the listeners' handlers took
// over for a protocol switch: a WebSocket upgrade, which ReverseProxy
// relays inside the handler until either side closes. http.Server.Shutdown
// neither waits for a hijacked connection nor closes it, so without this a
// drain would end, and the process exit, under an open WebSocket. The drain
// waits for them as it waits for tcp pairs and closes what is left when
// drain_timeout ends. The zero value is ready to use.
type tunnels struct {
	mu      sync.Mutex
	open    map[net.Conn]struct{}
	closed  bool            // the drain is over: no more switches
	waiters []chan struct{} // closed when open empties
}

// errDrained refuses a protocol switch that comes after the drain ended.
var errDrained = errors.New("ambassador: drained, no more protocol switches")

// hijack takes the client connection with take and records it, or, once
// the drain is over, refuses before anything is taken (so the caller can
// still answer on the ResponseWriter).
func (t *tunnels) hijack(take func() (net.Conn, *bufio.ReadWriter, error)) (net.Conn, *bufio.ReadWriter, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, nil, errDrained
	}
	c, brw, err := take()
	if err != nil {
		return nil, nil, err
	}
	if t.open == nil {
		t.open = make(map[net.Conn]struct{})
	}
	t.open[c] = struct{}{}
	return c, brw, nil
}

// remove forgets c: its handler is done with it.
func (t *tunnels) remove(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.open, c)
	if len(t.open) == 0 {
		for _, w := range t.waiters {
			close(w)
		}
		t.waiters = nil
	}
}

// idle returns a channel that is closed once no tunnel is open.
func (t *tunnels) idle() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := make(chan struct{})
	if len(t.open) == 0 {
		close(ch)
	} else {
		t.waiters = append(t.waiters, ch)
	}
	return ch
}

// drain waits until every tunnel has ended or ctx is done, then refuses new
// ones, closes those left and waits for their handlers to let go of them
// (a handler's relay ends as soon as its client connection is closed).
func (t *tunnels) drain(ctx context.Context) {
	select {
	case <-t.idle():
	case <-ctx.Done():
	}
	t.mu.Lock()
	t.closed = true
	for c := range t.open {
		_ = c.Close()
	}
	t.mu.Unlock()
	<-t.idle()
}

// Hijack hands the client connection over for a protocol switch
// (ReverseProxy calls it through http.ResponseController when the upstream
// answered 101, and writes that answer on the connection itself, so the
// status is recorded here) and keeps it in the server's tunnels, so that
// the drain waits for it and closes it when drain_timeout ends.
func (w *logWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := w.tun.hijack(http.NewResponseController(w.ResponseWriter).Hijack)
	if err != nil {
		return nil, nil, err
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	w.hijacked = &tunnelConn{Conn: c, br: brw.Reader}
	return w.hijacked, brw, nil
}

// tunnelConn is a hijacked client connection as the relay reads it: first
// what the server had already read past the request (a client may send
// the new protocol's first bytes right behind its upgrade request;
// ReverseProxy reads only the connection, golang/go#80875), then the
// connection. It counts the bytes relayed each way for the access log;
// both directions run at once, and the second may still end while the log
// line is written: hence atomics.
type tunnelConn struct {
	net.Conn
	br      *bufio.Reader // the server's reader of the connection; read while it holds bytes
	in, out atomic.Int64
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	var n int
	var err error
	if c.br != nil && c.br.Buffered() > 0 {
		n, err = c.br.Read(p) // only what is buffered: no read of the connection
	} else {
		c.br = nil
		n, err = c.Conn.Read(p)
	}
	c.in.Add(int64(n))
	return n, err
}

func (c *tunnelConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}
