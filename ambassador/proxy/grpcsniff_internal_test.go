package proxy

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// clientFrames is what an HTTP/2 client sends after the preface: its
// SETTINGS, then HEADERS of content-type ct (in a HEADERS and a
// CONTINUATION frame), then the ACK of the server's SETTINGS when ack, and
// a DATA frame.
func clientFrames(t testing.TB, ct string, ack bool) (all, withoutAck []byte) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "x"}, {Name: ":path", Value: "/p.S/M"},
		{Name: "content-type", Value: ct},
	} {
		require.NoError(t, enc.WriteField(f))
	}
	block := hb.Bytes()
	var head, tail bytes.Buffer
	fr := http2.NewFramer(&head, nil)
	require.NoError(t, fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}))
	require.NoError(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:3]}))
	require.NoError(t, fr.WriteContinuation(1, true, block[3:]))
	fr = http2.NewFramer(&tail, nil)
	require.NoError(t, fr.WriteData(1, true, []byte("hello")))
	withoutAck = append(append([]byte(http2.ClientPreface), head.Bytes()...), tail.Bytes()...)
	if !ack {
		return withoutAck, withoutAck
	}
	var a bytes.Buffer
	require.NoError(t, http2.NewFramer(&a, nil).WriteSettingsAck())
	all = append(append(append([]byte(http2.ClientPreface), head.Bytes()...), a.Bytes()...), tail.Bytes()...)
	return all, withoutAck
}

type fakeConn struct {
	io.Reader
	out bytes.Buffer
}

func (c *fakeConn) Write(p []byte) (int, error) { return c.out.Write(p) }

func TestSniffDecisions(t *testing.T) {
	var settings bytes.Buffer
	require.NoError(t, http2.NewFramer(&settings, nil).WriteSettings())

	t.Run("gRPC", func(t *testing.T) {
		in, _ := clientFrames(t, "application/grpc+proto", false)
		c := &fakeConn{Reader: bytes.NewReader(in)}
		d, replay, err := sniff(c, true, 1<<20, 1<<16)
		require.NoError(t, err)
		assert.Equal(t, toGRPC, d)
		assert.Equal(t, in, replay, "every byte read, the DATA read ahead included")
		assert.Equal(t, settings.Bytes(), c.out.Bytes(), "one empty SETTINGS written")
	})
	t.Run("HTTP drops the ACK", func(t *testing.T) {
		in, want := clientFrames(t, "text/plain", true)
		d, replay, err := sniff(&fakeConn{Reader: bytes.NewReader(in)}, true, 1<<20, 1<<16)
		require.NoError(t, err)
		assert.Equal(t, toHTTP, d)
		assert.Equal(t, want, replay, "everything but the ACK of the sniffer's SETTINGS")
	})
	t.Run("grpc-web is not gRPC", func(t *testing.T) {
		in, want := clientFrames(t, "application/grpc-web", true)
		d, replay, err := sniff(&fakeConn{Reader: bytes.NewReader(in)}, true, 1<<20, 1<<16)
		require.NoError(t, err)
		assert.Equal(t, toHTTP, d)
		assert.Equal(t, want, replay)
	})
	t.Run("HTTP without the ACK yet", func(t *testing.T) {
		in, _ := clientFrames(t, "text/plain", false)
		_, _, err := sniff(&fakeConn{Reader: bytes.NewReader(in)}, true, 1<<20, 1<<16)
		assert.ErrorIs(t, err, io.EOF, "reads on for the ACK; the connection ended first")
	})
	t.Run("HTTP/1.1", func(t *testing.T) {
		in := []byte("PUT / HTTP/1.1\r\nHost: x\r\n\r\n")
		c := &fakeConn{Reader: bytes.NewReader(in)}
		d, replay, err := sniff(c, true, 1<<20, 1<<16)
		require.NoError(t, err)
		assert.Equal(t, toHTTP, d)
		assert.Equal(t, in, replay)
		assert.Zero(t, c.out.Len(), "nothing written")
	})
	t.Run("not native", func(t *testing.T) {
		in, _ := clientFrames(t, "application/grpc", false)
		c := &fakeConn{Reader: bytes.NewReader(in)}
		d, replay, err := sniff(c, false, 1<<20, 1<<16)
		require.NoError(t, err)
		assert.Equal(t, toHTTP, d)
		assert.Equal(t, in, replay)
		assert.Zero(t, c.out.Len(), "nothing written")
	})
	t.Run("byte cap", func(t *testing.T) {
		in, _ := clientFrames(t, "application/grpc", false)
		_, _, err := sniff(&fakeConn{Reader: bytes.NewReader(in)}, true, 40, 1<<16)
		assert.ErrorIs(t, err, errSniffLimit)
	})
}

// FuzzSniff: whatever follows the preface, the sniffer decides or fails,
// never panics or reads on past the end; what it replays is what it read,
// less at most one 9-byte SETTINGS ACK.
func FuzzSniff(f *testing.F) {
	for _, ct := range []string{"application/grpc", "text/plain"} {
		for _, ack := range []bool{false, true} {
			in, _ := clientFrames(f, ct, ack)
			f.Add(in[len(http2.ClientPreface):])
		}
	}
	f.Fuzz(func(t *testing.T, after []byte) {
		in := append([]byte(http2.ClientPreface), after...)
		d, replay, err := sniff(&fakeConn{Reader: bytes.NewReader(in)}, true, 1<<16, 1<<16)
		if err != nil {
			return
		}
		if d != toGRPC && d != toHTTP {
			t.Fatalf("decision %v", d)
		}
		if n := len(in) - len(replay); n != 0 && n != 9 {
			t.Fatalf("replay is %d bytes shorter than the input", n)
		}
		if !bytes.HasPrefix(replay, []byte(http2.ClientPreface)) {
			t.Fatal("replay lost the preface")
		}
	})
}
