package transcode

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// Source gives the Descriptors of a transcoder.
type Source interface {
	// Descriptors returns the current descriptors, fetching them first
	// when needed.
	Descriptors(ctx context.Context) (*Descriptors, error)
}

// Static is a Source of fixed descriptors (a descriptor set file).
type Static struct{ D *Descriptors }

// Descriptors returns s.D.
func (s Static) Descriptors(context.Context) (*Descriptors, error) { return s.D, nil }

// Reflection is a Source that asks the upstream's server reflection on
// first use and keeps the answer. Concurrent first calls share one fetch;
// a failed fetch is not kept, so the next call tries again. A new
// Reflection (a reload) fetches anew. It is safe for concurrent use.
type Reflection struct {
	cc      grpc.ClientConnInterface
	rules   RuleBuilder
	timeout time.Duration

	mu    sync.Mutex
	d     *Descriptors
	fetch *fetchCall // in progress, nil when none
}

type fetchCall struct {
	done chan struct{}
	d    *Descriptors
	err  error
}

// NewReflection returns a Source reading the reflection of the server
// behind cc, each fetch bounded by timeout (0: by the caller's context
// only), with rules built by rb (nil: none).
func NewReflection(cc grpc.ClientConnInterface, timeout time.Duration, rb RuleBuilder) *Reflection {
	return &Reflection{cc: cc, rules: rb, timeout: timeout}
}

// Descriptors returns the kept descriptors, or fetches them: the first
// caller fetches with its context, the others wait for it (or for their
// own context to end) and share its result.
func (r *Reflection) Descriptors(ctx context.Context) (*Descriptors, error) {
	r.mu.Lock()
	if r.d != nil {
		d := r.d
		r.mu.Unlock()
		return d, nil
	}
	if f := r.fetch; f != nil {
		r.mu.Unlock()
		select {
		case <-f.done:
			return f.d, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &fetchCall{done: make(chan struct{})}
	r.fetch = f
	r.mu.Unlock()

	fctx := ctx
	if r.timeout > 0 {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	f.d, f.err = fetchReflection(fctx, r.cc, r.rules)
	r.mu.Lock()
	r.fetch = nil
	if f.err == nil {
		r.d = f.d
	}
	r.mu.Unlock()
	close(f.done)
	return f.d, f.err
}
