package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/ratelimit"
)

// tcpService is a tcp service's side of a serviceEntry: its TCPStack, and
// the per-endpoint connection slots of max_connections with the FIFO queue
// of client connections waiting for one.
//
// A slot is taken under mu together with the pick, so two connections
// cannot both take an endpoint's last slot. When every ready endpoint is
// full a connection joins queue and waits, up to tcp.queue_timeout, for a
// signal on its channel; only the queue's head tries again (a newcomer
// queues behind it while the queue is not empty: arrival order), and every
// freed slot, and every head that leaves the queue, signals the new head.
type tcpService struct {
	name     string
	stack    *ambassador.TCPStack
	maxConns int // per endpoint; 0: unlimited
	queueFor time.Duration
	idle     time.Duration
	metrics  *tcpServiceMetrics

	started atomic.Bool // the source reported its first set (a pick waited for it)

	mu    sync.Mutex
	open  map[string]int // endpoint → slots taken (connecting or connected)
	queue []*tcpWaiter
}

// tcpWaiter is a client connection in the queue.
type tcpWaiter struct{ wake chan struct{} }

// Reasons a connection gets no slot.
var (
	errTCPFull         = errors.New("every ready endpoint is at max_connections")
	errTCPQueueTimeout = errors.New("queue_timeout passed waiting for a connection slot")
)

// tcpSlot is one endpoint slot: the discovery hold (in-flight count) and
// the max_connections count. release frees both, once.
type tcpSlot struct {
	t    *tcpService
	hold *discovery.Hold
	addr string
	once sync.Once
}

func (s *Server) newTCPService(name string, c ambassador.ServiceConfig) (*tcpService, error) {
	opts := append([]ambassador.Option(nil), s.opts.stack...)
	st, err := ambassador.NewTCPStack(c, opts...)
	if err != nil {
		return nil, err
	}
	return &tcpService{
		name: name, stack: st, maxConns: c.MaxConnections,
		queueFor: c.TCP.QueueTimeout, idle: c.TCP.IdleTimeout,
		metrics: s.tcpMetrics.forService(name),
		open:    map[string]int{},
	}, nil
}

// take picks a ready endpoint with a free slot, avoiding tried ones while
// another exists, and takes the slot; when every ready endpoint is full it
// queues for up to queue_timeout (0: errTCPFull at once). With no ready
// endpoint it returns the *discovery.NoEndpointsError.
func (t *tcpService) take(ctx context.Context, tried []string) (*tcpSlot, error) {
	if !t.started.Load() {
		// Wait for the source's first set outside mu.
		if _, err := t.stack.Discovery().Pick(ctx); err != nil && !errors.Is(err, discovery.ErrNoEndpoints) {
			return nil, err
		}
		t.started.Store(true)
	}
	var (
		w     *tcpWaiter
		timer *time.Timer
	)
	t.mu.Lock()
	for {
		if w == nil && len(t.queue) == 0 || w != nil && t.queue[0] == w {
			slot, err := t.pickLocked(ctx, tried)
			if err == nil || !errors.Is(err, errTCPFull) {
				if w != nil {
					t.leaveLocked(w)
					timer.Stop()
				}
				t.mu.Unlock()
				return slot, err
			}
		}
		if t.queueFor <= 0 {
			t.mu.Unlock()
			return nil, errTCPFull
		}
		if w == nil {
			w = &tcpWaiter{wake: make(chan struct{}, 1)}
			t.queue = append(t.queue, w)
			timer = time.NewTimer(t.queueFor)
		}
		t.mu.Unlock()
		var err error
		select {
		case <-w.wake:
		case <-timer.C:
			err = errTCPQueueTimeout
		case <-ctx.Done():
			err = ctx.Err()
		}
		t.mu.Lock()
		if err != nil {
			t.leaveLocked(w)
			timer.Stop()
			t.mu.Unlock()
			return nil, err
		}
	}
}

// pickLocked picks with the full endpoints counted as tried, and takes the
// pick's slot; errTCPFull when the pick is full (so is every other ready
// endpoint not tried yet).
func (t *tcpService) pickLocked(ctx context.Context, tried []string) (*tcpSlot, error) {
	rec := attempt.NewRecord()
	for _, a := range tried {
		rec.AddTried(a)
	}
	if t.maxConns > 0 {
		for a, n := range t.open {
			if n >= t.maxConns {
				rec.AddTried(a)
			}
		}
	}
	h, err := t.stack.Discovery().PickHold(attempt.WithRecord(ctx, rec))
	if err != nil {
		return nil, err
	}
	addr := h.Address()
	if t.maxConns > 0 && t.open[addr] >= t.maxConns {
		h.Release()
		return nil, errTCPFull
	}
	t.open[addr]++
	return &tcpSlot{t: t, hold: h, addr: addr}, nil
}

// leaveLocked takes w out of the queue and signals the new head.
func (t *tcpService) leaveLocked(w *tcpWaiter) {
	for i, q := range t.queue {
		if q == w {
			t.queue = append(t.queue[:i], t.queue[i+1:]...)
			break
		}
	}
	t.signalHeadLocked()
}

func (t *tcpService) signalHeadLocked() {
	if len(t.queue) > 0 {
		select {
		case t.queue[0].wake <- struct{}{}:
		default:
		}
	}
}

// release frees the slot and the hold, and lets the queue's head try.
func (s *tcpSlot) release() {
	s.once.Do(func() {
		s.hold.Release()
		t := s.t
		t.mu.Lock()
		if t.open[s.addr]--; t.open[s.addr] <= 0 {
			delete(t.open, s.addr)
		}
		t.signalHeadLocked()
		t.mu.Unlock()
	})
}

func (t *tcpService) close() error {
	if err := t.stack.Close(); err != nil {
		return fmt.Errorf("tcp service %s: %w", t.name, err)
	}
	return nil
}

// newTCPEntry builds the serviceEntry of a tcp service: no HTTP stack or
// reverse proxy, its tcpService instead.
func (s *Server) newTCPEntry(name string, c ambassador.ServiceConfig) (*serviceEntry, error) {
	t, err := s.newTCPService(name, c)
	if err != nil {
		return nil, err
	}
	return &serviceEntry{name: name, cfg: c, tcp: t, logger: s.opts.logger, maxActive: int64(c.MaxConcurrentRequests)}, nil
}

// discovery returns the entry's discovery service, HTTP or tcp.
func (e *serviceEntry) discovery() *discovery.Service {
	if e.tcp != nil {
		return e.tcp.stack.Discovery()
	}
	return e.stack.Discovery()
}

// breaker returns the entry's breaker, nil without one.
func (e *serviceEntry) breaker() *breaker.Breaker {
	if e.tcp != nil {
		return e.tcp.stack.Breaker()
	}
	return e.stack.Breaker()
}

// limiter returns the entry's rate limiter, nil without one (always for tcp).
func (e *serviceEntry) limiter() *ratelimit.Limiter {
	if e.tcp != nil {
		return nil
	}
	return e.stack.Limiter()
}

// queued returns how many client connections wait for a slot.
func (t *tcpService) queued() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue)
}
