package retry_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/retry"
)

// refusingH2 is a minimal HTTP/2 (h2c, prior knowledge) server that answers
// the first stream with RST_STREAM(REFUSED_STREAM) — the server never
// processed it — and every later stream with 200. It records the request
// body of every stream. testkit's raw upstream closes the server's side of
// every connection when the test ends rather than wait for the client to:
// a connection the client does not see as idle yet (a stream still being
// forgotten) survives CloseIdleConnections.
type refusingH2 struct {
	up     *testkit.RawUpstream
	mu     sync.Mutex
	bodies []string
}

func startRefusingH2(t *testing.T) *refusingH2 {
	s := &refusingH2{}
	s.up = testkit.NewRawUpstream(t, func(_ *testkit.RawUpstream, c net.Conn, br *bufio.Reader) {
		s.serve(c, br)
	})
	return s
}

func (s *refusingH2) serve(conn net.Conn, br *bufio.Reader) {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(br, preface); err != nil {
		return
	}
	fr := http2.NewFramer(conn, br)
	if err := fr.WriteSettings(); err != nil {
		return
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	bodies := map[uint32]*bytes.Buffer{}
	respond := func(id uint32) error {
		s.mu.Lock()
		s.bodies = append(s.bodies, bodies[id].String())
		first := len(s.bodies) == 1
		s.mu.Unlock()
		if first {
			return fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		}
		hbuf.Reset()
		_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true, EndStream: true})
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return
				}
			}
		case *http2.HeadersFrame:
			bodies[f.StreamID] = &bytes.Buffer{}
			if f.StreamEnded() {
				if respond(f.StreamID) != nil {
					return
				}
			}
		case *http2.DataFrame:
			if b := bodies[f.StreamID]; b != nil {
				b.Write(f.Data())
			}
			if f.StreamEnded() {
				if respond(f.StreamID) != nil {
					return
				}
			}
		}
	}
}

func (s *refusingH2) Bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// TestRefusedStreamResendsPOST: a POST whose HTTP/2 stream was refused was
// never processed, so it is sent again — with the same body, replayed from
// the buffer since the request has no GetBody (net/http cannot replay it
// itself and reports the refusal only as text).
func TestRefusedStreamResendsPOST(t *testing.T) {
	srv := startRefusingH2(t)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()

	p, _, m := newPolicy(t, retry.Config{})
	client := &http.Client{Transport: p.RoundTripper(tr)}
	resp, err := client.Post("http://"+srv.up.Addr()+"/orders", "text/plain", onlyReader{strings.NewReader("order-42")})
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 2, resp.ProtoMajor)
	assert.Equal(t, []string{"order-42", "order-42"}, srv.Bodies())
	assert.Equal(t, map[string]int64{"retried": 1, "success": 1}, m.outcomes(t))
}
