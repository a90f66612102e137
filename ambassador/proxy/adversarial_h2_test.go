package proxy_test

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn is a test's HTTP/2 client on a raw connection: it writes exact
// frames (prior knowledge, no TLS) and reads back what the server answers
// on each stream. Its reads are bounded by rawDial's deadline.
type h2Conn struct {
	t      *testing.T
	c      net.Conn
	fr     *http2.Framer
	enc    *hpack.Encoder
	encBuf bytes.Buffer
	next   uint32 // the next client stream id
}

func dialH2C(t *testing.T, addr string) *h2Conn {
	t.Helper()
	c, br := rawDial(t, addr)
	rawSend(t, c, http2.ClientPreface)
	h := &h2Conn{t: t, c: c, fr: http2.NewFramer(c, br), next: 1}
	h.enc = hpack.NewEncoder(&h.encBuf)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	require.NoError(t, h.fr.WriteSettings())
	return h
}

// h2Answer is how the server ended one stream: a response status, or a
// RST_STREAM or GOAWAY with its code.
type h2Answer struct {
	status int
	rst    *http2.ErrCode
	goaway *http2.ErrCode
}

// request sends one GET with the given extra header fields (written to the
// wire exactly as given, lower case) on a new stream and ending it, and
// returns how the server answered that stream.
func (h *h2Conn) request(fields ...hpack.HeaderField) h2Answer {
	h.t.Helper()
	id := h.next
	h.next += 2
	h.encBuf.Reset()
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "GET"},
		{Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "example.test"},
		{Name: ":path", Value: "/"},
	}, fields...) {
		require.NoError(h.t, h.enc.WriteField(f))
	}
	require.NoError(h.t, h.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: h.encBuf.Bytes(), EndStream: true, EndHeaders: true,
	}))
	return h.answer(id)
}

func (h *h2Conn) answer(id uint32) h2Answer {
	h.t.Helper()
	for {
		f, err := h.fr.ReadFrame()
		require.NoError(h.t, err, "reading the answer to stream %d", id)
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				require.NoError(h.t, h.fr.WriteSettingsAck())
			}
		case *http2.GoAwayFrame:
			return h2Answer{goaway: &f.ErrCode}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return h2Answer{rst: &f.ErrCode}
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				st, err := strconv.Atoi(f.PseudoValue("status"))
				require.NoError(h.t, err, "stream %d: :status", id)
				return h2Answer{status: st}
			}
		}
	}
}

// TestH2CMalformedRequestsNeverReachUpstream sends HTTP/2 requests that
// RFC 9113 §8.2.2 calls malformed (a connection-specific header field, TE
// other than "trailers") to an h2c listener. They must be refused without a
// request upstream. net/http's HTTP/2 server refuses them itself, before any
// handler runs, with a 400 (it has no way to reset the stream with
// PROTOCOL_ERROR instead, which is what h2spec's 8.1.2.2 cases expect); the
// control case, TE: trailers, is a well-formed request and is proxied.
func TestH2CMalformedRequestsNeverReachUpstream(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(up.Close)
	addr, _ := oneServiceAmbassador(t, []string{up.Listener.Addr().String()}, "", "")

	malformed := []struct {
		name  string
		field hpack.HeaderField
	}{
		{"connection", hpack.HeaderField{Name: "connection", Value: "keep-alive"}},
		{"keep-alive", hpack.HeaderField{Name: "keep-alive", Value: "timeout=5"}},
		{"proxy-connection", hpack.HeaderField{Name: "proxy-connection", Value: "keep-alive"}},
		{"transfer-encoding", hpack.HeaderField{Name: "transfer-encoding", Value: "chunked"}},
		{"upgrade", hpack.HeaderField{Name: "upgrade", Value: "websocket"}},
		{"te gzip", hpack.HeaderField{Name: "te", Value: "gzip"}},
		{"te trailers and gzip", hpack.HeaderField{Name: "te", Value: "trailers, gzip"}},
	}
	h := dialH2C(t, addr)
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			a := h.request(tc.field)
			refused := a.status == http.StatusBadRequest ||
				(a.rst != nil && *a.rst == http2.ErrCodeProtocol) ||
				(a.goaway != nil && *a.goaway == http2.ErrCodeProtocol)
			assert.True(t, refused, "%s: %s: want 400 or PROTOCOL_ERROR, got %+v", tc.name, tc.field.Value, a)
			assert.Equal(t, before, hits.Load(), "the malformed request reached the upstream")
		})
	}

	t.Run("te trailers is proxied", func(t *testing.T) {
		before := hits.Load()
		a := h.request(hpack.HeaderField{Name: "te", Value: "trailers"})
		assert.Equal(t, http.StatusOK, a.status, "%+v", a)
		assert.Equal(t, before+1, hits.Load())
	})
}
