package proxy

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Client connections: limits.max_client_connections and limits.idle_timeout.
//
// Every client connection holds a file descriptor (and some 30 KB of
// buffers). Without a cap, enough idle keep-alive connections exhaust the
// descriptors and accept fails with EMFILE for everyone, the admin listener
// and the upstream dials included. The cap is one count for the whole
// process, shared by every listener but the admin listener, which is never
// capped so that /healthz keeps answering.
//
// At the cap a listener takes one more connection from the kernel and holds
// it: if an HTTP/1.1 keep-alive connection is idle (between requests), it is
// closed at once and its slot goes to the new one; otherwise the new
// connection waits, unread, until a connection closes, and further
// connections wait in the kernel's accept backlog. Nothing spins and
// nothing is refused by the ambassador itself; the client's own connect or
// request timeout bounds the wait.

// defaultIdleTimeout is the default of limits.idle_timeout.
const defaultIdleTimeout = 2 * time.Minute

// Bounds of the limits keys checked by the config check.
const (
	maxClientConnectionsBound = 1 << 20
	maxIdleTimeout            = 24 * time.Hour
)

// Derivation of the default cap from the open-file limit (RLIMIT_NOFILE):
// reservedFDs descriptors are kept for the listeners, the admin listener
// and its clients, config, certificate and endpoint files, and the rest is
// shared evenly between client connections and upstream connections (each
// proxied request in flight holds one of each). Where the limit cannot be
// read, the cap is noRlimitClientConnections.
const (
	reservedFDs               = 128
	noRlimitClientConnections = 10000
)

// IdleTimeoutOrDefault returns IdleTimeout or its default, 2m.
func (l LimitsConfig) IdleTimeoutOrDefault() time.Duration {
	if l.IdleTimeout == 0 {
		return defaultIdleTimeout
	}
	return l.IdleTimeout
}

// MaxClientConnectionsOrDefault returns MaxClientConnections, or when it is
// 0 the cap derived from the process's soft open-file limit n
// (RLIMIT_NOFILE): max((n-128)/2, n/4), at most 1048576. With the common
// limit of 1024 that is 448; with 65536, 32704. (Go raises the soft limit
// to the hard limit at start-up on Linux and macOS, so n is usually the
// hard limit.) Where the limit cannot be read the default is 10000.
func (l LimitsConfig) MaxClientConnectionsOrDefault() int {
	if l.MaxClientConnections > 0 {
		return l.MaxClientConnections
	}
	n, ok := openFileLimit()
	if !ok {
		return noRlimitClientConnections
	}
	return clientConnectionsFor(n)
}

// clientConnectionsFor is the default cap for an open-file limit of n.
func clientConnectionsFor(n uint64) int {
	d := n / 4
	if n > reservedFDs && (n-reservedFDs)/2 > d {
		d = (n - reservedFDs) / 2
	}
	if d > maxClientConnectionsBound {
		d = maxClientConnectionsBound
	}
	if d < 1 {
		d = 1
	}
	return int(d)
}

// checkLimits checks the keys of limits that bound client connections.
func checkLimits(ck checker, l LimitsConfig) {
	ck.CheckRange("limits.idle_timeout", int64(l.IdleTimeout), int64(maxIdleTimeout), "24h")
	ck.CheckRange("limits.max_client_connections", int64(l.MaxClientConnections), maxClientConnectionsBound, "1048576")
}

// connLimiter is the process-wide cap on client connections. Its listener
// wrappers take a slot per accepted connection; the connection's Close
// frees it. Server.ConnState reports which connections are idle.
type connLimiter struct {
	max     int
	waiters atomic.Int32 // Accept calls waiting for a slot; written under mu

	mu      sync.Mutex
	open    map[*limitedConn]struct{}
	changed chan struct{} // closed and replaced when a slot frees or a connection turns idle while someone waits
	// hints are connections that turned idle while someone waited: the
	// first candidates to close. hintsLost: more turned idle than hints holds.
	hints     []*limitedConn
	hintsLost bool
}

const maxIdleHints = 64

func newConnLimiter(max int) *connLimiter {
	return &connLimiter{max: max, open: make(map[*limitedConn]struct{}), changed: make(chan struct{})}
}

// listener returns ln with its connections counted against the cap.
func (cl *connLimiter) listener(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, cl: cl, done: make(chan struct{})}
}

