package breaker

import (
	"context"
	"io"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// TrackStreamAtEnd is TrackStream without the goroutine while key's
// breaker is closed, for callers that open a stream per call on a hot path
// and learn the endpoint only after grpc's pick. (The ambassador's native
// gRPC path no longer uses it: its breaker acts at the pick, as a
// discovery.CallGate.)
//
// A closed breaker refuses nothing, so there is nothing to ask it when the
// stream starts: the stream is counted as one request when it ends
// (gobreaker's Execute then runs with the outcome already known), or
// ignored when ctx, the stream's context, is done first (a
// context.AfterFunc, not a goroutine, notices that). Its outcome is dropped
// if the breaker left the closed state while the stream was open, as
// gobreaker drops a request that straddles a state change. Two things
// differ from TrackStream: the stream appears in Snapshot's Requests only
// once it has ended, and one that straddles the end of an Interval counts
// in the new one. A breaker that is not closed (open, half-open) takes
// TrackStream's path, so its refusals and half-open probes are exactly
// TrackStream's.
func (b *Breaker) TrackStreamAtEnd(ctx context.Context, key string, cs grpc.ClientStream, serverStreams bool) (grpc.ClientStream, error) {
	e := b.acquire(mkey{a: key})
	if e == nil {
		return cs, nil
	}
	if e.notClosed.Load() {
		b.release(e)
		return b.TrackStream(ctx, key, cs, serverStreams)
	}
	s := &endStream{ClientStream: cs, b: b, e: e, ctx: ctx, serverStreams: serverStreams}
	s.stop = context.AfterFunc(ctx, func() { s.finish(Ignore) })
	return s, nil
}

// endStream is a stream admitted by a closed breaker, counted when it ends.
type endStream struct {
	grpc.ClientStream
	b             *Breaker
	e             *entry
	ctx           context.Context
	serverStreams bool
	stop          func() bool // the AfterFunc's
	done          atomic.Bool
}

// finish counts the stream's outcome once, before it returns, so that the
// caller who saw the stream end sees its effect.
func (s *endStream) finish(o Outcome) {
	if !s.done.CompareAndSwap(false, true) {
		return
	}
	s.stop()
	e := s.e
	if !e.notClosed.Load() {
		_, _ = e.cb.Execute(func() (struct{}, error) {
			if e.notClosed.Load() {
				// It opened (and may be half-open now) since the check
				// above: not this stream's to count.
				return struct{}{}, errIgnored
			}
			return struct{}{}, outcomeErr(o)
		})
	}
	s.b.release(e)
	s.b.flush()
}

func (s *endStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case err == io.EOF:
		s.finish(Success)
	case err != nil:
		s.finish(s.b.grpcOutcome(s.ctx, err))
	case !s.serverStreams:
		s.finish(Success) // the single reply of a unary or client-streaming call
	}
	return err
}

func (s *endStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err != nil && err != io.EOF {
		s.finish(s.b.grpcOutcome(s.ctx, err))
	}
	return err
}

func (s *endStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	if err != nil {
		s.finish(s.b.grpcOutcome(s.ctx, err))
	}
	return md, err
}
