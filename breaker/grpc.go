package breaker

import (
	"context"
	"io"
	"strings"
	"sync/atomic"

	"github.com/outbound-go/outbound/internal/classify"
	"github.com/outbound-go/outbound/internal/refusal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// targetKey returns the endpoint part of a gRPC target: "host:port" for
// "dns:///host:port", "dns://8.8.8.8/host:port" and "host:port" alike. It
// slices, never allocates.
func targetKey(target string) string {
	i := strings.Index(target, "://")
	if i < 0 {
		return target
	}
	rest := target[i+3:]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		return rest[j+1:]
	}
	return rest
}

// targetMemo is a gRPC target and its key (targetKey).
type targetMemo struct{ target, key string }

// keyOfTarget is targetKey(target), taken from the breaker's memo when
// target is the one it holds: a run of calls through one ClientConn skips
// the scan (its Target is the same string every time, so the comparison
// is a length and a pointer). The memo is set once, by the first call, and
// never replaced, as the last-entry shortcut is: a breaker shared by the
// ClientConns of several targets parses the others' each time, as before,
// and never allocates for them.
func (b *Breaker) keyOfTarget(target string) string {
	if m := b.lastTarget.Load(); m != nil {
		if m.target == target {
			return m.key
		}
		return targetKey(target)
	}
	k := targetKey(target)
	b.lastTarget.CompareAndSwap(nil, &targetMemo{target: target, key: k})
	return k
}

func (b *Breaker) grpcKey(cc *grpc.ClientConn, method string) mkey {
	k := mkey{}
	if cc != nil {
		k.a = b.keyOfTarget(cc.Target())
	}
	if b.opts.grpcMethodKey {
		k.b = method
	}
	return k
}

// grpcOutcome classifies the error of a finished call.
func (b *Breaker) grpcOutcome(ctx context.Context, err error) Outcome {
	if err == nil {
		return Success
	}
	if refusal.Is(err) {
		return Ignore
	}
	code := status.Code(err)
	if code == codes.DeadlineExceeded || code == codes.Canceled {
		if classify.OwnDeadlinePassed(ctx) {
			// A layer above cut the attempt with a timeout of its own
			// (retry's per-try timeout, the ambassador's service
			// timeout): the endpoint was too slow, the caller is still
			// waiting. It is a deadline the endpoint missed.
			code = codes.DeadlineExceeded
		} else if callerDone(ctx) {
			return Ignore // the caller's own deadline or cancellation
		}
	}
	if code < 64 && b.grpcFailures&(1<<code) != 0 {
		return Failure
	}
	return Success
}

// UnaryClientInterceptor returns an interceptor that puts each call through
// the breaker of its target (the endpoint part of cc.Target(); plus the
// method with WithGRPCMethodKey). A refused call is not sent and fails with
// a codes.Unavailable status error that also unwraps to an *OpenError and
// ErrOpen.
func (b *Breaker) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		e := b.acquire(b.grpcKey(cc, method))
		if e == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		defer b.release(e)
		var (
			err  error
			sent bool
		)
		_, _ = e.cb.Execute(func() (struct{}, error) {
			sent = true
			err = invoker(ctx, method, req, reply, cc, opts...)
			return struct{}{}, outcomeErr(b.grpcOutcome(ctx, err))
		})
		if !sent {
			r := b.reject(e)
			b.flush()
			return r.grpcErr
		}
		b.flush()
		return err
	}
}

// StreamClientInterceptor returns an interceptor that puts each stream
// through the breaker of its target, like UnaryClientInterceptor. A stream
// counts as one request: a failure if NewStream fails or the stream ends
// with a failure code, a success if it ends cleanly (io.EOF, or the reply of
// a client-streaming call). Until the stream ends, a small goroutine holds
// its place in the breaker; it ends when the stream's status is read or
// the caller's context is done.
func (b *Breaker) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		e := b.acquire(b.grpcKey(cc, method))
		if e == nil {
			return streamer(ctx, desc, cc, method, opts...)
		}
		c := newStreamCall(b, e, ctx)
		go c.run()
		if !<-c.admit {
			return nil, b.reject(e).grpcErr
		}
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			c.finish(b.grpcOutcome(ctx, err))
			return nil, err
		}
		return &clientStream{ClientStream: cs, c: c, serverStreams: desc.ServerStreams}, nil
	}
}

