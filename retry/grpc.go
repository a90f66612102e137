package retry

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/classify"
	"github.com/outbound-go/outbound/internal/refusal"
)

// pushbackKey is the trailer a gRPC server sets to ask for a delay before
// the next attempt (or, negative or malformed, for no retry).
const pushbackKey = "grpc-retry-pushback-ms"

// UnaryClientInterceptor returns an interceptor that retries unary calls
// failing with a code in retriable_grpc_codes (UNAVAILABLE by default), or
// with the per-try timeout. It honours grpc-retry-pushback-ms and spends
// the policy's budget.
func (p *Policy) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		adopt, _ := attempt.FromContext(ctx)
		call := attempt.NewGRPCCall(ctx, adopt)
		rec := call.Record()
		now := p.deposit(time.Time{})
		// The trailer option lives in call, and layers below (ratelimit)
		// read the same trailer through the attempt context instead of
		// capturing their own.
		callOpts := call.CallOptions(opts)
		var bo *backoff.ExponentialBackOff
		for {
			n := rec.Start()
			actx := call.Attempt(n)
			if p.real {
				if n > 1 {
					now = time.Now()
				}
				call.SetNow(now)
			}
			var span trace.Span
			if p.tracer != nil {
				actx, span = p.startSpan(actx, n)
			}
			var cancel context.CancelFunc
			perTryBound := false
			if p.c.perTry > 0 {
				dl, hasDL := ctx.Deadline()
				perTryBound = !hasDL || time.Until(dl) > p.c.perTry
				// Marked as the per-try timeout, so that the layers below
				// (the breaker) do not take it for the caller's deadline.
				actx, cancel = classify.WithPerTryTimeout(actx, p.c.perTry)
			}
			err := invoker(actx, method, req, reply, cc, callOpts...)
			if cancel != nil {
				cancel()
			}
			p.eventGRPC(ctx, span, n, rec, cc, err)
			if err == nil {
				p.count(ctx, oSuccess)
				return nil
			}
			v := p.judgeGRPC(ctx, actx, err, call.Trailer(), perTryBound)
			d := p.decide(ctx, v, n, &bo, nil, err)
			p.count(ctx, d.out)
			if !d.retry {
				return d.grpcResult(err)
			}
			p.debug(ctx, "retrying gRPC call", "method", method, "attempt", n, "delay", d.delay, "error", err)
			if serr := p.clock.Sleep(ctx, d.delay); serr != nil {
				return ctxStatus(ctx, serr)
			}
		}
	}
}

// ctxStatus turns the caller's context error into the status error gRPC
// would give, still matching the context error with errors.Is.
func ctxStatus(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil {
		return err
	}
	return &ctxError{st: status.FromContextError(cerr), err: cerr}
}

type ctxError struct {
	st  *status.Status
	err error
}

func (e *ctxError) Error() string              { return e.st.Err().Error() }
func (e *ctxError) GRPCStatus() *status.Status { return e.st }
func (e *ctxError) Unwrap() error              { return e.err }

// judgeGRPC decides whether a failed gRPC attempt is retried.
// perTryBound says the attempt's deadline was its per-try timeout (earlier
// than the caller's): the server learns it through grpc-timeout and may
// answer DEADLINE_EXCEEDED a moment before the client's own timer fires,
// so that code then counts as the per-try timeout too.
func (p *Policy) judgeGRPC(ctx, actx context.Context, err error, trailer metadata.MD, perTryBound bool) verdict {
	notRetryable := verdict{out: oNotRetryable}
	if ctx.Err() != nil || refusal.Is(err) {
		return notRetryable
	}
	code := status.Code(err)
	perTryFired := (perTryBound && code == codes.DeadlineExceeded) ||
		errors.Is(actx.Err(), context.DeadlineExceeded) ||
		perTryDeadlinePassed(ctx, actx)
	if !perTryFired {
		if k := classify.Error(ctx, actx, err); k == classify.Timeout {
			perTryFired = true
		}
	}
	if !perTryFired && !p.retriableCode(code) {
		return notRetryable
	}
	if vs := trailer.Get(pushbackKey); len(vs) > 0 {
		d, ok := pushback(vs[0])
		if !ok || d > p.c.maxRetryAfter {
			return notRetryable
		}
		return verdict{retry: true, delay: d, hasDelay: true}
	}
	return verdict{retry: true}
}

// perTryDeadlinePassed reports whether actx carries a deadline of its own
// (the per-try timeout, earlier than the caller's) and that deadline has
// passed, whether or not its timer has fired yet. The server learns the
// deadline from grpc-timeout and may end the call (DEADLINE_EXCEEDED, or
// RST_STREAM that gRPC reports as DEADLINE_EXCEEDED) before the client's
// timer runs; the attempt's cancel then wins the race, actx.Err() says
// Canceled, and without this check the per-try timeout would go unseen.
func perTryDeadlinePassed(ctx, actx context.Context) bool {
	dl, ok := actx.Deadline()
	if !ok {
		return false
	}
	if cdl, ok := ctx.Deadline(); ok && !cdl.After(dl) {
		return false // the caller's deadline, not a per-try one
	}
	return !time.Now().Before(dl)
}

