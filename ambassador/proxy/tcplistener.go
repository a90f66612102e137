package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// tcpListener serves one tcp listener: every accepted client connection is
// joined to one endpoint of the listener's service (the service of the
// routing table current at accept time, so a reload sends new connections
// to the new service while open pairs stay on the one they started with),
// and the bytes are copied both ways (tcpPair) until the pair closes.
//
// shutdown stops accepting and waits for open pairs until its context is
// done, then ends what is left (connects in progress are cancelled, pairs
// closed with end "drain").
type tcpListener struct {
	s   *Server
	idx int
	ln  net.Listener

	ctx    context.Context // cancelled when the drain ends: stops connects and queues
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[*tcpSession]struct{}
	closed   bool
}

// tcpSession is one client connection, its pair once connected.
type tcpSession struct {
	client net.Conn
	pair   *tcpPair
}

func (s *Server) newTCPListener(idx int, ln net.Listener) *tcpListener {
	ctx, cancel := context.WithCancel(context.Background())
	return &tcpListener{s: s, idx: idx, ln: ln, ctx: ctx, cancel: cancel, sessions: map[*tcpSession]struct{}{}}
}

// serve accepts until the listener is closed (nil) or fails.
func (l *tcpListener) serve() error {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// A transient failure such as EMFILE: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.s.opts.logger.Warn("tcp listener: accept failed; retrying", "listener", l.ln.Addr().String(), "error", err, "delay", delay.String())
			select {
			case <-time.After(delay):
			case <-l.ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
		sess := &tcpSession{client: c}
		if !l.track(sess) {
			_ = c.Close()
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer l.untrack(sess)
			l.handle(sess)
		}()
	}
}

func (l *tcpListener) track(sess *tcpSession) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		return false
	}
	l.sessions[sess] = struct{}{}
	return true
}

func (l *tcpListener) untrack(sess *tcpSession) {
	l.mu.Lock()
	delete(l.sessions, sess)
	l.mu.Unlock()
}

// setPair records the session's pair, for a forced close; false means the
// drain already ended.
func (l *tcpListener) setPair(sess *tcpSession, p *tcpPair) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	sess.pair = p
	return l.ctx.Err() == nil
}

// shutdown stops accepting, lets open pairs run until ctx is done, then
// closes them and waits for their goroutines.
func (l *tcpListener) shutdown(ctx context.Context) {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	_ = l.ln.Close()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		l.mu.Lock()
		l.cancel()
		n := len(l.sessions)
		for sess := range l.sessions {
			if sess.pair != nil {
				sess.pair.finish(tcpEndDrain)
			} else {
				_ = sess.client.Close()
			}
		}
		l.mu.Unlock()
		if n > 0 {
			l.s.opts.logger.Warn("drain timeout: closing remaining tcp connections", "listener", l.ln.Addr().String(), "connections", n)
		}
		<-done
	}
	l.cancel()
}

// entry returns the listener's service entry with a reference held, or nil
// when the server is closing.
func (l *tcpListener) entry() *serviceEntry {
	for {
		t := l.s.table.Load()
		e := t.listeners[l.idx].service
		if e == nil || e.tcp == nil {
			return nil
		}
		if e.acquire() {
			return e
		}
		if l.s.table.Load() == t {
			return nil
		}
	}
}

// handle joins one client connection to an endpoint and copies until the
// pair ends, then writes its access-log line.
func (l *tcpListener) handle(sess *tcpSession) {
	start := time.Now()
	client := sess.client
	e := l.entry()
	if e == nil {
		_ = client.Close()
		return
	}
	defer e.release()
	t := e.tcp
	if !e.takeSlot() {
		_ = client.Close()
		t.metrics.connection("refused")
		l.logPair(client, t, tcpConnect{result: "refused", err: errors.New("max_concurrent_requests reached")}, start, 0, 0, "refused")
		return
	}
	defer e.freeSlot()
	res := t.connect(l.ctx)
	t.metrics.connection(res.result)
	if res.up == nil {
		_ = client.Close()
		l.logPair(client, t, res, start, 0, 0, res.result)
		return
	}
	defer res.slot.release()
	p := &tcpPair{client: client, up: res.up, cRaw: rawConn(client), uRaw: res.up, idle: t.idle}
	if !l.setPair(sess, p) {
		p.finish(tcpEndDrain)
	}
	t.metrics.opened(1)
	in, out, how := p.run()
	t.metrics.opened(-1)
	t.metrics.transferred(in, out)
	l.logPair(client, t, res, start, in, out, how)
}

// rawConn returns the connection under the client connection limit's
// wrapper, so copies reach the *net.TCPConn directly; the wrapper is still
// what is closed.
func rawConn(c net.Conn) net.Conn {
	if lc, ok := c.(*limitedConn); ok {
		return lc.Conn
	}
	return c
}

// logPair writes the access-log line of one client connection of a tcp
// listener: service, endpoint, attempts, duration, bytes each way and how
// it ended (closed, reset, idle_timeout, drain, or the connection result
// when it was never joined: refused, connect_failed, queued_timeout).
func (l *tcpListener) logPair(client net.Conn, t *tcpService, res tcpConnect, start time.Time, in, out int64, how string) {
	level := slog.LevelInfo
	if res.err != nil {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	h := l.s.accessLogger().Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	endpoint := ""
	if res.slot != nil {
		endpoint = res.slot.addr
	}
	attrs := []slog.Attr{
		slog.String("protocol", "tcp"),
		slog.String("listener", l.s.addrs[l.idx]),
		slog.String("remote", client.RemoteAddr().String()),
		slog.String("service", t.name),
		slog.String("endpoint", endpoint),
		slog.Int("attempts", res.attempts),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", out),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.String("end", how),
	}
	if res.err != nil {
		attrs = append(attrs, slog.String("error", res.err.Error()))
	}
	r := slog.NewRecord(time.Now(), level, "tcp", 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r)
}

// newTCPListeners returns, for each of lns (the admin listener last), the
// tcpListener serving it when c makes it a tcp listener, else nil. The
// http.Server newHTTPServers made for a tcp listener is never started.
func (s *Server) newTCPListeners(c *Config, lns []net.Listener) []*tcpListener {
	out := make([]*tcpListener, len(lns))
	for i := range s.addrs {
		if i < len(c.Listeners) && c.Listeners[i].isTCP() {
			out[i] = s.newTCPListener(i, lns[i])
		}
	}
	return out
}

// sameListenerProtocols refuses a reload that turns a listener (matched
// by address, as buildTable matches them) from http to tcp or back: the
// protocol is fixed at start.
func sameListenerProtocols(old, c *Config) error {
	byAddr := map[string][]bool{}
	for _, l := range old.Listeners {
		byAddr[l.Address] = append(byAddr[l.Address], l.isTCP())
	}
	for i, l := range c.Listeners {
		was := byAddr[l.Address]
		if len(was) == 0 {
			continue // buildTable refuses the changed set of addresses
		}
		byAddr[l.Address] = was[1:]
		if was[0] != l.isTCP() {
			return fmt.Errorf("ambassador: listeners[%d].protocol: a listener's protocol cannot change without a restart", i)
		}
	}
	return nil
}