// connState is the http.Server ConnState hook of every capped listener.
func (cl *connLimiter) connState(c net.Conn, st http.ConnState) {
	if sc, ok := c.(*sniffedConn); ok {
		c = sc.Conn // the sniffer's replay wrapper (grpcsniff.go)
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return // an HTTP/2 connection: the server passes its own wrapper
	}
	switch st {
	case http.StateIdle:
		lc.idle.Store(true)
		if cl.waiters.Load() > 0 {
			cl.mu.Lock()
			if len(cl.hints) < maxIdleHints {
				cl.hints = append(cl.hints, lc)
			} else {
				cl.hintsLost = true
			}
			cl.broadcastLocked()
			cl.mu.Unlock()
		}
	case http.StateActive, http.StateHijacked, http.StateClosed:
		lc.idle.Store(false)
	}
}

// admit takes a slot for c, closing an idle connection to free one when
// the cap is reached, or waiting until one frees. It returns false when
// done is closed first.
func (cl *connLimiter) admit(c net.Conn, done <-chan struct{}) (*limitedConn, bool) {
	lc := &limitedConn{Conn: c, cl: cl}
	scan := true
	cl.mu.Lock()
	for {
		if len(cl.open) < cl.max {
			cl.open[lc] = struct{}{}
			cl.mu.Unlock()
			return lc, true
		}
		if v := cl.idleLocked(scan); v != nil {
			// The idle connection's slot goes to c at once; v's own Close
			// then finds it gone from open and frees nothing.
			delete(cl.open, v)
			cl.open[lc] = struct{}{}
			cl.mu.Unlock()
			_ = v.Conn.Close()
			return lc, true
		}
		scan = false
		changed := cl.changed
		cl.waiters.Add(1)
		cl.mu.Unlock()
		select {
		case <-changed:
		case <-done:
			cl.waiters.Add(-1)
			return nil, false
		}
		cl.mu.Lock()
		cl.waiters.Add(-1)
	}
}

// idleLocked returns an idle connection to close: one that turned idle
// while a connection waited, else, when scan is set (the first look) or
// hints were lost, any idle one.
func (cl *connLimiter) idleLocked(scan bool) *limitedConn {
	for len(cl.hints) > 0 {
		v := cl.hints[len(cl.hints)-1]
		cl.hints[len(cl.hints)-1] = nil
		cl.hints = cl.hints[:len(cl.hints)-1]
		if _, ok := cl.open[v]; ok && v.idle.Load() {
			return v
		}
	}
	if !scan && !cl.hintsLost {
		return nil
	}
	cl.hintsLost = false
	for v := range cl.open {
		if v.idle.Load() {
			return v
		}
	}
	return nil
}

func (cl *connLimiter) release(c *limitedConn) {
	cl.mu.Lock()
	if _, ok := cl.open[c]; ok {
		delete(cl.open, c)
		cl.broadcastLocked()
	}
	cl.mu.Unlock()
}

func (cl *connLimiter) broadcastLocked() {
	if cl.waiters.Load() > 0 {
		close(cl.changed)
		cl.changed = make(chan struct{})
	}
}

// limitedListener counts its connections against a connLimiter.
type limitedListener struct {
	net.Listener
	cl        *connLimiter
	done      chan struct{}
	closeOnce sync.Once
}

// Accept accepts a connection, then waits for a slot (see connLimiter).
func (l *limitedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc, ok := l.cl.admit(c, l.done)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("ambassador: accept %s: %w", l.Addr(), net.ErrClosed)
	}
	return lc, nil
}

// Close closes the listener and ends an Accept waiting for a slot.
func (l *limitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn is a client connection holding a slot until it is closed.
type limitedConn struct {
	net.Conn
	cl   *connLimiter
	idle atomic.Bool // between two requests (HTTP/1.1 keep-alive)
}

// Close closes the connection and frees its slot.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.cl.release(c)
	return err
}

// clientConnLimiter returns the process's cap on client connections and
// logs it.
func (s *Server) clientConnLimiter(l LimitsConfig) *connLimiter {
	n := l.MaxClientConnectionsOrDefault()
	if l.MaxClientConnections == 0 {
		s.opts.logger.Debug("client connections capped", "max_client_connections", n, "derived_from", "RLIMIT_NOFILE")
	} else if fd, ok := openFileLimit(); ok && uint64(n) > fd {
		s.opts.logger.Warn("limits.max_client_connections is above the open-file limit: accept may fail with EMFILE",
			"max_client_connections", n, "open_file_limit", fd)
	}
	return newConnLimiter(n)
}

// CloseWrite half-closes the connection when it supports it, as net/http's
// server does before closing a connection it answered with
// Connection: close (so that unread client bytes do not turn the close
// into a reset).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
