package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDropH2CUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      http.Header
		upgrade []string // nil: no Upgrade header left
		conn    []string
	}{
		{"h2c", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AA"}}, nil, nil},
		{"case", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"H2c"}}, nil, nil},
		{"version", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c/1"}}, nil, nil},
		{"list", http.Header{"Connection": {"Upgrade"}, "Upgrade": {" websocket ,h2c"}}, []string{"websocket"}, []string{"Upgrade"}},
		{"lines", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c", "websocket"}}, []string{"websocket"}, []string{"Upgrade"}},
		{"websocket", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, []string{"websocket"}, []string{"Upgrade"}},
		{"h2c-lookalike", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2cx"}}, []string{"h2cx"}, []string{"Upgrade"}},
		{"settings-only", http.Header{"Http2-Settings": {"AA"}}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dropH2CUpgrade(tc.in)
			assert.Equal(t, tc.upgrade, tc.in["Upgrade"])
			assert.Equal(t, tc.conn, tc.in["Connection"])
			assert.NotContains(t, tc.in, "Http2-Settings")
		})
	}
}

func TestCloseAfterChunkedRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		major int
		te    []string
		want  []string
	}{
		{"chunked-h1", 1, []string{"chunked"}, []string{"close"}},
		{"plain-h1", 1, nil, nil},
		{"h2", 2, []string{"chunked"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.ProtoMajor, r.TransferEncoding = tc.major, tc.te
			w := httptest.NewRecorder()
			closeAfterChunkedRequest(w, r)
			assert.Equal(t, tc.want, w.Header()["Connection"])
		})
	}
}

func TestSwitchHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"named and standard hop headers go",
			http.Header{"Connection": {"upgrade, X-A", "X-B"}, "Upgrade": {"websocket"}, "X-A": {"1"}, "X-B": {"2"},
				"Keep-Alive": {"timeout=5"}, "Transfer-Encoding": {"chunked"}, "X-Kept": {"yes"}},
			http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "X-Kept": {"yes"}}},
		{"no upgrade token: no Connection, so ReverseProxy refuses the switch",
			http.Header{"Connection": {"keep-alive"}, "Upgrade": {"websocket"}},
			http.Header{"Upgrade": {"websocket"}}},
		{"no Connection at all",
			http.Header{"Upgrade": {"websocket"}},
			http.Header{"Upgrade": {"websocket"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			switchHeaders(tc.in)
			assert.Equal(t, tc.want, tc.in)
		})
	}
}

func TestCheckSwitch(t *testing.T) {
	for _, tc := range []struct {
		name, offered, upstream string
		ok                      bool
	}{
		{"same", "websocket", "websocket", true},
		{"case", "websocket", "WebSocket", true},
		{"another protocol", "websocket", "h2c", false},
		{"none offered", "", "h2c", false},
		{"none switched to", "websocket", "", false},
		{"not ASCII, folding to the offer", "websocket", "web\u017focket", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{Header: http.Header{}}
			if tc.offered != "" {
				req.Header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {tc.offered}}
			}
			resp := &http.Response{StatusCode: http.StatusSwitchingProtocols, Request: req,
				Header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {tc.upstream}}, Body: rwc{}}
			if err := checkSwitch(resp); tc.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

// rwc is a response body with a connection behind it, as a 101's is.
type rwc struct{ io.Reader }

func (rwc) Write(p []byte) (int, error) { return len(p), nil }
func (rwc) Close() error                { return nil }
