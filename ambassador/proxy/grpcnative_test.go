package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// bytesCodec sends and receives *[]byte as the message itself: the tests'
// messages are arbitrary bytes, not protobuf, so an ambassador that decoded
// them would fail.
type bytesCodec struct{}

func (bytesCodec) Name() string { return "proto" }

func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (bytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// rawUpstreamSvc is a grpc upstream of four methods on raw bytes, with a
// record of what it saw.
type rawUpstreamSvc struct {
	calls     atomic.Int64
	mu        sync.Mutex
	md        metadata.MD // of the last call
	callTimes []time.Time // of /t.T/Flaky
	deadline  time.Duration
	hold      chan struct{} // /t.T/Hold sends its second message when closed
}

func (u *rawUpstreamSvc) handle(_ any, ss grpc.ServerStream) error {
	ctx := ss.Context()
	method, _ := grpc.MethodFromServerStream(ss)
	md, _ := metadata.FromIncomingContext(ctx)
	u.mu.Lock()
	u.md = md
	u.mu.Unlock()
	u.calls.Add(1)
	recv := func() ([]byte, error) {
		var b []byte
		err := ss.RecvMsg(&b)
		return b, err
	}
	send := func(b []byte) error { return ss.SendMsg(&b) }
	switch method {
	case "/t.T/Unary":
		b, err := recv()
		if err != nil {
			return err
		}
		_ = ss.SendHeader(metadata.Pairs("h-up", "header", "x-outbound-error", "forged"))
		ss.SetTrailer(metadata.Pairs("t-up-bin", string([]byte{0, 255}), "x-outbound-error", "forged"))
		return send(append([]byte("echo:"), b...))
	case "/t.T/ServerStream":
		b, err := recv()
		if err != nil {
			return err
		}
		for i := range 3 {
			if err := send(append([]byte{byte(i)}, b...)); err != nil {
				return err
			}
		}
		return nil
	case "/t.T/ClientStream":
		var all []byte
		for {
			b, err := recv()
			if errors.Is(err, io.EOF) {
				return send(all)
			}
			if err != nil {
				return err
			}
			all = append(all, b...)
		}
	case "/t.T/Bidi": // ping-pong: each message answered before the next is read
		for {
			b, err := recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := send(bytes.ToUpper(b)); err != nil {
				return err
			}
		}
	case "/t.T/Flaky":
		u.mu.Lock()
		u.callTimes = append(u.callTimes, time.Now())
		n := len(u.callTimes)
		u.mu.Unlock()
		if n == 1 {
			ss.SetTrailer(metadata.Pairs("grpc-retry-pushback-ms", "300"))
			return status.Error(codes.Unavailable, "first call fails")
		}
		if _, err := recv(); err != nil {
			return err
		}
		return send([]byte("ok"))
	case "/t.T/FlakyCollect": // the first call fails after one message; later ones echo them all
		u.mu.Lock()
		u.callTimes = append(u.callTimes, time.Now())
		n := len(u.callTimes)
		u.mu.Unlock()
		var all []byte
		for {
			b, err := recv()
			if errors.Is(err, io.EOF) {
				return send(all)
			}
			if err != nil {
				return err
			}
			if n == 1 {
				return status.Error(codes.Unavailable, "fails mid-stream")
			}
			all = append(all, b...)
		}
	case "/t.T/HeaderOnly":
		if _, err := recv(); err != nil {
			return err
		}
		return ss.SendHeader(metadata.Pairs("h-up", "only"))
	case "/t.T/Down":
		return status.Error(codes.Unavailable, "down")
	case "/t.T/Deadline":
		if dl, ok := ctx.Deadline(); ok {
			u.mu.Lock()
			u.deadline = time.Until(dl)
			u.mu.Unlock()
		}
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	case "/t.T/Hold":
		if _, err := recv(); err != nil {
			return err
		}
		if err := send([]byte("first")); err != nil {
			return err
		}
		select {
		case <-u.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
		return send([]byte("second"))
	}
	return status.Error(codes.Unimplemented, method)
}

// startRawUpstream serves u on loopback with grpc-go's own transport and,
// for requests that are not gRPC, answers "plain <proto>" over HTTP/1.1
// and h2c on the same port (net/http in front, grpc.Server.ServeHTTP for gRPC).
func startRawUpstream(t testing.TB, u *rawUpstreamSvc) string {
	t.Helper()
	gs := grpc.NewServer(grpc.UnknownServiceHandler(u.handle), grpc.ForceServerCodecV2(bytesCodec{}))
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	hs := &http.Server{Protocols: &protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		_, _ = fmt.Fprintf(w, "plain %s", r.Proto)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = hs.Close()
		gs.Stop()
		<-done
	})
	return ln.Addr().String()
}

// openHold opens a /t.T/Hold stream on cc (the raw upstream holds it open
// after its first answer), sends "x", half-closes and returns the stream
// with that first answer.
func openHold(ctx context.Context, t *testing.T, cc *grpc.ClientConn) (grpc.ClientStream, []byte) {
	t.Helper()
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/t.T/Hold")
	require.NoError(t, err)
	in, out := []byte("x"), []byte(nil)
	require.NoError(t, st.SendMsg(&in))
	require.NoError(t, st.CloseSend())
	require.NoError(t, st.RecvMsg(&out))
	return st, out
}

func rawClient(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("native-test-client"),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(bytesCodec{})))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

