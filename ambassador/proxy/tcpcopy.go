package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// How a pair ended, in the access log's end field.
const (
	tcpEndClosed = "closed"       // both sides finished (EOF each way)
	tcpEndReset  = "reset"        // a read or write failed on either side
	tcpEndIdle   = "idle_timeout" // no byte either way for tcp.idle_timeout
	tcpEndDrain  = "drain"        // closed at the end of drain_timeout
)

// tcpPair copies bytes both ways between a client connection and its
// upstream connection, one goroutine per direction (the caller's and one
// it starts), and passes half-closes on: EOF from one side becomes
// CloseWrite on the other, and the pair lives until both directions have
// ended. The first error either way closes both connections (and so ends
// the other direction). run returns only when both copies have returned:
// no goroutine outlives the pair.
//
// Each direction is a read/write loop over a pooled 32 KiB buffer
// (sharedBufferPool). The kernel's splice path, which io.Copy between two
// *net.TCPConn takes (TCPConn.ReadFrom), was measured against it on
// loopback (BenchmarkTCPCopy, splice: true): no wall-time difference
// outside the noise, and about 20% more CPU per MiB for splice (it goes
// through a pipe, two syscalls a chunk), so it is not used; it also could
// not stamp activity for idle_timeout.
//
// The idle timeout is one timer per pair, not one per read: every read
// stores a clock reading in last, and the timer, when it fires, closes
// the pair if the silence has lasted idle_timeout, or else re-arms for
// the rest of it.
type tcpPair struct {
	client, up net.Conn // closed to end the pair (client may hold a connection-limit slot)
	cRaw, uRaw net.Conn // copied between: the connections themselves
	idle       time.Duration
	// splice makes each direction io.Copy (the splice path between two
	// *net.TCPConn) instead of the buffer loop, when idle is 0. Only
	// BenchmarkTCPCopy sets it, to compare the two.
	splice bool

	last  atomic.Int64 // monotonic ns of the last read with data (idle only)
	tmu   sync.Mutex   // guards timer: a very short idle_timeout may fire before run stores it
	timer *time.Timer

	end       atomic.Pointer[string] // the first reason to end, nil while running
	closeOnce sync.Once
}

var tcpEpoch = time.Now()

func tcpNow() int64 { return int64(time.Since(tcpEpoch)) }

// run copies until both directions end and returns the bytes read from
// the client (in) and from the upstream (out) and how the pair ended.
func (p *tcpPair) run() (in, out int64, how string) {
	if p.idle > 0 {
		p.last.Store(tcpNow())
		p.tmu.Lock()
		p.timer = time.AfterFunc(p.idle, p.checkIdle)
		p.tmu.Unlock()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		out = p.half(p.client, p.cRaw, p.uRaw)
	}()
	in = p.half(p.up, p.uRaw, p.cRaw)
	wg.Wait()
	if p.idle > 0 {
		p.tmu.Lock()
		p.timer.Stop()
		p.tmu.Unlock()
	}
	p.finish(tcpEndClosed)
	return in, out, *p.end.Load()
}

// half copies src to dst (dstConn is what CloseWrite is called on) and
// passes EOF on as a half-close; an error ends the pair. A reset passes
// on as a reset (see abort).
func (p *tcpPair) half(dstConn, dst, src net.Conn) int64 {
	n, readErr, err := p.copy(dst, src)
	if err == nil {
		if cw, ok := dstConn.(interface{ CloseWrite() error }); ok {
			err = cw.CloseWrite()
		} else {
			err = errors.New("no half-close")
		}
	}
	if err != nil {
		if isReset(err) {
			// The side that failed was reset: reset the other one.
			if readErr {
				abort(dst)
			} else {
				abort(src)
			}
		}
		p.finish(tcpEndReset)
	}
	return n
}

// copy copies src to dst until src's EOF (nil) or an error; readErr says
// the error came from reading src rather than writing dst.
func (p *tcpPair) copy(dst, src net.Conn) (n int64, readErr bool, err error) {
	if p.splice && p.idle <= 0 {
		n, err = io.Copy(dst, src)
		return n, false, err
	}
	buf := sharedBufferPool.Get()
	defer sharedBufferPool.Put(buf)
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			if p.idle > 0 {
				p.last.Store(tcpNow())
			}
			nw, werr := dst.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, false, werr
			}
		}
		if rerr == io.EOF {
			return n, false, nil
		}
		if rerr != nil {
			return n, true, rerr
		}
	}
}

// isReset reports whether err says the peer reset the connection: an RST
// seen by a read (ECONNRESET) or by a write (ECONNRESET, or EPIPE once the
// reset has been taken).
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// abort makes the coming Close of c send a reset instead of a FIN
// (SO_LINGER 0), so that a reset on one side of a pair reaches the other
// as a reset: a FIN would tell a client reading to the close (a response
// delimited by it, a dump) that an upstream which crashed mid-answer had
// finished, and an upstream that its aborted client had only stopped
// sending. (haproxy 2.6 in mode tcp, tried here, passes a client's reset
// on to the upstream the same way, but closes the client with a FIN after
// an upstream's reset.) A TLS connection is reset below its TLS layer.
func abort(c net.Conn) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

// checkIdle runs on the idle timer: it ends a pair silent for idle, or
// re-arms the timer for what is left of it.
func (p *tcpPair) checkIdle() {
	if p.end.Load() != nil {
		return
	}
	silent := time.Duration(tcpNow() - p.last.Load())
	if silent >= p.idle {
		p.finish(tcpEndIdle)
		return
	}
	p.tmu.Lock()
	p.timer.Reset(p.idle - silent)
	p.tmu.Unlock()
}

// finish records why the pair ends (the first reason wins) and, for any
// reason but a clean end of both directions, closes both connections.
func (p *tcpPair) finish(how string) {
	if p.end.CompareAndSwap(nil, &how) || how != tcpEndClosed {
		p.closeOnce.Do(func() {
			_ = p.client.Close()
			_ = p.up.Close()
		})
	}
}
