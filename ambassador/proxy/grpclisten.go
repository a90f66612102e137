package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connRouter accepts the connections of one HTTP listener (already counted
// by the client connection limit) and, each in its own goroutine, sniffs
// them (grpcsniff.go) and hands them to net/http's server (httpLn) or to
// grpc-go's (grpcLn). Closing httpLn, as http.Server.Shutdown does, closes
// the listener and ends the accept loop.
type connRouter struct {
	ln      net.Listener
	httpLn  *chanListener
	grpcLn  *chanListener
	native  func() bool   // whether gRPC-first connections go to grpc-go now
	timeout time.Duration // for the whole sniff
	maxBuf  int
	maxHdr  uint32

	mu       sync.Mutex
	sniffing map[net.Conn]struct{} // closed by close
	closed   bool
	wg       sync.WaitGroup

	// decided counts the decisions, for tests (toHTTP, toGRPC).
	decided [2]atomic.Int64
}

func newConnRouter(ln net.Listener, native func() bool, timeout time.Duration, maxHeader int) *connRouter {
	r := &connRouter{ln: ln, native: native, timeout: timeout, maxBuf: maxHeader + 64<<10, maxHdr: uint32(maxHeader),
		sniffing: map[net.Conn]struct{}{}}
	r.httpLn = newChanListener(ln.Addr(), func() { _ = ln.Close() })
	r.grpcLn = newChanListener(ln.Addr(), nil)
	return r
}

// serve is the accept loop; it returns when the listener is closed. A
// failed Accept of another kind (EMFILE) is retried after a pause that
// grows to a second, as net/http's server does.
func (r *connRouter) serve() {
	var pause time.Duration
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || r.httpLn.isClosed() {
				r.close()
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-r.httpLn.done:
				t.Stop()
			}
			continue
		}
		pause = 0
		if !r.track(c) {
			_ = c.Close()
			continue
		}
		r.wg.Add(1)
		go r.route(c)
	}
}

func (r *connRouter) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.sniffing[c] = struct{}{}
	return true
}

func (r *connRouter) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.sniffing, c)
	r.mu.Unlock()
}

// route sniffs c and hands it on; a connection that fails the sniff (or
// its deadline) is closed.
func (r *connRouter) route(c net.Conn) {
	defer r.wg.Done()
	_ = c.SetDeadline(time.Now().Add(r.timeout))
	d, replay, err := sniff(c, r.native(), r.maxBuf, r.maxHdr)
	_ = c.SetDeadline(time.Time{})
	r.untrack(c)
	if err != nil {
		_ = c.Close()
		return
	}
	r.decided[d].Add(1)
	sc := &sniffedConn{Conn: c, replay: replay}
	ln := r.httpLn
	if d == toGRPC {
		ln = r.grpcLn
	}
	if !ln.deliver(sc) {
		_ = c.Close()
	}
}

// close stops taking connections, closes those being sniffed and waits for
// their goroutines.
func (r *connRouter) close() {
	r.mu.Lock()
	r.closed = true
	for c := range r.sniffing {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// chanListener is a net.Listener fed by connRouter.
type chanListener struct {
	addr    net.Addr
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	onClose func()
}

func newChanListener(addr net.Addr, onClose func()) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{}), onClose: onClose}
}

// deliver hands c to the server's Accept; false once the listener is
// closed.
func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		if l.onClose != nil {
			l.onClose()
		}
	})
	return nil
}

func (l *chanListener) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *chanListener) Addr() net.Addr { return l.addr }
