package proxy

import (
	"context"
	"sync"

	"google.golang.org/grpc"
)

// sendLog carries the caller's messages of one native gRPC call to
// whichever attempt of the retry layer is current.
//
// The retry layer (retry.Policy's stream interceptor) replays what was sent
// on a stream when it retries, but it holds the stream while its RecvMsg
// waits before the first response, so a caller that is still sending would
// wait for it, and a retried attempt could wait for messages that cannot
// reach it. So forwardGRPC sends nothing through the retry layer: the
// caller's messages go into this log, and below the retry layer
// (sendLogInterceptor) every attempt's stream gets its own sender that
// writes the whole log, from the first message, then the half-close. Once
// the call has committed (its first response message), messages already
// sent are dropped from the log.
//
// The first attempt opened before the caller's messages are read (the
// pump starts once forwardGRPC's NewStream returns) needs no sender of its
// own: the pump writes each message to it as it logs it (direct). Only an
// attempt started later, a retry, gets a sender goroutine. Once the call
// has committed with no such sender, nothing is kept at all.
type sendLog struct {
	mu        sync.Mutex
	msgs      []*rawFrame
	closed    bool              // the caller half-closed
	committed bool              // no further attempt will start
	pumping   bool              // the pump reads the caller's messages
	senders   int               // sender goroutines started (retries)
	direct    grpc.ClientStream // the attempt the pump writes to, until it fails
	changed   chan struct{}     // made by a waiting sender; closed on the next append, close or commit
	one       [1]*rawFrame      // msgs' first slot: a unary or server-streaming call logs one message
}

type sendLogKey struct{}

// init makes l, the zero sendLog, ready for a call's messages.
func (l *sendLog) init() { l.msgs = l.one[:0] }

func (l *sendLog) notifyLocked() {
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// startPump marks the pump started: attempts opened from now on get
// a sender of their own.
func (l *sendLog) startPump() {
	l.mu.Lock()
	l.pumping = true
	l.mu.Unlock()
}

// add logs f for the senders (unless the call committed with none) and
// returns the stream the pump writes f to itself, nil if none.
func (l *sendLog) add(f *rawFrame) grpc.ClientStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.committed || l.senders > 0 {
		l.msgs = append(l.msgs, f)
		l.notifyLocked()
	}
	return l.direct
}

// closeSend records the caller's half-close and returns the stream the
// pump half-closes itself, nil if none.
func (l *sendLog) closeSend() grpc.ClientStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.notifyLocked()
	return l.direct
}

// detach stops the pump's writing to cs, which failed.
func (l *sendLog) detach(cs grpc.ClientStream) {
	l.mu.Lock()
	if l.direct == cs {
		l.direct = nil
	}
	l.mu.Unlock()
}

func (l *sendLog) commit() {
	l.mu.Lock()
	l.committed = true
	l.notifyLocked()
	l.mu.Unlock()
}

// attach makes cs the pump's stream when the pump has not started (so
// nothing is logged yet) and reports whether it did; otherwise cs needs a
// sender, counted here.
func (l *sendLog) attach(cs grpc.ClientStream) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.pumping {
		l.direct = cs
		return true
	}
	l.direct = nil // an earlier attempt, given up on
	l.senders++
	return false
}

// next returns message i, or whether the log ended there (closed), or the
// channel that announces a change.
func (l *sendLog) next(i int) (f *rawFrame, end bool, wait <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < len(l.msgs) {
		f = l.msgs[i]
		if l.committed {
			l.msgs[i] = nil // sent by the only attempt there will be
		}
		return f, false, nil
	}
	if l.closed {
		return nil, true, nil
	}
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return nil, false, l.changed
}

// send writes the log to cs until it ends (then half-closes), cs fails or
// ctx (the attempt's) is done.
func (l *sendLog) send(ctx context.Context, cs grpc.ClientStream) {
	for i := 0; ; {
		f, end, wait := l.next(i)
		switch {
		case f != nil:
			if cs.SendMsg(f) != nil {
				return // the attempt failed; its RecvMsg says how
			}
			i++
		case end:
			_ = cs.CloseSend()
			return
		default:
			select {
			case <-wait:
			case <-ctx.Done():
				return
			}
		}
	}
}

// sendLogInterceptor is the innermost stream interceptor of the native
// path's connections: it opens each attempt's stream in its real, full
// duplex shape (see retryableDesc), and gives it to the pump (the first)
// or to a sender of its own.
func sendLogInterceptor(ctx context.Context, _ *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, &fullDuplex, cc, method, opts...)
	if l, ok := ctx.Value(sendLogKey{}).(*sendLog); ok && err == nil && !l.attach(cs) {
		go l.send(ctx, cs)
	}
	return cs, err
}
