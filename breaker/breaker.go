package breaker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbound-go/outbound/internal/refusal"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
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

// Outcome is how a classifier counts one finished request.
type Outcome int

// The outcomes a classifier may return.
const (
	// Success counts the request as a success.
	Success Outcome = iota
	// Failure counts the request as a failure of its key's upstream.
	Failure
	// Ignore counts the request as neither (the caller gave up, say).
	Ignore
)

// Option configures what is not data: providers, callbacks, key and
// classification functions.
type Option func(*options)

type options struct {
	meter         metric.MeterProvider
	service       string
	keyFunc       func(*http.Request) string
	classifier    func(*http.Request, *http.Response, error) Outcome
	grpcFailures  uint64 // bit i set: codes.Code(i) is a failure
	grpcMethodKey bool
	onStateChange func(key string, from, to State)
}

// WithMeterProvider sets the meter provider of the breaker's instruments;
// the global one by default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meter = mp }
}

// WithService adds the attribute service=name to the breaker's instruments.
func WithService(name string) Option {
	return func(o *options) { o.service = name }
}

// WithKeyFunc chooses the breaker key of an HTTP request; the default is
// req.URL.Host (the concrete endpoint, host:port). The function runs on
// every request: it should not allocate.
func WithKeyFunc(f func(*http.Request) string) Option {
	return func(o *options) { o.keyFunc = f }
}

// WithClassifier replaces DefaultClassifier for HTTP requests. It is called
// once per request that was sent, when the response headers (or the
// transport error) arrive.
func WithClassifier(f func(req *http.Request, resp *http.Response, err error) Outcome) Option {
	return func(o *options) { o.classifier = f }
}

// WithGRPCFailureCodes replaces the gRPC codes that count as failures;
// DefaultGRPCFailureCodes by default. Any other code counts as a success.
// DEADLINE_EXCEEDED and CANCELED never count when the caller's own context
// is done.
func WithGRPCFailureCodes(cs ...codes.Code) Option {
	return func(o *options) { o.grpcFailures = codeMask(cs) }
}

// WithGRPCMethodKey makes the gRPC interceptors keep one breaker per target
// and method (key "TARGET/pkg.Service/Method") instead of one per target.
func WithGRPCMethodKey() Option {
	return func(o *options) { o.grpcMethodKey = true }
}

// WithOnStateChange registers f to be told of every state change of every
// key. f is never called under a lock: a change is recorded while
// gobreaker holds its mutex and handed to f afterwards, in order, on the
// goroutine of a call into the Breaker (a request, Ready, State, Snapshot).
// f may call into the Breaker.
func WithOnStateChange(f func(key string, from, to State)) Option {
	return func(o *options) { o.onStateChange = f }
}

// DefaultGRPCFailureCodes returns the gRPC codes that count as failures by
// default: UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, DATA_LOSS.
func DefaultGRPCFailureCodes() []codes.Code {
	return []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss}
}

func codeMask(cs []codes.Code) uint64 {
	var m uint64
	for _, c := range cs {
		if c < 64 {
			m |= 1 << c
		}
	}
	return m
}

// Breaker keeps one circuit breaker (a gobreaker state machine) per key,
// created on a key's first request and dropped when idle. It is safe for
// concurrent use. See the package documentation for the model.
type Breaker struct {
	cfg      Config
	opts     options
	settings gobreaker.Settings // template; Name is set per key

	epoch   time.Time
	idleTTL int64 // ns without use after which an idle key may go

	mu        sync.RWMutex
	keys      map[mkey]*entry
	lastSweep int64

	evMu     sync.Mutex
	events   []event
	pending  atomic.Bool
	draining atomic.Bool

	transitions metric.Int64Counter
	rejections  metric.Int64Counter
}

// mkey is the map key: a, plus b for gRPC method keys, so that building a
// key never concatenates strings on the request path.
type mkey struct{ a, b string }

