// Package inboundtest has what the layers' tests of inbound failures share:
// a caller body that breaks half-way, and a loopback upstream reached over
// HTTP/1.1 and over h2c (the two transports wrap a body read error
// differently). It is for tests only.
package inboundtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// BrokenBody returns a body that yields prefix and then fails with err, as
// a client's malformed chunked body or aborted upload does.
func BrokenBody(prefix string, err error) io.ReadCloser {
	return io.NopCloser(io.MultiReader(strings.NewReader(prefix), errReader{err}))
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// Upstream is a loopback server that reads each request body to its end
// and answers Status (200 until set), counting what it saw.
type Upstream struct {
	Proto string // "http1" or "h2c"
	URL   string // http://127.0.0.1:port
	Host  string // 127.0.0.1:port
	// Transport reaches the upstream with Proto; its idle connections are
	// closed when the test ends.
	Transport *http.Transport

	Status   atomic.Int32 // the status of the answers; 0 means 200
	Arrived  atomic.Int32 // requests whose headers arrived
	Complete atomic.Int32 // requests whose body was read to its end
}

// Upstreams starts one Upstream per protocol, HTTP/1.1 and h2c.
func Upstreams(t *testing.T) []*Upstream {
	t.Helper()
	return []*Upstream{start(t, "http1"), start(t, "h2c")}
}

func start(t *testing.T, proto string) *Upstream {
	u := &Upstream{Proto: proto}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	tr := &http.Transport{}
	if proto == "h2c" {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		srv.Config.Protocols = &p
		tr.Protocols = &p
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(tr.CloseIdleConnections)
	u.URL, u.Host, u.Transport = srv.URL, strings.TrimPrefix(srv.URL, "http://"), tr
	return u
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.Arrived.Add(1)
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return
	}
	u.Complete.Add(1)
	if s := u.Status.Load(); s != 0 {
		w.WriteHeader(int(s))
	}
	_, _ = io.WriteString(w, "ok")
}

// SendBroken sends n POST requests to url through rt, each with a body
// that breaks after a few bytes (BrokenBody with io.ErrUnexpectedEOF), and
// fails the test unless every one of them returns an error and no
// response.
func SendBroken(t *testing.T, rt http.RoundTripper, url string, n int) {
	t.Helper()
	for i := range n {
		req, err := http.NewRequest(http.MethodPost, url, BrokenBody("part", io.ErrUnexpectedEOF))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := rt.RoundTrip(req)
		if err == nil || resp != nil {
			t.Fatalf("request %d: got response %v, error %v; want an error and no response", i, resp, err)
		}
	}
}
