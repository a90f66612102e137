package proxy

import (
	"context"
	"net"
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

// add records c, or reports false once the drain is over.
func (t *tunnels) add(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	if t.open == nil {
		t.open = make(map[net.Conn]struct{})
	}
	t.open[c] = struct{}{}
	return true
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

// tunnelConn is a hijacked client connection that counts the bytes relayed
// through it, for the access log. Both directions run at once, and the
// second may still end while the log line is written: hence atomics.
type tunnelConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *tunnelConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}
