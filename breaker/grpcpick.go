package breaker

import (
	"context"
)

// StartCall admits one gRPC call that a balancer has just picked endpoint
// for, in endpoint's breaker, and returns what EndCall needs to count the
// call when it ends. It is the per-endpoint alternative to the
// interceptors (which see only cc.Target(), the whole service behind a
// balancing resolver): discovery's gRPC picker calls it at pick time when
// the connection was dialed with (*discovery.Service).GatedDialOptions,
// and ambassador.DialOptions does so. When the breaker refuses, the call
// must not be sent: the error is the interceptors' refusal
// (codes.Unavailable, unwrapping to an *OpenError and ErrOpen), counted in
// outbound.breaker.rejections.
//
// The value returned is opaque and must go to EndCall exactly once (nil
// included: a key the full key table could not hold is not tracked).
// While the breaker is closed, StartCall takes no lock beyond the key
// table's read lock and does not allocate, and the call is counted when
// EndCall reports it, if the breaker is still closed then: an outcome that
// arrives while the breaker is open or half-open is dropped (gobreaker
// drops an outcome of an earlier generation the same way; one that ends
// after a whole open, half-open, closed cycle counts in the new closed
// window, as current evidence). While it is half-open
// the call takes one of the HalfOpenRequests probe slots at once, held by
// a small goroutine until EndCall, as a stream's place is held (see the
// package documentation).
func (b *Breaker) StartCall(ctx context.Context, endpoint string) (call any, err error) {
	e := b.acquire(mkey{a: endpoint})
	if e == nil {
		return nil, nil
	}
	if !e.notClosed.Load() {
		return e, nil
	}
	c := newStreamCall(b, e, ctx)
	go c.run()
	if !<-c.admit {
		return nil, b.reject(e).grpcErr
	}
	return c, nil
}

// EndCall counts the end of a call StartCall admitted: err is the call's
// final error (nil for success, as balancer.DoneInfo.Err reports it) and
// ctx its context, classified as the interceptors classify a call (the
// failure codes of Config.GRPCFailureCodes; a local refusal, or the
// caller's own cancellation or deadline, counts as nothing).
func (b *Breaker) EndCall(call any, ctx context.Context, err error) {
	switch c := call.(type) {
	case *entry:
		if o := b.grpcOutcome(ctx, err); o != Ignore && !c.notClosed.Load() {
			// Admission and outcome in one step: while the breaker stays
			// closed, gobreaker's count of requests is all that lags.
			_, _ = c.cb.Execute(func() (struct{}, error) { return struct{}{}, outcomeErr(o) })
		}
		b.release(c)
		b.flush()
	case *streamCall:
		c.finish(b.grpcOutcome(ctx, err))
	}
}
