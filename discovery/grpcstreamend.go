package discovery

import (
	"context"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/status"
)

// A client-streaming attempt can end while the caller is sending: the
// endpoint answers (UNAVAILABLE, say) before reading the whole request,
// and the caller's next SendMsg fails with io.EOF before its RecvMsg reads
// the status. grpc-go then ends the attempt from SendMsg's retry path with
// that io.EOF, which it reads as success, and tells the picker so: the
// balancer's Done gets no error for a call the caller sees fail. Counted as
// it is reported, a breaker at the pick (GatedDialOptions) never opens for
// an endpoint that refuses uploads, and the endpoint's passive health and
// latency score read the refusal as an answer.
//
// streamEnds, innermost of the connection's stream interceptors, holds a
// client-streaming attempt's Done when grpc reports success, until the
// caller's RecvMsg returns the call's real end (io.EOF or the status), or
// the caller's context ends first (an abandoned call: counted as the
// caller's cancellation). A Done with an error is the real outcome and goes
// through at once; unary and server-streaming calls, whose sends cannot
// end an attempt this way, are not wrapped.
func streamEnds(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if !desc.ClientStreams {
		return streamer(ctx, desc, cc, method, opts...)
	}
	es := &endStream{ctx: ctx}
	cs, err := streamer(es.valueCtx(), desc, cc, method, opts...)
	if err != nil {
		es.end(err)
		return nil, err
	}
	es.ClientStream = cs
	return es, nil
}

type endStreamKey struct{}

// endStream is a client-streaming call whose attempts' Done calls wait for
// the end the caller sees (see streamEnds). grpc allows one RecvMsg at a
// time, concurrent with SendMsg; Done may run in either.
type endStream struct {
	grpc.ClientStream
	ctx context.Context // the caller's

	mu      sync.Mutex
	inRecv  bool
	held    func(balancer.DoneInfo) // the picker's Done for the attempt that ended, if held
	heldDI  balancer.DoneInfo
	stopped func() bool // stops the fallback on ctx, when armed
}

// valueCtx returns es's context with es as its value for endStreamKey, to
// find in the picker: es itself, so that one allocation is both.
func (es *endStream) valueCtx() context.Context { return (*endStreamCtx)(es) }

// endStreamCtx is an endStream seen as its caller's context plus the
// endStreamKey value (its own method set: an endStream's Context method is
// the stream's).
type endStreamCtx endStream

func (c *endStreamCtx) Deadline() (time.Time, bool) { return c.ctx.Deadline() }
func (c *endStreamCtx) Done() <-chan struct{}       { return c.ctx.Done() }
func (c *endStreamCtx) Err() error                  { return c.ctx.Err() }
func (c *endStreamCtx) Value(key any) any {
	if key == (endStreamKey{}) {
		return (*endStream)(c)
	}
	return c.ctx.Value(key)
}

// endStreamOf returns the endStream ctx belongs to, or nil.
func endStreamOf(ctx context.Context) *endStream {
	es, _ := ctx.Value(endStreamKey{}).(*endStream)
	return es
}

// picked is called when a new attempt of the call is picked: grpc only
// starts one after the previous attempt ended unprocessed (a transparent
// retry), so a Done still held belongs to an attempt that did not count.
func (es *endStream) picked() {
	es.mu.Lock()
	done := es.take()
	es.mu.Unlock()
	if done != nil {
		done(balancer.DoneInfo{Err: errNotUsed})
	}
}

// doneFunc wraps the picker's Done for one attempt of the call.
func (es *endStream) doneFunc(done func(balancer.DoneInfo)) func(balancer.DoneInfo) {
	return func(di balancer.DoneInfo) {
		if di.Err != nil {
			done(di)
			return
		}
		es.mu.Lock()
		es.held, es.heldDI = done, di
		if !es.inRecv {
			es.arm() // no RecvMsg in progress to report the end
		}
		es.mu.Unlock()
	}
}

// arm starts the fallback for a held Done; es.mu is held.
func (es *endStream) arm() {
	if es.stopped == nil {
		es.stopped = context.AfterFunc(es.ctx, es.abandoned)
	}
}

// take returns the held Done, if any, and forgets it and its fallback;
// es.mu is held.
func (es *endStream) take() func(balancer.DoneInfo) {
	done := es.held
	es.held = nil
	if es.stopped != nil {
		es.stopped()
		es.stopped = nil
	}
	return done
}

// end reports err (io.EOF: success) as the end of the attempt held, if any.
func (es *endStream) end(err error) {
	es.mu.Lock()
	di := es.heldDI
	done := es.take()
	es.mu.Unlock()
	if done == nil {
		return
	}
	if err != io.EOF {
		di.Err = err
	}
	done(di)
}

func (es *endStream) abandoned() {
	es.end(status.FromContextError(es.ctx.Err()).Err())
}

// RecvMsg receives as grpc does; when the call ends, the held Done gets the
// outcome RecvMsg returns.
func (es *endStream) RecvMsg(m any) error {
	es.mu.Lock()
	es.inRecv = true
	es.mu.Unlock()
	err := es.ClientStream.RecvMsg(m)
	es.mu.Lock()
	es.inRecv = false
	if err == nil && es.held != nil {
		es.arm() // the status comes after messages the caller may not read
	}
	es.mu.Unlock()
	if err != nil {
		es.end(err)
	}
	return err
}