type entry struct {
	key      string
	cb       *gobreaker.CircuitBreaker[struct{}]
	last     int64       // ns since Breaker.epoch: creation or the last sweep that saw it used; under b.mu
	used     atomic.Bool // used since the last sweep
	inflight atomic.Int32
	rej      atomic.Pointer[rejection]
}

// rejection holds what a refused request gets, built on the key's first
// refusal and shared by all after it.
type rejection struct {
	err     *OpenError
	grpcErr *grpcOpenError
	attrs   []metric.AddOption
}

type event struct {
	key      string
	from, to State
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
		cfg:   c.withDefaults(),
		epoch: time.Now(),
		keys:  make(map[mkey]*entry),
		opts:  options{grpcFailures: codeMask(DefaultGRPCFailureCodes())},
	}
	for _, o := range opts {
		if o != nil {
			o(&b.opts)
		}
	}
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

// DefaultClassifier counts a transport error as a failure unless it is the
// caller's own cancellation (context.Canceled or DeadlineExceeded while the
// request's context is done) or a local refusal of a layer below (Ignore);
// a 5xx response other than 501 Not Implemented as a failure; and every other
// response, 4xx included, as a success.
func DefaultClassifier(req *http.Request, resp *http.Response, err error) Outcome {
	if err != nil {
		if (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && callerDone(req.Context()) {
			return Ignore
		}
		if refusal.Is(err) {
			return Ignore
		}
		return Failure
	}
	if resp != nil && resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented {
		return Failure
	}
	return Success
}

// callerDone reports whether the caller's context is cancelled or its
// deadline has passed. The deadline is looked at too because a gRPC server
// enforces the propagated deadline itself and its DEADLINE_EXCEEDED can
// arrive just before the client's own timer fires.
func callerDone(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

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

func (b *Breaker) now() int64 { return int64(time.Since(b.epoch)) }

// use marks e as used since the last sweep. The request path reads no
// clock of its own (a clock read costs more than the rest of it on some
// machines); sweeps turn the mark into a time stamp.
func (e *entry) use() {
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// acquire returns k's entry, creating it if needed, with one more request
// in flight; nil when the key table is full of keys that may not be
// evicted (the request then goes through untracked).
func (b *Breaker) acquire(k mkey) *entry {
	b.mu.RLock()
	e := b.keys[k]
	if e != nil {
		e.inflight.Add(1) // under the read lock, so a sweep cannot drop e now
	}
	b.mu.RUnlock()
	if e != nil {
		e.use()
		return e
	}
	return b.create(k)
}

func (b *Breaker) release(e *entry) {
	e.use()
	e.inflight.Add(-1)
}

func (b *Breaker) create(k mkey) *entry {
	now := b.now()
	b.mu.Lock()
	e := b.keys[k]
	if e == nil {
		if len(b.keys) >= b.cfg.MaxKeys || now-b.lastSweep > b.idleTTL/2 {
			b.sweepLocked(now)
		}
		if len(b.keys) >= b.cfg.MaxKeys {
			b.evictLRULocked()
		}
		if len(b.keys) < b.cfg.MaxKeys {
			st := b.settings
			st.Name = k.a + k.b
			e = &entry{key: st.Name, cb: gobreaker.NewCircuitBreaker[struct{}](st)}
			e.last = now
			b.keys[k] = e
		}
	}
	if e != nil {
		e.inflight.Add(1)
		e.use()
	}
	b.mu.Unlock()
	b.flush() // evictLRULocked may have moved an open breaker to half-open
	return e
}

// sweepLocked stamps the keys used since the last sweep with now, and
// drops every key with nothing in flight whose stamp is older than
// max(interval, open_timeout). A stamp is never earlier than the key's last
// use, so no key goes before it was idle that long. b.mu must be held for
// writing (the used marks are atomics; requests set them under the read
// lock or none).
func (b *Breaker) sweepLocked(now int64) {
	b.lastSweep = now
	for k, e := range b.keys {
		if e.used.Load() {
			e.used.Store(false)
			e.last = now
			continue
		}
		if e.inflight.Load() == 0 && now-e.last > b.idleTTL {
			delete(b.keys, k)
		}
	}
}

// evictLRULocked makes room when the table is full of recently used keys:
// it drops the least recently used keys that are not open and have nothing
// in flight, down to 15/16 of MaxKeys. b.mu must be held for writing.
func (b *Breaker) evictLRULocked() {
	type cand struct {
		k    mkey
		last int64
	}
	var cands []cand
	for k, e := range b.keys {
		if e.inflight.Load() == 0 && e.cb.State() != gobreaker.StateOpen {
			cands = append(cands, cand{k, e.last}) // sweepLocked just stamped the used ones
		}
	}
	slices.SortFunc(cands, func(x, y cand) int {
		switch {
		case x.last < y.last:
			return -1
		case x.last > y.last:
			return 1
		}
		return 0
	})
	target := b.cfg.MaxKeys - max(1, b.cfg.MaxKeys/16)
	for _, c := range cands {
		if len(b.keys) <= target {
			break
		}
		delete(b.keys, c.k)
	}
}

// lookup finds key's entry without creating it or counting a request.
func (b *Breaker) lookup(key string) *entry {
	b.mu.RLock()
	e := b.keys[mkey{a: key}]
	if e == nil && b.opts.grpcMethodKey {
		// "TARGET/pkg.Service/Method": the method is the last two segments.
		if i := strings.LastIndexByte(key, '/'); i > 0 {
			if j := strings.LastIndexByte(key[:i], '/'); j >= 0 {
				e = b.keys[mkey{a: key[:j], b: key[j:]}]
			}
		}
	}
	b.mu.RUnlock()
	return e
}

// Ready reports whether endpoint's breaker would let a request through now:
// true when there is no breaker for it, when it is closed, and when it is
// half-open with probe slots left. It takes no probe slot and counts no
// request, so discovery can ask it for every candidate endpoint; it does
// not allocate.
func (b *Breaker) Ready(endpoint string) bool {
	e := b.lookup(endpoint)
	if e == nil {
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

// Close drops every key. The Breaker starts no goroutine of its own (a
// gRPC stream's accounting ends with the stream), so there is nothing to
// stop; it stays usable and starts afresh.
func (b *Breaker) Close() error {
	b.mu.Lock()
	clear(b.keys)
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

// record is gobreaker's OnStateChange: it runs under the gobreaker mutex,
// so it only queues the event; flush hands it out.
func (b *Breaker) record(name string, from, to gobreaker.State) {
	b.evMu.Lock()
	b.events = append(b.events, event{key: name, from: fromGobreaker(from), to: fromGobreaker(to)})
	b.pending.Store(true)
	b.evMu.Unlock()
}

// flush emits queued state changes, holding no lock while it does. One
// goroutine drains at a time, so events come out in the order they
// happened; a goroutine that finds another draining leaves its events to it.
func (b *Breaker) flush() {
	for b.pending.Load() {
		if !b.draining.CompareAndSwap(false, true) {
			return
		}
		b.drain()
	}
}

func (b *Breaker) drain() {
	defer b.draining.Store(false)
	for {
		b.evMu.Lock()
		evs := b.events
		b.events = nil
		if len(evs) == 0 {
			b.pending.Store(false)
		}
		b.evMu.Unlock()
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			b.emit(ev)
		}
	}
}

func (b *Breaker) emit(ev event) {
	attrs := []attribute.KeyValue{
		attribute.String("endpoint", ev.key),
		attribute.String("from", ev.from.String()),
		attribute.String("to", ev.to.String()),
	}
	if b.opts.service != "" {
		attrs = append(attrs, attribute.String("service", b.opts.service))
	}
	b.transitions.Add(context.Background(), 1, metric.WithAttributes(attrs...))
	if f := b.opts.onStateChange; f != nil {
		f(ev.key, ev.from, ev.to)
	}
}
