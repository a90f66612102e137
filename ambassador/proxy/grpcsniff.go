package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The sniffer: which server an accepted client connection goes to.
//
// Every HTTP listener speaks HTTP/1.1 and h2c on one port. Before the first
// request of a connection, sniff reads its start: anything but the HTTP/2
// client preface is HTTP/1.x for net/http's server. After the preface it
// writes one empty SETTINGS frame itself (gRPC clients wait for the
// server's SETTINGS before they send a request), then reads whole frames
// with x/net/http2's Framer, recording their bytes, until the first HEADERS
// (CONTINUATION merged): content-type application/grpc or
// application/grpc+… sends the connection to grpc-go's server, anything
// else to net/http's. The chosen server reads the recorded bytes again from
// the start (a fresh HPACK decoder here is safe for that reason).
//
// The client acknowledges the sniffer's SETTINGS. grpc-go's server ignores
// an acknowledgement it did not ask for; net/http's closes the connection,
// so on the HTTP path the sniffer reads on until it has seen that ACK and
// leaves exactly that frame out of the replay (a Go client sends its first
// HEADERS before it reads the server's SETTINGS).

// sniffDecision is where a sniffed connection goes.
type sniffDecision int

const (
	toHTTP sniffDecision = iota // net/http's server
	toGRPC                      // grpc-go's server
)

func (d sniffDecision) String() string {
	if d == toGRPC {
		return "grpc"
	}
	return "http"
}

// errSniffLimit: the client sent more than the sniffer buffers before a
// decision.
var errSniffLimit = errors.New("ambassador: too many bytes before the first request")

// maxSniffFrame is the largest frame the sniffer reads: the SETTINGS it
// sends announce the default SETTINGS_MAX_FRAME_SIZE.
const maxSniffFrame = 16 << 10

// sniff reads the start of the connection rw and decides where it goes;
// replay is what the chosen server must read first. With native false a
// connection never goes to grpc-go, and nothing is written. maxBytes caps
// what is buffered, maxHeader the decoded size of the first header block.
// The caller bounds the time (rw's deadlines). An error means the
// connection is to be closed.
func sniff(rw io.ReadWriter, native bool, maxBytes int, maxHeader uint32) (d sniffDecision, replay []byte, err error) {
	rec := &recorder{r: bufio.NewReaderSize(rw, 4096), max: maxBytes}
	ok, err := readPreface(rec)
	if err != nil || !ok || !native {
		return toHTTP, rec.replay(), err
	}
	fr := http2.NewFramer(rw, rec)
	fr.SetMaxReadFrameSize(maxSniffFrame)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = maxHeader
	if err := fr.WriteSettings(); err != nil {
		return toHTTP, nil, fmt.Errorf("ambassador: sniff: write settings: %w", err)
	}
	headers, acked := false, false
	for {
		start := len(rec.buf)
		f, err := fr.ReadFrame()
		var se http2.StreamError
		switch {
		case errors.As(err, &se):
			// A malformed frame of a stream (the first header block, say):
			// net/http's server answers it when it reads the same bytes.
			headers = true
		case err != nil:
			return toHTTP, nil, fmt.Errorf("ambassador: sniff: %w", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() && !acked {
				acked = true
				rec.buf = rec.buf[:start] // the ACK of our SETTINGS: never replayed
			}
		case *http2.MetaHeadersFrame:
			if !headers {
				headers = true
				if grpcContentType(f) {
					return toGRPC, rec.replay(), nil
				}
			}
		}
		if headers && acked {
			return toHTTP, rec.replay(), nil
		}
	}
}

// readPreface reads the HTTP/2 client preface, or as much of it as matches:
// false at the first byte that differs.
func readPreface(rec *recorder) (bool, error) {
	for i := 0; i < len(http2.ClientPreface); i++ {
		b, err := rec.r.ReadByte()
		if err != nil {
			return false, fmt.Errorf("ambassador: sniff: %w", err)
		}
		rec.buf = append(rec.buf, b)
		if b != http2.ClientPreface[i] {
			return false, nil
		}
	}
	return true, nil
}

// grpcContentType reports whether a header block is a gRPC request's, as
// grpc-go's server decides it: content-type application/grpc, or
// application/grpc followed by + or ; (not application/grpc-web).
func grpcContentType(f *http2.MetaHeadersFrame) bool {
	for _, hf := range f.RegularFields() {
		if hf.Name != "content-type" {
			continue
		}
		v, ok := strings.CutPrefix(hf.Value, "application/grpc")
		return ok && (v == "" || v[0] == '+' || v[0] == ';')
	}
	return false
}

// recorder reads through a buffered reader and keeps every byte it hands
// out, up to max.
type recorder struct {
	r   *bufio.Reader
	buf []byte
	max int
}

func (r *recorder) Read(p []byte) (int, error) {
	if len(r.buf) >= r.max {
		return 0, errSniffLimit
	}
	if len(p) > r.max-len(r.buf) {
		p = p[:r.max-len(r.buf)]
	}
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// replay is the bytes the chosen server reads first: those recorded, then
// those read ahead into the buffer.
func (r *recorder) replay() []byte {
	if n := r.r.Buffered(); n > 0 {
		b, _ := r.r.Peek(n)
		r.buf = append(r.buf, b...)
	}
	return r.buf
}

// sniffedConn is a client connection whose first bytes were read by the
// sniffer: Read hands them out again before reading the connection.
type sniffedConn struct {
	net.Conn
	replay []byte
}

func (c *sniffedConn) Read(p []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(p, c.replay)
		c.replay = c.replay[n:]
		if len(c.replay) == 0 {
			c.replay = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection (see limitedConn.CloseWrite).
func (c *sniffedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
