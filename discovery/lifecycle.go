package discovery

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/outbound-go/outbound/internal/clock"
)

// WithStartOnUse makes the Service start its goroutines (the source's watch
// and, when health_check is configured, the health checker) only while
// something uses it, instead of from NewService to Close:
//
//   - a gRPC resolver built from ResolverBuilder or DialOptions holds them
//     from Build to Close. grpc builds the resolver when a ClientConn first
//     connects or leaves idle mode, and closes it when the ClientConn closes
//     or enters idle mode (grpc.WithIdleTimeout; 30 minutes by default), so
//     an idle or closed channel costs no goroutines and resolves afresh on
//     its next call;
//   - the first HTTP pick (RoundTripper, Pick) holds them until Close.
//
// Options that are built but never dialed thus start nothing. The endpoint
// set and per-endpoint state (load, latency, health) survive a stop: a
// restarted watch replaces the set with the source's current one. A Static
// source needs no goroutine and is applied by NewService in either mode.
// Close still stops everything and waits for it.
func WithStartOnUse() Option { return func(o *options) { o.startOnUse = true } }

// runState counts the holders of a Service's goroutines. The goroutines of
// one start (a generation) run until the holds drop to zero; the next
// generation begins only after the previous one has returned, so the
// source's update is never called concurrently.
type runState struct {
	mu     sync.Mutex
	holds  int
	closed bool
	cancel context.CancelFunc // of the running generation
	done   chan struct{}      // closed when the last generation has returned
	wg     sync.WaitGroup     // every generation's goroutines, for Close
	pinned atomic.Bool        // the HTTP side holds the goroutines until Close
}

// start begins s's goroutines in its default mode, or only applies a static
// source in the start-on-use mode.
func (s *Service) start(src Source, onUse bool) {
	s.src = src
	s.onUse = onUse
	if st, ok := src.(*staticSource); ok {
		st.Watch(clock.NewContext(context.Background(), s.clock), s.update) // returns at once
		s.markFirst()
		s.src = nil
	}
	if !onUse {
		s.acquire()
	}
}

// acquire takes a hold on the goroutines, starting a generation when it is
// the first. It never waits.
func (s *Service) acquire() {
	r := &s.run
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.holds++
	if r.holds > 1 {
		return
	}
	var fns []func(context.Context)
	if src := s.src; src != nil {
		fns = append(fns, func(ctx context.Context) {
			src.Watch(ctx, s.update)
			s.markFirst()
		})
	}
	if s.cfg.HealthCheck.Path != "" {
		fns = append(fns, s.runHealthChecks)
	}
	if len(fns) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(withLogger(clock.NewContext(context.Background(), s.clock), s.log))
	prev, done := r.done, make(chan struct{})
	r.cancel, r.done = cancel, done
	left := atomic.Int32{}
	left.Store(int32(len(fns)))
	r.wg.Add(len(fns))
	for _, f := range fns {
		go func() {
			defer r.wg.Done()
			if prev != nil {
				<-prev
			}
			f(ctx)
			if left.Add(-1) == 0 {
				close(done)
			}
		}()
	}
}

// release drops a hold; the last one cancels the running generation. It
// never waits for the goroutines (a gRPC resolver's Close may run while grpc
// holds locks a push from them needs); they return on their own.
func (s *Service) release() {
	r := &s.run
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.holds == 0 {
		return
	}
	r.holds--
	if r.holds == 0 && r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
}

// pin takes the HTTP side's hold in the start-on-use mode, once.
func (s *Service) pin() {
	if s.onUse && !s.run.pinned.Load() && s.run.pinned.CompareAndSwap(false, true) {
		s.acquire()
	}
}

// stopAll stops every goroutine for good and waits for them.
func (s *Service) stopAll() {
	r := &s.run
	r.mu.Lock()
	r.closed = true
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
	r.mu.Unlock()
	r.wg.Wait()
}
