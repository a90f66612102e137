package main

import (
	"io"
	"sync"
	"time"
)

// logWriter sits between the slog handler and stderr. Every Write is one
// whole log line (slog handlers write a record in one call); it is appended
// to a buffer and a background goroutine writes whatever has accumulated in
// one system call, at most once per flushDelay. A request therefore never
// waits for a write(2) of its access-log line; under load many lines share
// one write, and so do those of one request at a time (at -c1 each line
// had a write of its own, a third of the process's writes), while an idle
// process still writes its first line within microseconds and then never
// wakes.
//
// Lines keep their order and are never split. A buffer above maxPending is
// written by the caller itself (backpressure instead of unbounded memory).
// Close writes what is left and stops the goroutine.
type logWriter struct {
	w    io.Writer
	kick chan struct{}
	done chan struct{}

	mu      sync.Mutex // guards pending and closed
	pending []byte
	closed  bool

	wmu   sync.Mutex // serializes writes to w
	spare []byte     // guarded by wmu
}

const maxPending = 256 << 10

// flushDelay is the least time between two of the goroutine's writes.
const flushDelay = time.Millisecond

func newLogWriter(w io.Writer) *logWriter {
	lw := &logWriter{w: w, kick: make(chan struct{}, 1), done: make(chan struct{})}
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

func (lw *logWriter) loop() {
	defer close(lw.done)
	t := time.NewTimer(flushDelay)
	t.Stop()
	for range lw.kick {
		lw.flush()
		// Lines that come meanwhile wait for the next write.
		t.Reset(flushDelay)
		<-t.C
	}
}

// Close writes the pending lines and stops the background goroutine (within
// flushDelay); later Writes go straight to the underlying writer.
func (lw *logWriter) Close() error {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		return nil
	}
	lw.closed = true
	close(lw.kick)
	lw.mu.Unlock()
	<-lw.done
	lw.flush()
	return nil
}
