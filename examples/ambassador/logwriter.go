package main

import (
	"io"
	"sync"
	"time"
)

// logWriter sits between the slog handler and stderr. Every Write is one
// whole log line (slog handlers write a record in one call); it is appended
// to a buffer and a background goroutine writes whatever has accumulated in
// one system call. A request therefore never waits for a write(2) of its
// access-log line. After each write the goroutine waits flushInterval
// before the next, so under steady traffic the lines of that interval
// share one write (even one request at a time: at -c1 a write(2) and a
// goroutine wake-up per request were most of the CPU the ambassador spent
// beyond a bare ReverseProxy's), while a line after a quiet spell is
// still written within microseconds, and none waits more than
// flushInterval.
//
// Lines keep their order and are never split. A buffer above maxPending is
// written by the caller itself (backpressure instead of unbounded memory).
// Close writes what is left and stops the goroutine.
type logWriter struct {
	w    io.Writer
	kick chan struct{}
	stop chan struct{} // closed by Close: ends the wait between writes
	done chan struct{}

	mu      sync.Mutex // guards pending and closed
	pending []byte
	closed  bool

	wmu   sync.Mutex // serializes writes to w
	spare []byte     // guarded by wmu
}

const maxPending = 256 << 10

// flushInterval is the least time between two writes of the background
// goroutine: how long a line may wait under steady traffic.
const flushInterval = 5 * time.Millisecond

func newLogWriter(w io.Writer) *logWriter {
	lw := &logWriter{w: w, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go lw.loop()
	return lw
}

func (lw *logWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		lw.wmu.Lock()
		defer lw.wmu.Unlock()
		return lw.w.Write(p)
	}
	lw.pending = append(lw.pending, p...)
	full := len(lw.pending) >= maxPending
	if !full {
		select {
		case lw.kick <- struct{}{}:
		default: // a flush is already due; it will take this line too
		}
	}
	lw.mu.Unlock()
	if full {
		lw.flush()
	}
	return len(p), nil
}

// flush writes everything pending. A failed write is dropped: there is
// nowhere left to report it.
func (lw *logWriter) flush() {
	lw.wmu.Lock()
	defer lw.wmu.Unlock()
	lw.mu.Lock()
	buf := lw.pending
	lw.pending = lw.spare[:0]
	lw.mu.Unlock()
	if len(buf) > 0 {
		_, _ = lw.w.Write(buf)
	}
	if cap(buf) > maxPending*2 {
		buf = nil // do not keep a burst's buffer forever
	}
	lw.spare = buf
}

// loop writes what is pending when kicked, then waits flushInterval (or
// Close) before it looks at the kick again: Writes meanwhile only append
// and leave their kick in the channel's buffer, waking nobody.
func (lw *logWriter) loop() {
	defer close(lw.done)
	t := time.NewTimer(flushInterval)
	defer t.Stop()
	for range lw.kick {
		lw.flush()
		t.Reset(flushInterval)
		select {
		case <-t.C:
		case <-lw.stop:
		}
	}
}

// Close writes the pending lines and stops the background goroutine; later
// Writes go straight to the underlying writer.
func (lw *logWriter) Close() error {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		return nil
	}
	lw.closed = true
	close(lw.stop)
	close(lw.kick)
	lw.mu.Unlock()
	<-lw.done
	lw.flush()
	return nil
}
