package breaker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel"

	"github.com/outbound-go/outbound/internal/clock"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// State is the state of one key's breaker.
type State int

// The three breaker states.
const (
	// StateClosed lets every request through and counts failures.
	StateClosed State = iota
	// StateHalfOpen lets HalfOpenRequests probes through after OpenTimeout.
	StateHalfOpen
	// StateOpen refuses every request with ErrOpen.
	StateOpen
)

// String returns "closed", "half_open" or "open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half_open"
	case StateOpen:
		return "open"
	default:
		return fmt.Sprintf("State(%d)", int(s))
	}
}

func fromGobreaker(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	case gobreaker.StateOpen:
		return StateOpen
	default:
		return StateClosed
	}
}

// Breaker keeps one circuit breaker (a gobreaker state machine) per key,
// created on a key's first request and dropped when idle. It is safe for
// concurrent use. See the package documentation for the model.
type Breaker struct {
	cfg          Config
	opts         options
	settings     gobreaker.Settings // template; Name is set per key
	grpcFailures uint64             // bit i set: codes.Code(i) is a failure

	clock   Clock
	epoch   time.Time
	idleTTL int64 // ns without use after which an idle key may go

	mu        sync.RWMutex
	keys      map[mkey]*entry
	lastSweep int64
	// last is the entry the latest acquire of a key without a method part
	// found (see acquire). Invariant: nil or an entry whose dropped was
	// false when it was stored; an entry leaving the table is marked
	// dropped first, so the shortcut never takes it.
	last atomic.Pointer[entry]
	// lastTarget is the first gRPC target a call came through and its key
	// (keyOfTarget); set once, never replaced.
	lastTarget atomic.Pointer[targetMemo]
	// notClosedN counts the entries that are not closed, or more (see
	// countNotClosed): at zero, Ready answers true without the table.
	notClosedN atomic.Int64

	evMu     sync.Mutex
	events   []event
	pending  atomic.Bool
	draining atomic.Bool

	transitions metric.Int64Counter
	rejections  metric.Int64Counter
}

// rejection holds what a refused request gets, built on the key's first
// refusal and shared by all after it.
type rejection struct {
	err     *OpenError
	grpcErr *grpcOpenError
	attrs   []metric.AddOption
}

var (
	errFailure = errors.New("breaker: failure")
	errIgnored = errors.New("breaker: ignored")
)

// New returns a Breaker for c. It returns c.Validate's error if c is bad.
func New(c Config, opts ...Option) (*Breaker, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := &Breaker{
		cfg:          c.withDefaults(),
		keys:         make(map[mkey]*entry),
		grpcFailures: c.grpcFailureMask(),
	}
	for _, o := range opts {
		if o != nil {
			o(&b.opts)
		}
	}
	b.clock = clock.OrReal(b.opts.clock)
	b.epoch = b.clock.Now()
	if b.opts.meter == nil {
		b.opts.meter = otel.GetMeterProvider()
	}
	if b.opts.classifier == nil {
		b.opts.classifier = DefaultClassifier
	}
	ttl := max(b.cfg.Interval, b.cfg.OpenTimeout)
	b.idleTTL = int64(ttl)
	b.settings = gobreaker.Settings{
		MaxRequests:   uint32(b.cfg.HalfOpenRequests),
		Interval:      b.cfg.Interval,
		Timeout:       b.cfg.OpenTimeout,
		ReadyToTrip:   b.readyToTrip,
		OnStateChange: b.record,
		IsSuccessful:  func(err error) bool { return err == nil },
		IsExcluded:    func(err error) bool { return err == errIgnored },
	}
	m := b.opts.meter.Meter("github.com/outbound-go/outbound/breaker")
	var err error
	b.transitions, err = m.Int64Counter("outbound.breaker.transitions",
		metric.WithDescription("Breaker state changes, by endpoint (key), from and to state."),
		metric.WithUnit("{transition}"))
	if err != nil {
		return nil, fmt.Errorf("breaker: creating instrument outbound.breaker.transitions: %w", err)
	}
	b.rejections, err = m.Int64Counter("outbound.breaker.rejections",
		metric.WithDescription("Requests refused by an open or saturated half-open breaker, by endpoint (key)."),
		metric.WithUnit("{request}"))
	if err != nil {
		return nil, fmt.Errorf("breaker: creating instrument outbound.breaker.rejections: %w", err)
	}
	return b, nil
}

func (b *Breaker) readyToTrip(c gobreaker.Counts) bool {
	if c.ConsecutiveFailures >= uint32(b.cfg.ConsecutiveFailures) {
		return true
	}
	if b.cfg.FailureRatio > 0 {
		done := uint64(c.TotalFailures) + uint64(c.TotalSuccesses)
		if done >= uint64(b.cfg.MinRequests) && done > 0 &&
			float64(c.TotalFailures)/float64(done) >= b.cfg.FailureRatio {
			return true
		}
	}
	return false
}

