package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/internal/clock"
)

// Service keeps the live endpoint set of one logical service and picks one
// endpoint per attempt.
//
// The set comes from a Source and is held as an immutable snapshot behind
// an atomic pointer: a source update builds a new snapshot (and, for
// round_robin, its schedule) and swaps it in, so picks never wait for an
// update and updates never wait for picks. Per-endpoint state — in-flight
// count, peak-EWMA latency, health-check result — lives in an object per
// address that survives updates while the address stays in the set, and is
// shared by the HTTP RoundTripper and the gRPC balancers of this Service.
//
// Use it through RoundTripper (HTTP) or DialOptions and Target (gRPC);
// Endpoints reports the set for status pages. A Service is safe for
// concurrent use. Its goroutines (the source's watch and, when health_check
// is configured, the health checker) run until Close, or only while in use
// with WithStartOnUse.
type Service struct {
	name   string
	cfg    Config // with defaults applied
	kind   balancerKind
	health Health
	host   string
	log    *slog.Logger
	clock  Clock
	// preserve: req.Host as the caller set it (WithPreservedHost).
	preserve bool

	snap  atomic.Pointer[snapshot]
	ctr   atomic.Uint64
	first chan struct{} // closed once the first set (or first error) is known
	once  sync.Once

	mu  sync.Mutex // guards eps; held by the update path only
	eps map[string]*endpoint

	lmu       sync.Mutex
	listeners map[*grpcResolver]struct{}

	errNone error // returned (shared) when no endpoint is ready

	checkClient *http.Client
	ownedTr     *http.Transport

	src       Source // nil for a static source, applied once
	onUse     bool   // WithStartOnUse
	run       runState
	closeOnce sync.Once
	reg       metric.Registration
}

// NoEndpointsError is the error a pick returns when the service has no ready
// endpoint. It wraps ErrNoEndpoints, and its GRPCStatus is codes.Unavailable,
// so gRPC callers get that code while errors.Is(err, ErrNoEndpoints) holds.
type NoEndpointsError struct {
	Service string
	st      *status.Status
}

func (e *NoEndpointsError) Error() string {
	return fmt.Sprintf("discovery: service %q: no ready endpoints", e.Service)
}

// Unwrap returns ErrNoEndpoints.
func (e *NoEndpointsError) Unwrap() error { return ErrNoEndpoints }

// GRPCStatus reports codes.Unavailable.
func (e *NoEndpointsError) GRPCStatus() *status.Status { return e.st }

func newNoEndpointsError(service string) *NoEndpointsError {
	e := &NoEndpointsError{Service: service}
	e.st = status.New(codes.Unavailable, e.Error())
	return e
}

