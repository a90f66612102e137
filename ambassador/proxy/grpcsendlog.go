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
type sendLog struct {
	mu        sync.Mutex
	msgs      []*rawFrame
	closed    bool          // the caller half-closed
	committed bool          // no further attempt will start
	changed   chan struct{} // closed and replaced on every append, close and commit
}

type sendLogKey struct{}

func newSendLog() *sendLog { return &sendLog{changed: make(chan struct{})} }

func (l *sendLog) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *sendLog) add(f *rawFrame) {
	l.mu.Lock()
	l.msgs = append(l.msgs, f)
	l.notifyLocked()
	l.mu.Unlock()
}

func (l *sendLog) closeSend() {
	l.mu.Lock()
	l.closed = true
	l.notifyLocked()
	l.mu.Unlock()
}

func (l *sendLog) commit() {
	l.mu.Lock()
	l.committed = true
	l.notifyLocked()
	l.mu.Unlock()
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
	return nil, l.closed, l.changed
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

// sendLogInterceptor, below the policies, starts the sender of each
// attempt's stream.
func sendLogInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if l, ok := ctx.Value(sendLogKey{}).(*sendLog); ok && err == nil {
		go l.send(ctx, cs)
	}
	return cs, err
}