var bidiDesc = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// notProto is no valid protobuf encoding (field 0, wire type 7).
var notProto = []byte{0xff, 0x00, 0x07, 'x'}

func TestNativeGRPCPassThrough(t *testing.T) {
	u := &rawUpstreamSvc{}
	addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, u)}, "protocol: h2c", "")
	cc := rawClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	t.Run("unary with metadata and trailers", func(t *testing.T) {
		var header, trailer metadata.MD
		var out []byte
		in := notProto
		mctx := metadata.AppendToOutgoingContext(ctx, "x-in", "from-client", "x-in-bin", string([]byte{1, 2}))
		require.NoError(t, cc.Invoke(mctx, "/t.T/Unary", &in, &out, grpc.Header(&header), grpc.Trailer(&trailer)))
		assert.Equal(t, append([]byte("echo:"), notProto...), out, "bytes arrive unchanged both ways")
		assert.Equal(t, []string{"header"}, header.Get("h-up"))
		assert.Equal(t, []string{string([]byte{0, 255})}, trailer.Get("t-up-bin"))
		assert.Empty(t, header.Get("x-outbound-error"), "an upstream's own x-outbound-error is removed")
		assert.Empty(t, trailer.Get("x-outbound-error"), "an upstream's own x-outbound-error is removed")
		u.mu.Lock()
		md := u.md
		u.mu.Unlock()
		assert.Equal(t, []string{"from-client"}, md.Get("x-in"))
		assert.Equal(t, []string{string([]byte{1, 2})}, md.Get("x-in-bin"))
		// The ReverseProxy path forwards the caller's User-Agent; the
		// native path's own grpc client sends grpc-go's.
		assert.NotContains(t, strings.Join(md.Get("user-agent"), " "), "native-test-client", "the call took the native path")
	})
	t.Run("gzip-compressed", func(t *testing.T) {
		in, out := bytes.Repeat(notProto, 100), []byte(nil)
		require.NoError(t, cc.Invoke(ctx, "/t.T/Unary", &in, &out, grpc.UseCompressor(gzip.Name)))
		assert.Equal(t, append([]byte("echo:"), in...), out)
	})
	t.Run("headers without a message", func(t *testing.T) {
		var header metadata.MD
		s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/t.T/HeaderOnly")
		require.NoError(t, err)
		in := []byte("x")
		require.NoError(t, s.SendMsg(&in))
		require.NoError(t, s.CloseSend())
		var out []byte
		assert.ErrorIs(t, s.RecvMsg(&out), io.EOF)
		header, err = s.Header()
		require.NoError(t, err)
		assert.Equal(t, []string{"only"}, header.Get("h-up"))
	})
	t.Run("server streaming", func(t *testing.T) {
		s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/t.T/ServerStream")
		require.NoError(t, err)
		in := []byte("abc")
		require.NoError(t, s.SendMsg(&in))
		require.NoError(t, s.CloseSend())
		for i := range 3 {
			var out []byte
			require.NoError(t, s.RecvMsg(&out))
			assert.Equal(t, append([]byte{byte(i)}, in...), out)
		}
		var out []byte
		assert.ErrorIs(t, s.RecvMsg(&out), io.EOF)
	})
	t.Run("client streaming", func(t *testing.T) {
		s, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/t.T/ClientStream")
		require.NoError(t, err)
		var want []byte
		for i := range 20 {
			in := bytes.Repeat([]byte{byte(i)}, 1000+i)
			want = append(want, in...)
			require.NoError(t, s.SendMsg(&in))
		}
		require.NoError(t, s.CloseSend())
		var out []byte
		require.NoError(t, s.RecvMsg(&out))
		assert.Equal(t, want, out)
	})
	t.Run("bidi ping-pong", func(t *testing.T) {
		s, err := cc.NewStream(ctx, bidiDesc, "/t.T/Bidi")
		require.NoError(t, err)
		for _, m := range []string{"one", "two", "three"} {
			in := []byte(m)
			require.NoError(t, s.SendMsg(&in))
			var out []byte
			require.NoError(t, s.RecvMsg(&out), "the answer to %q comes before the next message is sent", m)
			assert.Equal(t, strings.ToUpper(m), string(out))
		}
		require.NoError(t, s.CloseSend())
		var out []byte
		assert.ErrorIs(t, s.RecvMsg(&out), io.EOF)
	})
}