// NewService starts keeping the endpoints src reports for the logical service
// name, balanced and health-checked as c says. c's source keys (static, dns,
// srv, file) are ignored here, so a c that names none is fine; the rest of c
// is validated. The caller must Close the Service.
//
// A pick made before src has reported its first set waits for it (or for the
// request's context); Static sources are applied before NewService returns.
func NewService(name string, src Source, c Config, opts ...Option) (*Service, error) {
	if name == "" {
		return nil, errors.New("discovery: service name is empty")
	}
	if src == nil {
		return nil, fmt.Errorf("discovery: service %q: nil Source", name)
	}
	if err := c.validate(false); err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	c = c.withDefaults()
	s := &Service{
		name:      name,
		cfg:       c,
		kind:      kindOf(c.Balancer),
		health:    o.health,
		host:      o.host,
		log:       o.logger.With("service", name),
		clock:     clock.OrReal(o.clock),
		first:     make(chan struct{}),
		eps:       make(map[string]*endpoint),
		listeners: make(map[*grpcResolver]struct{}),
		errNone:   newNoEndpointsError(name),
	}
	s.preserve = o.preserveHost
	s.ctr.Store(rand.Uint64()) // clients of one service do not start in step
	if err := s.registerMetrics(o.meter); err != nil {
		return nil, err
	}
	if c.HealthCheck.Path != "" {
		if o.httpClient != nil {
			cc := *o.httpClient // a copy: the caller's client is not changed
			s.checkClient = &cc
		} else {
			// No proxy from the environment: checks go straight to the endpoint.
			s.ownedTr = &http.Transport{
				MaxIdleConnsPerHost: 1,
				IdleConnTimeout:     2 * c.HealthCheck.Interval,
				DisableCompression:  true,
			}
			s.checkClient = &http.Client{Transport: s.ownedTr}
		}
		// A 3xx is the endpoint's answer and passes: where it points is not
		// checked (an HTTPS redirect or a login page would fail the check).
		s.checkClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	s.start(src, o.startOnUse)
	return s, nil
}

// Name returns the logical service name.
func (s *Service) Name() string { return s.name }

// Close stops the goroutines the Service started (the source's watch and
// the health checks) and waits for them; it is safe to call more than once
// and returns nil or the first error. It also closes the idle connections
// of the Service's own health-check client and unregisters its gauge.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.stopAll()
		if s.reg != nil {
			_ = s.reg.Unregister()
		}
		if s.ownedTr != nil {
			s.ownedTr.CloseIdleConnections()
		}
		s.markFirst()
	})
	return nil
}

func (s *Service) markFirst() { s.once.Do(func() { close(s.first) }) }

// update applies one report of the source. It is called from the source's
// Watch, never concurrently.
func (s *Service) update(eps []Endpoint, err error) {
	if err != nil {
		s.log.Warn("discovery: source failed; keeping the last endpoint set", "err", err)
		if cur := s.snap.Load(); cur == nil || cur.err != nil {
			// No set yet: picks fail at once, and grpc is told why, so
			// its calls fail rather than wait for a resolver state.
			s.snap.Store(&snapshot{err: err})
			s.markFirst()
			s.notifyResolvers()
			return
		}
		s.markFirst()
		return
	}
	s.mu.Lock()
	seen := make(map[string]bool, len(eps))
	members := make([]member, 0, len(eps))
	added := 0
	for _, e := range eps {
		if err := checkHostPort(e.Address); err != nil {
			s.log.Warn("discovery: skipping endpoint", "err", err)
			continue
		}
		e.Address = canonicalAddress(e.Address)
		if seen[e.Address] {
			continue
		}
		seen[e.Address] = true
		ep := s.eps[e.Address]
		if ep == nil {
			ep = newEndpoint(e.Address, s)
			s.eps[e.Address] = ep
			added++
		}
		members = append(members, newMember(ep, e.Weight, e.Metadata))
	}
	removed := 0
	for a := range s.eps {
		if !seen[a] {
			delete(s.eps, a)
			removed++
		}
	}
	// Every balancer uses the schedule: round_robin walks it, the P2C
	// balancers sample their candidates from it by weight.
	snap := &snapshot{members: members, schedule: buildSchedule(members)}
	s.snap.Store(snap)
	s.mu.Unlock()
	if added > 0 || removed > 0 {
		s.log.Info("discovery: endpoint set changed", "endpoints", len(members), "added", added, "removed", removed)
	}
	s.markFirst()
	s.notifyResolvers()
}

// current returns the snapshot, waiting for the source's first report if
// there is none yet.
func (s *Service) current(ctx context.Context) *snapshot {
	if s.onUse {
		s.pin()
	}
	if snap := s.snap.Load(); snap != nil {
		return snap
	}
	select {
	case <-s.first:
	case <-ctx.Done():
	}
	return s.snap.Load()
}