// eventGRPC adds an attempt event; the endpoint is the one discovery
// recorded, else the connection's target.
func (p *Policy) eventGRPC(ctx context.Context, span trace.Span, n int, rec *attempt.Record, cc *grpc.ClientConn, err error) {
	if span == nil && !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	endpoint := rec.LastEndpoint()
	if endpoint == "" && cc != nil {
		endpoint = cc.Target()
	}
	p.eventEndpoint(ctx, span, n, endpoint, err)
}

// StreamClientInterceptor returns an interceptor that retries
// server-streaming calls until their first response message arrives: the
// request message sent on the stream is kept and sent again on a new
// stream. Once a message has arrived the stream is committed and passes
// through. Client-streaming and bidirectional calls are passed through
// unretried: the messages they send cannot be replayed faithfully.
func (p *Policy) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if desc.ClientStreams || !desc.ServerStreams {
			return streamer(ctx, desc, cc, method, opts...)
		}
		rec, _ := attempt.FromContext(ctx)
		if rec == nil {
			rec = attempt.NewRecord()
		}
		p.budget.deposit()
		s := &retryStream{p: p, ctx: ctx, desc: desc, cc: cc, method: method, streamer: streamer, opts: opts, rec: rec}
		if err := s.open(); err != nil {
			// The stream could not even be created: retry that too.
			if err = s.retry(err); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
}

// retryStream is a server-streaming call that can be restarted until its
// first response message arrives.
type retryStream struct {
	p        *Policy
	ctx      context.Context
	desc     *grpc.StreamDesc
	cc       *grpc.ClientConn
	method   string
	streamer grpc.Streamer
	opts     []grpc.CallOption
	rec      *attempt.Record

	mu        sync.Mutex
	cs        grpc.ClientStream
	n         int
	actx      context.Context
	cancel    context.CancelCauseFunc // the attempt's; called with nil
	timer     *time.Timer
	sent      []any // messages sent before commit (a server stream sends one)
	closeSent bool
	committed bool
	bo        *backoff.ExponentialBackOff
}

// open starts a new attempt: a new underlying stream with its own context.
func (s *retryStream) open() error {
	s.n = s.rec.Start()
	actx, cancel := context.WithCancelCause(attempt.WithAttempt(s.ctx, s.rec, s.n))
	s.actx, s.cancel = actx, cancel
	sctx, span := s.p.startSpan(actx, s.n)
	if s.p.c.perTry > 0 {
		s.timer = time.AfterFunc(s.p.c.perTry, func() { cancel(classify.ErrPerTryTimeout) })
	}
	cs, err := s.streamer(sctx, s.desc, s.cc, s.method, s.opts...)
	s.p.eventGRPC(s.ctx, span, s.n, s.rec, s.cc, err)
	if err != nil {
		s.stopAttempt()
		return err
	}
	s.cs = cs
	for _, m := range s.sent {
		if err := cs.SendMsg(m); err != nil {
			// The real error surfaces from RecvMsg.
			break
		}
	}
	if s.closeSent {
		_ = cs.CloseSend()
	}
	return nil
}

func (s *retryStream) stopAttempt() {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.cancel(nil)
}

// retry decides about a failed attempt and, if allowed, opens the next one.
// It returns nil when a new attempt is open, else the error to return.
func (s *retryStream) retry(err error) error {
	p := s.p
	for {
		var trailer metadata.MD
		if s.cs != nil {
			trailer = s.cs.Trailer()
		}
		v := p.judgeGRPC(s.ctx, s.actx, err, trailer, false)
		s.stopAttempt()
		d := p.decide(s.ctx, v, s.n, &s.bo, nil, err)
		p.count(s.ctx, d.out)
		if !d.retry {
			return d.grpcResult(err)
		}
		if serr := p.clock.Sleep(s.ctx, d.delay); serr != nil {
			return ctxStatus(s.ctx, serr)
		}
		s.cs = nil
		if err = s.open(); err == nil {
			return nil
		}
	}
}

func (s *retryStream) current() grpc.ClientStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cs
}

func (s *retryStream) Header() (metadata.MD, error) { return s.current().Header() }
func (s *retryStream) Trailer() metadata.MD         { return s.current().Trailer() }
func (s *retryStream) Context() context.Context     { return s.current().Context() }

func (s *retryStream) CloseSend() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeSent = true
	return s.cs.CloseSend()
}

func (s *retryStream) SendMsg(m any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.committed {
		s.sent = append(s.sent, m)
	}
	return s.cs.SendMsg(m)
}

// RecvMsg receives from the current attempt; before the first message a
// retryable failure restarts the call on a new stream.
func (s *retryStream) RecvMsg(m any) error {
	s.mu.Lock()
	if s.committed {
		cs := s.cs
		s.mu.Unlock()
		err := cs.RecvMsg(m)
		if err != nil {
			s.cancel(nil)
		}
		return err
	}
	defer s.mu.Unlock()
	for {
		err := s.cs.RecvMsg(m)
		if err == nil {
			s.commit(oSuccess)
			return nil
		}
		if errors.Is(err, io.EOF) {
			// The server ended the stream with OK and no message.
			s.commit(oSuccess)
			s.cancel(nil)
			return err
		}
		if rerr := s.retry(err); rerr != nil {
			s.committed = true
			return rerr
		}
	}
}

func (s *retryStream) commit(o outcome) {
	s.committed = true
	s.sent = nil
	if s.timer != nil {
		s.timer.Stop()
	}
	s.p.count(s.ctx, o)
}

var _ grpc.ClientStream = (*retryStream)(nil)