// A unary-shaped call answered UNAVAILABLE with grpc-retry-pushback-ms is
// retried by the service's retry policy after the pushback, not after
// the 1ms backoff.
func TestNativeGRPCRetriesWithPushback(t *testing.T) {
	u := &rawUpstreamSvc{}
	addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, u)}, `protocol: h2c
retry: {base_delay: 1ms, max_delay: 2ms}`, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, out := []byte("x"), []byte(nil)
	require.NoError(t, rawClient(t, addr).Invoke(ctx, "/t.T/Flaky", &in, &out))
	assert.Equal(t, "ok", string(out))
	u.mu.Lock()
	defer u.mu.Unlock()
	require.Len(t, u.callTimes, 2, "one UNAVAILABLE, retried once")
	assert.GreaterOrEqual(t, u.callTimes[1].Sub(u.callTimes[0]), 300*time.Millisecond, "the retry waited for the pushback")
}

// The stack's local refusals carry the contract's status and reason.
func TestNativeGRPCRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in := []byte("x")
	call := func(cc *grpc.ClientConn, method string) (metadata.MD, error) {
		var header, trailer metadata.MD
		var out []byte
		err := cc.Invoke(ctx, method, &in, &out, grpc.Header(&header), grpc.Trailer(&trailer))
		return metadata.Join(header, trailer), err
	}
	t.Run("rate_limited", func(t *testing.T) {
		addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, &rawUpstreamSvc{})}, `protocol: h2c
ratelimit: {rps: 0.2, burst: 1, scope: global}`, "")
		cc := rawClient(t, addr)
		_, err := call(cc, "/t.T/Unary")
		require.NoError(t, err)
		md, err := call(cc, "/t.T/Unary")
		assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		assert.Equal(t, []string{proxy.ReasonRateLimited}, md.Get("x-outbound-error"))
		assert.NotEmpty(t, md.Get("grpc-retry-pushback-ms"), "the wait for a token is the pushback")
	})
	t.Run("every endpoint ejected", func(t *testing.T) {
		u := &rawUpstreamSvc{}
		addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, u)}, `protocol: h2c
breaker: {consecutive_failures: 1, open_timeout: 1m}`, "")
		cc := rawClient(t, addr)
		md, err := call(cc, "/t.T/Down")
		assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		assert.Equal(t, "down", status.Convert(err).Message(), "the upstream's own status passes through")
		assert.Empty(t, md.Get("x-outbound-error"), "an upstream's answer carries no reason")
		md, err = call(cc, "/t.T/Unary")
		assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
		assert.Equal(t, []string{proxy.ReasonNoEndpoints}, md.Get("x-outbound-error"), "DESIGN.md: every endpoint ejected is no_endpoints, as on the HTTP path")
		assert.Equal(t, int64(1), u.calls.Load(), "the open breaker kept the call from the upstream")
	})
}

// The caller's deadline reaches the upstream (as grpc-timeout) and ends the
// call DEADLINE_EXCEEDED.
func TestNativeGRPCDeadlinePropagates(t *testing.T) {
	u := &rawUpstreamSvc{}
	addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, u)}, "protocol: h2c", "")
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	in, out := []byte("x"), []byte(nil)
	err := rawClient(t, addr).Invoke(ctx, "/t.T/Deadline", &in, &out)
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	u.mu.Lock()
	defer u.mu.Unlock()
	assert.Greater(t, u.deadline, time.Duration(0), "the upstream got a deadline")
	assert.LessOrEqual(t, u.deadline, 400*time.Millisecond, "no later than the caller's (the service timeout is 15s)")
}

