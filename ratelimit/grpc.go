package ratelimit

import (
	"context"
	"errors"
	"io"
	"math"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/internal/attempt"
)

// pushbackKey is the trailer a gRPC server uses to ask clients to back off
// (gRFC A6), in milliseconds.
const pushbackKey = "grpc-retry-pushback-ms"

// UnaryClientInterceptor limits unary calls, keyed by the ClientConn's target
// (plus the method with WithGRPCMethodKey). A refused call returns a status
// error with codes.ResourceExhausted that still satisfies
// errors.Is(err, ErrLimited); errors.As finds the *LimitedError. Unless
// Config.IgnoreRetryAfter, a RESOURCE_EXHAUSTED or UNAVAILABLE answer with a
// positive grpc-retry-pushback-ms trailer pauses the key.
func (l *Limiter) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		key := l.grpcKey(cc, method)
		a := attempt.Lookup(ctx) // one context lookup for the clock reading and the trailer
		now := l.nowOf(a)
		b, name := l.bucket(key, now)
		if err := l.acquire(ctx, b, name, now); err != nil {
			return grpcErr(err)
		}
		if l.ignoreRetryAfter {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		if md := a.Trailer(); md != nil {
			// The retry layer above already captures this attempt's trailer
			// (its option is among opts): read it there, no option of ours.
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err != nil {
				if d, ok := pushback(err, *md); ok {
					l.Pause(key, d)
				}
			}
			return err
		}
		var trailer metadata.MD
		err := invoker(ctx, method, req, reply, cc, append(opts[:len(opts):len(opts)], grpc.Trailer(&trailer))...)
		if err != nil {
			if d, ok := pushback(err, trailer); ok {
				l.Pause(key, d)
			}
		}
		return err
	}
}

// StreamClientInterceptor limits the creation of streams like
// UnaryClientInterceptor limits calls: one token per stream, whatever the
// number of messages on it. A stream that fails with RESOURCE_EXHAUSTED or
// UNAVAILABLE and a pushback trailer pauses the key, unless
// Config.IgnoreRetryAfter.
func (l *Limiter) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		key := l.grpcKey(cc, method)
		now := l.now()
		b, name := l.bucket(key, now)
		if err := l.acquire(ctx, b, name, now); err != nil {
			return nil, grpcErr(err)
		}
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || l.ignoreRetryAfter {
			return cs, err
		}
		return &pushbackStream{ClientStream: cs, l: l, key: key}, nil
	}
}

var (
	_ grpc.ClientStream = (*pushbackStream)(nil)
	_ interface {
		GRPCStatus() *status.Status
		Unwrap() error
	} = (*grpcError)(nil)
)

type pushbackStream struct {
	grpc.ClientStream
	l   *Limiter
	key string
}

func (s *pushbackStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil && err != io.EOF {
		if d, ok := pushback(err, s.Trailer()); ok {
			s.l.Pause(s.key, d)
		}
	}
	return err
}

func (l *Limiter) grpcKey(cc *grpc.ClientConn, method string) string {
	if l.global != nil {
		return globalKey
	}
	target := ""
	if cc != nil {
		target = cc.Target()
	}
	if l.grpcMethodKey {
		return target + method
	}
	return target
}

// pushback returns the pause a failed call asked for.
func pushback(err error, md metadata.MD) (time.Duration, bool) {
	if c := status.Code(err); c != codes.ResourceExhausted && c != codes.Unavailable {
		return 0, false
	}
	v := md.Get(pushbackKey)
	if len(v) == 0 {
		return 0, false
	}
	ms, perr := strconv.ParseInt(v[0], 10, 64)
	if perr != nil || ms <= 0 {
		return 0, false
	}
	if ms > math.MaxInt64/int64(time.Millisecond) { // keep the product in range; Pause caps it
		ms = math.MaxInt64 / int64(time.Millisecond)
	}
	return time.Duration(ms) * time.Millisecond, true
}

// grpcErr turns an error of acquire into a status error that unwraps to it.
func grpcErr(err error) error {
	code := codes.ResourceExhausted
	switch {
	case errors.Is(err, ErrLimited):
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	default:
		code = codes.Unknown
	}
	return &grpcError{code: code, err: err}
}
