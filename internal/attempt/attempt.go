// Package attempt carries the per-request attempt record between the layers
// of an outbound stack.
//
// The retry layer owns one Record per logical request and derives one context
// per attempt with WithAttempt. Layers below it (discovery, the ambassador's
// access log) read the record from the attempt's context: discovery asks which
// endpoints this logical request has already tried and adds the one it picks.
// A request that did not pass through retry has no record; every reader must
// cope with FromContext returning nil.
//
// A Record is safe for concurrent use: hedged attempts of one logical request
// run at the same time and share it.
package attempt

import (
	"context"
	"sync"
	"sync/atomic"
)

// Record is the state one logical request keeps across its attempts.
type Record struct {
	started atomic.Int32

	mu    sync.Mutex
	tried []string
	buf   [4]string // backing store for the first few endpoints: no allocation
}

// NewRecord returns an empty record.
func NewRecord() *Record {
	r := &Record{}
	r.tried = r.buf[:0]
	return r
}

// Start counts a new attempt and returns its number, starting at 1.
func (r *Record) Start() int { return int(r.started.Add(1)) }

// Attempts reports how many attempts were started.
func (r *Record) Attempts() int { return int(r.started.Load()) }

// AddTried records that an attempt was sent to endpoint.
func (r *Record) AddTried(endpoint string) {
	r.mu.Lock()
	r.tried = append(r.tried, endpoint)
	r.mu.Unlock()
}

// Tried reports whether an earlier attempt of this request picked endpoint.
func (r *Record) Tried(endpoint string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.tried {
		if e == endpoint {
			return true
		}
	}
	return false
}

// TriedCount reports how many endpoints were recorded (with repeats).
func (r *Record) TriedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tried)
}

// LastEndpoint returns the endpoint most recently recorded, or "".
func (r *Record) LastEndpoint() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tried) == 0 {
		return ""
	}
	return r.tried[len(r.tried)-1]
}

type ctxKey struct{}

// attemptCtx is a context that carries the record and the attempt number in
// one allocation.
type attemptCtx struct {
	context.Context
	rec *Record
	n   int
}

func (c *attemptCtx) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// WithAttempt returns a child of parent that carries rec and attempt number n.
func WithAttempt(parent context.Context, rec *Record, n int) context.Context {
	return &attemptCtx{Context: parent, rec: rec, n: n}
}

// WithRecord returns a child of parent that carries rec before any attempt was
// started (attempt number 0). A caller that wants to read the record after the
// request — the ambassador's access log does — creates it and passes it down;
// the retry layer adopts a record it finds instead of making its own.
func WithRecord(parent context.Context, rec *Record) context.Context {
	return &attemptCtx{Context: parent, rec: rec}
}

// FromContext returns the record and attempt number carried by ctx, or
// (nil, 0) when the request did not pass through a layer that keeps one.
func FromContext(ctx context.Context) (*Record, int) {
	if c, ok := ctx.Value(ctxKey{}).(*attemptCtx); ok {
		return c.rec, c.n
	}
	return nil, 0
}