// outcomeErr turns the outcome of a request into what gobreaker counts. An
// ignored request counts as nothing in every state: a half-open probe the
// caller gave up on proves nothing about the upstream, and its slot goes
// to the next request. (A probe cut by a timeout of this module's own,
// per-try or service, is a failure, not ignored: see DefaultClassifier. So
// a hanging upstream is not probed without end.)
func outcomeErr(o Outcome) error {
	switch o {
	case Failure:
		return errFailure
	case Ignore:
		return errIgnored
	default:
		return nil
	}
}

// Ready reports whether endpoint's breaker would let a request through now:
// true when there is no breaker for it, when it is closed, and when it is
// half-open with probe slots left. It takes no probe slot and counts no
// request, so discovery can ask it for every candidate endpoint; it does
// not allocate.
func (b *Breaker) Ready(endpoint string) bool {
	if b.notClosedN.Load() <= 0 {
		// Every breaker in the table is closed (a key not in it is
		// ready too): the common case needs no lookup.
		return true
	}
	e := b.lookup(endpoint)
	if e == nil {
		return true
	}
	if !e.notClosed.Load() {
		b.flush()
		return true
	}
	ready := false
	switch e.cb.State() {
	case gobreaker.StateClosed:
		ready = true
	case gobreaker.StateHalfOpen:
		c := e.cb.Counts()
		admitted := uint32(0)
		if c.Requests > c.TotalExclusions {
			admitted = c.Requests - c.TotalExclusions
		}
		// Counts are cleared on every state change: check the state again
		// so that a probe failing in between does not read as free slots.
		ready = admitted < uint32(b.cfg.HalfOpenRequests) && e.cb.State() == gobreaker.StateHalfOpen
	}
	b.flush()
	return ready
}

// State returns key's state; StateClosed for a key without a breaker.
func (b *Breaker) State(key string) State {
	e := b.lookup(key)
	if e == nil {
		return StateClosed
	}
	s := fromGobreaker(e.cb.State())
	b.flush()
	return s
}

// KeyState is one key's breaker, as Snapshot reports it.
type KeyState struct {
	Key   string
	State State
	// The counts of the current generation (they start over on every state
	// change and, while closed, every Interval).
	Requests            int
	Successes           int
	Failures            int
	ConsecutiveFailures int
	// InFlight is the number of requests through this key not finished yet.
	InFlight int
}

// Snapshot returns the state of every key the Breaker holds, sorted by key.
func (b *Breaker) Snapshot() []KeyState {
	b.mu.RLock()
	es := make([]*entry, 0, len(b.keys))
	for _, e := range b.keys {
		es = append(es, e)
	}
	b.mu.RUnlock()
	out := make([]KeyState, 0, len(es))
	for _, e := range es {
		s := e.cb.State()
		c := e.cb.Counts()
		out = append(out, KeyState{
			Key:                 e.key,
			State:               fromGobreaker(s),
			Requests:            int(c.Requests),
			Successes:           int(c.TotalSuccesses),
			Failures:            int(c.TotalFailures),
			ConsecutiveFailures: int(c.ConsecutiveFailures),
			InFlight:            int(e.inflight.Load()),
		})
	}
	b.flush()
	slices.SortFunc(out, func(x, y KeyState) int { return strings.Compare(x.Key, y.Key) })
	return out
}

// Len returns the number of keys the Breaker holds now.
func (b *Breaker) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.keys)
}

// Close stops the goroutines the Breaker started and waits for them; it is
// safe to call more than once and returns nil or the first error. A
// Breaker starts none of its own (a gRPC stream's accounting ends with the
// stream), so Close returns nil; it also drops every key, and the Breaker
// stays usable and starts afresh.
func (b *Breaker) Close() error {
	b.mu.Lock()
	for _, e := range b.keys {
		e.dropped.Store(true)
		e.gone.Store(true)
		b.countNotClosed(e, false)
	}
	clear(b.keys)
	b.last.Store(nil)
	b.mu.Unlock()
	return nil
}

// rejection returns e's shared refusal, building it on first use.
func (b *Breaker) rejection(e *entry) *rejection {
	if r := e.rej.Load(); r != nil {
		return r
	}
	open := &OpenError{Key: e.key}
	attrs := []attribute.KeyValue{attribute.String("endpoint", e.key)}
	if b.opts.service != "" {
		attrs = append(attrs, attribute.String("service", b.opts.service))
	}
	r := &rejection{
		err:     open,
		grpcErr: newGRPCOpenError(open),
		attrs:   []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrs...))},
	}
	if e.rej.CompareAndSwap(nil, r) {
		return r
	}
	return e.rej.Load()
}

// reject counts a refusal of e and returns what to give the caller.
func (b *Breaker) reject(e *entry) *rejection {
	r := b.rejection(e)
	b.rejections.Add(context.Background(), 1, r.attrs...)
	return r
}
