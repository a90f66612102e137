// Package replay gives every attempt of an HTTP request a byte-identical
// body.
//
// A request with GetBody is replayed through GetBody. A request without it
// has its body recorded, up to a cap, while the first attempt streams it:
// the transport reads through a Recorder, which keeps what passes in a
// buffer. A re-sent attempt gets a reader over that buffer, after the
// Recorder has read whatever the first attempt left unread (still within the
// cap). A body larger than the cap is streamed once and cannot be replayed;
// nothing ever reads a body without a bound.
//
// The Recorder keeps the caller's body open until both the transport has
// closed it and the retry layer has released it, so that reading ahead for
// a replay never races with a transport that closed the body early, and a
// transport still streaming the final attempt's body is never cut off.
//
// Every body Prepare and Next hand out that reads the caller's body tracks
// its read failures (see internal/inbound): the Recorder is an
// inbound.Tracker itself, and the caller's body is passed through
// inbound.Track otherwise, so the retry layer and the layers below it can
// tell a failure of the caller's body from a failure of the upstream. A
// body whose reading failed is never replayed.
package replay

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/outbound-go/outbound/internal/inbound"
)

// Source hands out the bodies of a request's attempts. The zero Source
// stands for a request without a body.
type Source struct {
	getBody  func() (io.ReadCloser, error)
	rec      *Recorder
	tooLarge bool // declared larger than the cap: streamed once, never buffered
}

// Prepare inspects req and returns the Source for its re-sent attempts and
// the body its first attempt sends (nil for a request without a body).
// maxBuffer caps the bytes recorded for a body without GetBody.
func Prepare(req *http.Request, maxBuffer int64) (Source, io.ReadCloser) {
	if req.Body == nil || req.Body == http.NoBody {
		return Source{}, req.Body
	}
	if req.GetBody != nil {
		return Source{getBody: req.GetBody}, inbound.Track(req.Body)
	}
	if req.ContentLength > maxBuffer {
		// Never replayed, so the retry layer needs no record of its
		// reading: the caller's body goes out as it is.
		return Source{tooLarge: true}, req.Body
	}
	r := &Recorder{body: req.Body, max: maxBuffer}
	return Source{rec: r}, r
}

// Recording reports whether the first attempt's body is a Recorder.
func (s Source) Recording() bool { return s.rec != nil }

// Next returns a fresh body for a re-sent attempt and a GetBody for the
// transport below. ok is false when the body cannot be replayed: it
// exceeded the cap, reading it failed, or GetBody failed.
func (s Source) Next() (body io.ReadCloser, getBody func() (io.ReadCloser, error), ok bool) {
	switch {
	case s.tooLarge:
		return nil, nil, false
	case s.getBody != nil:
		b, err := s.getBody()
		if err != nil {
			return nil, nil, false
		}
		return inbound.Track(b), s.getBody, true
	case s.rec != nil:
		data, ok := s.rec.snapshot()
		if !ok {
			return nil, nil, false
		}
		gb := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		return io.NopCloser(bytes.NewReader(data)), gb, true
	default:
		return http.NoBody, nil, true
	}
}

// Complete reports whether a replay needs no read-ahead: the request has no
// body, has GetBody, or its body was already read to the end by the
// attempts so far. A streaming body (a gRPC client stream, say) that is
// not complete should not be read ahead, as its sender may be waiting for
// the response.
func (s Source) Complete() bool {
	if s.tooLarge {
		return false
	}
	if s.rec == nil {
		return true
	}
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return s.rec.eof && !s.rec.overflow
}

// Release tells the Recorder that no further attempt will be made: the
// caller's body is closed as soon as the transport has closed it too.
func (s Source) Release() {
	if s.rec != nil {
		s.rec.release()
	}
}

