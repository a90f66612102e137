package ambassador

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePlainHead(t *testing.T) {
	get := &http.Request{Method: http.MethodGet}
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"plain", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", true},
		{"no reason", "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", true},
		{"lower-case keys", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-a-b:  v \r\n\r\nhi", true},
		{"empty value", "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n", true},
		{"no content-length", "HTTP/1.1 200 OK\r\n\r\nuntil close", false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"two content-lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", false},
		{"signed content-length", "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc", false},
		{"repeated header", "HTTP/1.1 200 OK\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nContent-Length: 0\r\n\r\n", false},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
		{"1xx", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false},
		{"204", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", false},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", false},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", false},
		{"CR in value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", false},
		{"head not complete", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", false},
		{"pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, n, ok := parsePlainHead([]byte(tc.in), get)
			require.Equal(t, tc.ok, ok)
			if ok {
				assertSameAsNetHTTP(t, []byte(tc.in), resp, n, get)
			}
		})
	}
}

// assertSameAsNetHTTP checks that http.ReadResponse reads the same head
// from in, and that the body after the head has the same bytes.
func assertSameAsNetHTTP(t *testing.T, in []byte, resp *http.Response, n int, req *http.Request) {
	t.Helper()
	want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(in)), req)
	require.NoError(t, err, "net/http reads a head parsePlainHead accepted")
	assert.Equal(t, want.Status, resp.Status)
	assert.Equal(t, want.StatusCode, resp.StatusCode)
	assert.Equal(t, want.Proto, resp.Proto)
	assert.Equal(t, want.ProtoMajor, resp.ProtoMajor)
	assert.Equal(t, want.ProtoMinor, resp.ProtoMinor)
	assert.Equal(t, want.Header, resp.Header)
	assert.Equal(t, want.ContentLength, resp.ContentLength)
	assert.Equal(t, want.Close, resp.Close)
	assert.Empty(t, want.TransferEncoding)
	assert.Empty(t, want.Trailer)
	wantBody, wantErr := io.ReadAll(want.Body)
	rest := in[n:]
	if int64(len(rest)) >= resp.ContentLength {
		assert.NoError(t, wantErr)
		assert.Equal(t, string(wantBody), string(rest[:resp.ContentLength]))
	} else {
		assert.ErrorIs(t, wantErr, io.ErrUnexpectedEOF)
	}
}

// FuzzPlainHead: whatever head parsePlainHead accepts, net/http reads the
// same way.
func FuzzPlainHead(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		get := &http.Request{Method: http.MethodGet}
		resp, n, ok := parsePlainHead(in, get)
		if !ok {
			return
		}
		assertSameAsNetHTTP(t, in, resp, n, get)
	})
}

// A body of known length read through the direct path: the last bytes
// come with EOF and pool the connection; a connection that ends early is
// io.ErrUnexpectedEOF and is not pooled.
func TestH1DirectPlainHeadBodies(t *testing.T) {
	srv, conns := h1Server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/short":
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "abc")
			w.(http.Flusher).Flush()
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = c.Close()
			}
		default:
			_, _ = io.WriteString(w, "hello")
		}
	})
	tr := h1Transport(t)
	for range 3 {
		resp, body := get(t, tr, http.MethodGet, srv.URL+"/")
		assert.Equal(t, "hello", body)
		assert.EqualValues(t, 5, resp.ContentLength)
	}
	assert.Equal(t, int32(1), conns.Load())
	assert.Equal(t, 1, pooled(lastDirect))

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/short", nil)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Equal(t, "abc", string(b))
	_ = resp.Body.Close()
	assert.Equal(t, 0, pooled(lastDirect))
}
