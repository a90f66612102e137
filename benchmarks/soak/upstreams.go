package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

// upstreams are the servers the soak's ambassador proxies to, all on
// 127.0.0.1 in this process: fast answers at once, slow after 50–200 ms,
// failing with 503 or 500 in turn (HTTP/1.1 and h2c on each), and reset, a
// raw TCP server that reads a request head and then closes the connection
// before answering or in the middle of a response.
type upstreams struct {
	fast, slow, failing, reset string // host:port

	servers []*http.Server
	rawLn   net.Listener
	rawWG   sync.WaitGroup
	errc    chan error
}

// respBody is what the fast and slow upstreams answer (sliced to the size
// a request asks for with ?size=N).
var respBody = make([]byte, 64<<10)

// startUpstreams starts the four upstreams; close stops them.
func startUpstreams() (*upstreams, error) {
	u := &upstreams{errc: make(chan error, 4)}
	var failCount atomic.Uint64
	handlers := []struct {
		addr *string
		h    http.HandlerFunc
	}{
		{&u.fast, func(w http.ResponseWriter, r *http.Request) { answer(w, r) }},
		{&u.slow, slowHandler},
		{&u.failing, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			code := http.StatusServiceUnavailable
			if failCount.Add(1)%2 == 0 {
				code = http.StatusInternalServerError
			}
			http.Error(w, http.StatusText(code), code)
		}},
	}
	for _, h := range handlers {
		addr, err := u.serveHTTP(h.h)
		if err != nil {
			u.close()
			return nil, err
		}
		*h.addr = addr
	}
	ln, err := loopback.Listen("127.0.0.1:0")
	if err != nil {
		u.close()
		return nil, err
	}
	u.rawLn = ln
	u.reset = ln.Addr().String()
	u.rawWG.Add(1)
	go u.serveReset()
	return u, nil
}

// serveHTTP serves h over HTTP/1.1 and h2c on a fresh loopback port.
func (u *upstreams) serveHTTP(h http.Handler) (string, error) {
	ln, err := loopback.Listen("127.0.0.1:0")
	if err != nil {
		return "", err
	}
	protos := new(http.Protocols)
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           h,
		Protocols:         protos,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	u.servers = append(u.servers, srv)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			u.errc <- fmt.Errorf("upstream %s: %w", ln.Addr(), err)
		}
	}()
	return ln.Addr().String(), nil
}

// answer reads the request body and writes ?size= bytes (default 512).
func answer(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		return // the proxy went away mid-body
	}
	size := 512
	if s := r.URL.Query().Get("size"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v >= 0 && v <= len(respBody) {
			size = v
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Request-Bytes", strconv.FormatInt(n, 10))
	w.Header().Set("Content-Length", strconv.Itoa(size))
	_, _ = w.Write(respBody[:size])
}

// slowHandler answers like answer after 50–200 ms, or not at all when the
// request is cancelled first (a per-try timeout or a hedge that lost).
func slowHandler(w http.ResponseWriter, r *http.Request) {
	t := time.NewTimer(time.Duration(50+rand.IntN(151)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		answer(w, r)
	case <-r.Context().Done():
	}
}

// serveReset accepts raw connections for the reset upstream until its
// listener is closed.
func (u *upstreams) serveReset() {
	defer u.rawWG.Done()
	var n atomic.Uint64
	for {
		c, err := u.rawLn.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				u.errc <- fmt.Errorf("reset upstream: %w", err)
			}
			return
		}
		u.rawWG.Add(1)
		go func() {
			defer u.rawWG.Done()
			resetConn(c, n.Add(1)%2 == 0)
		}()
	}
}

// resetConn reads one request head from c and closes c: at once with an
// RST (midResponse false), or after a response head promising 4096 bytes
// and 100 of them.
func resetConn(c net.Conn, midResponse bool) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) <= 2 { // "\r\n" or "\n": the end of the head
			break
		}
	}
	if !midResponse {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST
		}
		return
	}
	_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\n\r\n")
	_, _ = c.Write(respBody[:100])
}

// err returns the first error an upstream's serve loop reported, if any.
func (u *upstreams) err() error {
	select {
	case err := <-u.errc:
		return err
	default:
		return nil
	}
}

// close stops every upstream and waits for the raw one's goroutines.
func (u *upstreams) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range u.servers {
		if err := s.Shutdown(ctx); err != nil {
			_ = s.Close()
		}
	}
	if u.rawLn != nil {
		_ = u.rawLn.Close()
		u.rawWG.Wait()
	}
}