// pick chooses the endpoint for one attempt and records it in rec.
func (s *Service) pick(ctx context.Context, rec *attempt.Record) (*endpoint, error) {
	snap := s.current(ctx)
	i := choose(s.kind, snap, &s.ctr, rec)
	if i < 0 {
		if err := ctx.Err(); err != nil && snap == nil {
			return nil, fmt.Errorf("discovery: service %q: waiting for endpoints: %w", s.name, err)
		}
		return nil, s.errNone
	}
	ep := snap.members[i].ep
	if rec != nil {
		rec.AddTried(ep.addr)
	}
	return ep, nil
}

// Pick chooses an endpoint for one attempt of the request ctx belongs to and
// returns its address, as the RoundTripper does: it avoids endpoints this
// logical request already tried (the attempt record the retry layer keeps in
// ctx) while another ready one exists, skips endpoints that are not ready, and
// records the pick in the attempt record. With no ready endpoint it returns a
// *NoEndpointsError (errors.Is(err, ErrNoEndpoints)). Pick does not count the
// attempt in the endpoint's load; the RoundTripper and gRPC balancers do.
func (s *Service) Pick(ctx context.Context) (string, error) {
	rec, _ := attempt.FromContext(ctx)
	ep, err := s.pick(ctx, rec)
	if err != nil {
		return "", err
	}
	return ep.addr, nil
}

// EndpointStatus is one endpoint as Endpoints reports it.
type EndpointStatus struct {
	Address string
	Weight  int
	// Ready is false while the endpoint fails its active health check or the
	// Health option reports it unready.
	Ready    bool
	InFlight int
	// EWMA is the endpoint's current peak-EWMA latency (0 before its first
	// answer); it is tracked whichever balancer is configured.
	EWMA     time.Duration
	Metadata map[string]string
	// Requests counts the attempts sent to the endpoint whose outcome was
	// seen (an attempt the caller cancelled is not counted); Failures counts
	// those that failed (transport error, 5xx, 429, or a gRPC server-side
	// failure). Both live with the endpoint: they survive set updates.
	Requests, Failures int64
	// LastError says why the last failed attempt failed ("" before one):
	// the transport error, or the upstream's status line such as "503
	// Service Unavailable".
	LastError string
}

// Endpoints returns a snapshot of the current endpoint set, in source order.
func (s *Service) Endpoints() []EndpointStatus {
	snap := s.snap.Load()
	if snap == nil {
		return nil
	}
	now := monoNow()
	out := make([]EndpointStatus, len(snap.members))
	for i, m := range snap.members {
		lat, _, _ := m.ep.latency(now)
		out[i] = EndpointStatus{
			Address:  m.ep.addr,
			Weight:   m.weight,
			Ready:    m.ep.ready(),
			InFlight: int(m.ep.inflight.Load()),
			EWMA:     time.Duration(lat),
			Metadata: maps.Clone(m.meta),
			Requests: m.ep.requests.Load(),
			Failures: m.ep.failures.Load(),
		}
		if p := m.ep.lastErr.Load(); p != nil {
			out[i].LastError = *p
		}
	}
	return out
}

func (s *Service) registerMetrics(mp metric.MeterProvider) error {
	meter := mp.Meter("github.com/outbound-go/outbound/discovery")
	g, err := meter.Int64ObservableGauge("outbound.discovery.endpoints",
		metric.WithDescription("Endpoints of a service, by readiness."),
		metric.WithUnit("{endpoint}"))
	if err != nil {
		return fmt.Errorf("discovery: gauge: %w", err)
	}
	readyOpt := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("service", s.name), attribute.Bool("ready", true)))
	unreadyOpt := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("service", s.name), attribute.Bool("ready", false)))
	s.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		snap := s.snap.Load()
		if snap == nil {
			return nil
		}
		ready := 0
		for i := range snap.members {
			if snap.members[i].ep.ready() {
				ready++
			}
		}
		o.ObserveInt64(g, int64(ready), readyOpt)
		o.ObserveInt64(g, int64(len(snap.members)-ready), unreadyOpt)
		return nil
	}, g)
	if err != nil {
		return fmt.Errorf("discovery: gauge callback: %w", err)
	}
	return nil
}