// gRPC, plain h2c and HTTP/1.1 share the listener of an h2c service.
func TestNativeGRPCSharesListener(t *testing.T) {
	addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, &rawUpstreamSvc{})}, "protocol: h2c", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, out := []byte("x"), []byte(nil)
	require.NoError(t, rawClient(t, addr).Invoke(ctx, "/t.T/Unary", &in, &out))

	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	h2c := &http.Transport{Protocols: &h2}
	t.Cleanup(h2c.CloseIdleConnections)
	for name, c := range map[string]*http.Client{"h2c": {Transport: h2c}, "http1": client(t)} {
		resp, err := c.Get("http://" + addr + "/page")
		require.NoError(t, err, name)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, name)
		assert.Equal(t, "plain HTTP/2.0", string(body), "%s: reaches the upstream over the service's h2c", name)
	}
}

// A stream open at shutdown keeps flowing during the drain and ends
// normally; Run returns once it has.
func TestNativeGRPCDrainWithOpenStream(t *testing.T) {
	u := &rawUpstreamSvc{hold: make(chan struct{})}
	cfg, err := proxy.ParseConfig([]byte(fmt.Sprintf(`admin: {address: 127.0.0.1:0}
limits: {drain_timeout: 10s}
listeners: [{address: 127.0.0.1:0, service: up}]
services:
  up: {discovery: {static: [%s]}, protocol: h2c}
`, startRawUpstream(t, u))), t.TempDir())
	require.NoError(t, err)
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	<-s.Ready()
	defer func() {
		stop()
		<-done
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, out := openHold(ctx, t, rawClient(t, s.Addrs()[0].String()))
	assert.Equal(t, "first", string(out))

	stop() // shutdown begins with the stream open
	select {
	case err := <-done:
		t.Fatalf("Run returned with a stream open: %v", err)
	default:
	}
	close(u.hold)
	require.NoError(t, st.RecvMsg(&out), "the stream keeps flowing during the drain")
	assert.Equal(t, "second", string(out))
	assert.ErrorIs(t, st.RecvMsg(&out), io.EOF)
	select {
	case err := <-done:
		assert.NoError(t, err)
		done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the last stream ended")
	}
}

// A reload that changes the service swaps in a new connection for new
// calls, while a stream open on the old one runs to its end; the old
// connection closes after it (goleak, in TestMain, sees any that stays).
func TestNativeGRPCReload(t *testing.T) {
	u := &rawUpstreamSvc{hold: make(chan struct{})}
	up := startRawUpstream(t, u)
	conf := func(extra string) *proxy.Config {
		cfg, err := proxy.ParseConfig([]byte(fmt.Sprintf(`admin: {address: 127.0.0.1:0}
listeners: [{address: 127.0.0.1:0, service: up}]
services:
  up: {discovery: {static: [%s]}, protocol: h2c%s}
`, up, extra)), t.TempDir())
		require.NoError(t, err)
		return cfg
	}
	s, err := proxy.NewServer(conf(""), proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	cc := rawClient(t, strings.TrimPrefix(serve(t, s)[0], "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	st, out := openHold(ctx, t, cc)
	in := []byte("x")

	require.NoError(t, s.Reload(conf(", retry: {max_attempts: 2}")))
	require.NoError(t, cc.Invoke(ctx, "/t.T/Unary", &in, &out), "a call after the reload")
	assert.Equal(t, "echo:x", string(out))
	close(u.hold)
	require.NoError(t, st.RecvMsg(&out), "the stream opened before the reload still flows")
	assert.Equal(t, "second", string(out))
	assert.ErrorIs(t, st.RecvMsg(&out), io.EOF)
}

// A client stream whose first attempt fails before any answer is retried
// with every message the caller sent, also those sent after the failure.
func TestNativeGRPCRetriedClientStreamGetsEveryMessage(t *testing.T) {
	u := &rawUpstreamSvc{}
	addr, _ := oneServiceAmbassador(t, []string{startRawUpstream(t, u)}, `protocol: h2c
retry: {base_delay: 1ms, max_delay: 2ms}`, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := rawClient(t, addr).NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/t.T/FlakyCollect")
	require.NoError(t, err)
	var want []byte
	for i := range 10 {
		in := []byte{byte('a' + i)}
		want = append(want, in...)
		require.NoError(t, s.SendMsg(&in))
	}
	require.NoError(t, s.CloseSend())
	var out []byte
	require.NoError(t, s.RecvMsg(&out))
	assert.Equal(t, string(want), string(out))
	u.mu.Lock()
	defer u.mu.Unlock()
	assert.Len(t, u.callTimes, 2, "one failed attempt, one retry")
}