// Recorder is the first attempt's body when the request has no GetBody. It
// passes the caller's body through and records it up to a cap.
//
// Two locks: readMu serialises reads of the caller's body (the transport's
// and a replay's read-ahead); mu guards the recorded state and is never
// held while the caller's body blocks, so Close and Complete never wait on
// a pending read.
type Recorder struct {
	readMu sync.Mutex
	body   io.ReadCloser
	max    int64

	mu       sync.Mutex
	buf      []byte // bytes read from body so far (until overflow)
	off      int64  // absolute offset of buf[0] in the body
	pos      int64  // the transport's absolute read position
	eof      bool   // body returned io.EOF
	err      error  // body returned an error other than EOF (an *inbound.Error)
	overflow bool   // body is larger than max: no replay
	closed   bool   // the transport closed the Recorder
	released bool   // the retry layer gave up its claim
	shut     bool   // body was closed
}

// errClosed is returned by Read after the transport closed the Recorder.
var errClosed = errors.New("replay: read after close")

var _ inbound.Tracker = (*Recorder)(nil)

// Read serves the transport: first bytes already read ahead for a replay,
// then fresh bytes from the caller's body, recorded on the way.
func (r *Recorder) Read(p []byte) (int, error) {
	if n, err, done := r.fromBuffer(p); done {
		return n, err
	}
	r.readMu.Lock()
	defer r.readMu.Unlock()
	// A read-ahead may have filled the buffer while we waited.
	if n, err, done := r.fromBuffer(p); done {
		return n, err
	}
	n, err := r.body.Read(p)
	r.mu.Lock()
	r.record(p[:n])
	r.pos += int64(n)
	r.trim()
	r.setErr(err)
	if r.err != nil {
		err = r.err // the caller's body failed: say so to the transport
	}
	r.mu.Unlock()
	return n, err
}

// InboundError returns the failure of reading the caller's body (by the
// transport or a read-ahead), or nil: the Recorder is an inbound.Tracker.
func (r *Recorder) InboundError() *inbound.Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, _ := r.err.(*inbound.Error)
	return e
}

// fromBuffer answers a Read without touching the caller's body when it
// can: done is false when fresh bytes must be read.
func (r *Recorder) fromBuffer(p []byte) (n int, err error, done bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return 0, errClosed, true
	case r.pos < r.off+int64(len(r.buf)):
		n = copy(p, r.buf[r.pos-r.off:])
		r.pos += int64(n)
		r.trim()
		return n, nil, true
	case r.eof:
		return 0, io.EOF, true
	case r.err != nil:
		return 0, r.err, true
	}
	return 0, nil, false
}

// Close marks the transport done with the body; the caller's body is closed
// once the retry layer released it too.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return r.maybeShut()
}

func (r *Recorder) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.released = true
	_ = r.maybeShut()
}

func (r *Recorder) maybeShut() error {
	if r.closed && r.released && !r.shut {
		r.shut = true
		return r.body.Close()
	}
	return nil
}

// snapshot reads the rest of the body (within the cap) and returns all of
// it, or false when it cannot be replayed.
func (r *Recorder) snapshot() ([]byte, bool) {
	r.readMu.Lock()
	defer r.readMu.Unlock()
	chunk := make([]byte, 4096)
	for {
		r.mu.Lock()
		switch {
		case r.off != 0 || r.overflow || r.err != nil || r.shut:
			r.mu.Unlock()
			return nil, false
		case r.eof:
			b := r.buf
			r.mu.Unlock()
			return b, true
		}
		r.mu.Unlock()
		n, err := r.body.Read(chunk)
		r.mu.Lock()
		r.record(chunk[:n])
		r.setErr(err)
		r.mu.Unlock()
	}
}

func (r *Recorder) record(b []byte) {
	if len(b) == 0 {
		return
	}
	if !r.overflow && int64(len(r.buf))+int64(len(b)) > r.max {
		r.overflow = true
	}
	// Bytes past pos are kept even after overflow, until the transport has
	// read them.
	r.buf = append(r.buf, b...)
}

// trim drops recorded bytes that can no longer serve a replay nor the
// transport.
func (r *Recorder) trim() {
	if r.overflow && r.pos >= r.off+int64(len(r.buf)) {
		r.off += int64(len(r.buf))
		r.buf = nil
	}
}

func (r *Recorder) setErr(err error) {
	switch {
	case err == nil:
	case err == io.EOF:
		r.eof = true
	case r.err == nil:
		r.err = inbound.Wrap(err)
	}
}
