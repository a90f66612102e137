package proxy

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// errHandlerDone is what a read of the caller's body gets once the
// request's handler has returned.
var errHandlerDone = errors.New("ambassador: request body read after the handler returned")

// aLongTimeAgo is a read deadline in the past: it ends a pending read at
// once.
var aLongTimeAgo = time.Unix(1, 0)

// callerBody guards an HTTP/1 request body so that nothing reads it once
// the handler has returned.
//
// The base transport may still be reading the caller's body when the
// handler returns: an upstream that answers before it has read the whole
// request leaves http.Transport's write loop copying the rest, and
// ReverseProxy returns (or panics with http.ErrAbortHandler when the
// answer is cut) without waiting for it. net/http's HTTP/1 server then
// aborts the pending read of the connection: a read deadline in the past,
// then it waits for the read to end. If the caller's last body bytes
// arrive just then, the write loop's read returns them instead of the
// deadline error, reaches the end of the body, and the server starts its
// background read of the connection, which clears the deadline; the
// server then waits for a read that nothing ends until the client closes
// the connection. After a cut answer that client gets no answer at all,
// whatever the service timeout (the soak's rare 5 s client timeouts on
// /broken/).
//
// finish, run as the handler returns, refuses every later Read and Close,
// interrupts a Read or Close still in progress with a read deadline in
// the past (what the server's own abort would do), waits for it to end,
// and clears the deadline again: when the server aborts its pending read,
// no other reader of the connection is left to race with it.
type callerBody struct {
	rc io.ReadCloser

	mu   sync.Mutex
	busy int           // Reads and Closes of rc in progress
	done bool          // the handler returned: rc is no longer touched
	idle chan struct{} // set by finish while busy; closed when busy drops to 0
}

func newCallerBody(rc io.ReadCloser) *callerBody { return &callerBody{rc: rc} }

// enter starts a Read or Close of rc; false means the handler is done.
func (b *callerBody) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return false
	}
	b.busy++
	return true
}

func (b *callerBody) leave() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.busy--
	if b.busy == 0 && b.idle != nil {
		close(b.idle)
		b.idle = nil
	}
}

func (b *callerBody) Read(p []byte) (int, error) {
	if !b.enter() {
		return 0, errHandlerDone
	}
	defer b.leave()
	return b.rc.Read(p)
}

// Close closes the caller's body while the handler runs; afterwards the
// server closes it itself.
func (b *callerBody) Close() error {
	if !b.enter() {
		return nil
	}
	defer b.leave()
	return b.rc.Close()
}

// discardRest reads and drops what is left of the caller's body, up to
// what net/http's server drains itself (beyond that the server closes the
// connection; closeIfBodyLeft said so in the answer), once finish has run.
//
// In full-duplex mode net/http's HTTP/1 server does this read after the
// handler has returned and after it has stopped watching the connection.
// Reaching the body's end there starts the server's background read of
// the connection, which nothing then stops, and its read of the next
// request on a kept-alive connection panics ("invalid concurrent Body.Read
// call", golang/go#68560): the connection is reset under the client's next
// request. Read here, while the handler runs, the end of the body starts
// that background read early enough for the server to stop it when the
// handler returns, as it does without full duplex.
//
// A connection the server closes after the answer needs none of this (it
// reads no next request), and there the read would hold the answer back:
// the server sends it when the handler returns. A client waiting for a
// 100 Continue that will never come got its answer only once it gave up
// waiting and sent the body, and a chunked upload only after 256 KiB more.
func (b *callerBody) discardRest() { _ = b.rc.Close() }

// willClose reports whether net/http's server closes the connection after
// this answer: its header says so (closeIfBodyLeft,
// closeAfterChunkedRequest), or the request expected a 100 Continue (the
// server closes when the body has not been read to its end by the time the
// answer's header goes; when it had been, there is nothing to discard).
func willClose(r *http.Request, h http.Header) bool {
	for _, v := range h["Connection"] {
		if strings.EqualFold(strings.TrimSpace(v), "close") {
			return true
		}
	}
	return strings.EqualFold(r.Header.Get("Expect"), "100-continue")
}

// finish ends the handler's use of the body: see callerBody. w is the
// server's ResponseWriter (or one that unwraps to it).
func (b *callerBody) finish(w http.ResponseWriter) {
	b.mu.Lock()
	b.done = true
	if b.busy == 0 {
		b.mu.Unlock()
		return
	}
	idle := make(chan struct{})
	b.idle = idle
	b.mu.Unlock()
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(aLongTimeAgo); err != nil {
		// No way to interrupt it (a hijacked connection): leave it be
		// rather than wait for a read that may never end.
		return
	}
	<-idle
	_ = rc.SetReadDeadline(time.Time{})
}