// TrackStream puts cs, a stream already opened to endpoint key, through
// key's breaker as StreamClientInterceptor puts a stream through its
// target's breaker: the stream returned counts as one request when it ends
// (or ignored when ctx, the stream's context, is done first). It is for
// callers that learn the endpoint only once grpc's balancer has picked it
// (the ambassador's native gRPC path, where the breaker is discovery's
// Health, so the balancer skips ejected endpoints and a service whose
// every endpoint is ejected is refused by discovery). When the breaker
// refuses, only the refusal is counted and the error is the interceptors'
// (codes.Unavailable, unwrapping to ErrOpen); the caller then abandons cs.
// serverStreams is the stream's StreamDesc.ServerStreams.
func (b *Breaker) TrackStream(ctx context.Context, key string, cs grpc.ClientStream, serverStreams bool) (grpc.ClientStream, error) {
	e := b.acquire(mkey{a: key})
	if e == nil {
		return cs, nil
	}
	c := newStreamCall(b, e, ctx)
	go c.run()
	if !<-c.admit {
		return nil, b.reject(e).grpcErr
	}
	return &clientStream{ClientStream: cs, c: c, serverStreams: serverStreams}, nil
}

// streamCall is one stream's passage through gobreaker. gobreaker's
// CircuitBreaker counts a request when the function given to Execute
// returns, so run holds Execute open on its own goroutine until the stream
// reports its outcome.
type streamCall struct {
	b        *Breaker
	e        *entry
	ctx      context.Context
	admit    chan bool
	result   chan Outcome
	recorded chan struct{} // closed once gobreaker counted the stream
	done     atomic.Bool
}

func newStreamCall(b *Breaker, e *entry, ctx context.Context) *streamCall {
	return &streamCall{b: b, e: e, ctx: ctx, admit: make(chan bool, 1), result: make(chan Outcome, 1), recorded: make(chan struct{})}
}

func (c *streamCall) run() {
	admitted := false
	_, _ = c.e.cb.Execute(func() (struct{}, error) {
		admitted = true
		c.admit <- true
		var o Outcome
		select {
		case o = <-c.result:
		case <-c.ctx.Done():
			select {
			case o = <-c.result:
			default:
				o = Ignore // the caller gave up on the stream
			}
		}
		return struct{}{}, outcomeErr(o)
	})
	if !admitted {
		c.admit <- false
	}
	c.b.release(c.e)
	close(c.recorded)
	c.b.flush()
}

// finish reports the stream's outcome once, and returns when it is
// counted, so that the caller who saw the stream end sees its effect.
func (c *streamCall) finish(o Outcome) {
	if c.done.CompareAndSwap(false, true) {
		c.result <- o
		<-c.recorded
	}
}

type clientStream struct {
	grpc.ClientStream
	c             *streamCall
	serverStreams bool
}

func (s *clientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case err == io.EOF:
		s.c.finish(Success)
	case err != nil:
		s.c.finish(s.c.b.grpcOutcome(s.c.ctx, err))
	case !s.serverStreams:
		s.c.finish(Success) // the single reply of a unary or client-streaming call
	}
	return err
}

func (s *clientStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err != nil && err != io.EOF {
		s.c.finish(s.c.b.grpcOutcome(s.c.ctx, err))
	}
	return err
}

func (s *clientStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	if err != nil {
		s.c.finish(s.c.b.grpcOutcome(s.c.ctx, err))
	}
	return md, err
}
