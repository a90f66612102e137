// TEMPORARY STUB for parallel development; deleted at merge.
package discovery

import (
	"log/slog"

	"context"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/metric"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
)

type staticSrc []Endpoint

func (s staticSrc) Watch(ctx context.Context, update func([]Endpoint, error)) { update(s, nil) }

func Static(addrs ...string) Source {
	var s staticSrc
	for _, a := range addrs {
		s = append(s, Endpoint{Address: a, Weight: 1})
	}
	return s
}
func DNS(hostport, resolver string, refresh time.Duration) (Source, error) {
	return nil, errors.New("stub")
}
func SRV(name, resolver string, refresh time.Duration) (Source, error) {
	return nil, errors.New("stub")
}
func File(path string) (Source, error) { return nil, errors.New("stub") }
func FromConfig(c Config) (Source, error) {
	if len(c.Static) > 0 {
		return Static(c.Static...), nil
	}
	return nil, errors.New("discovery: no source: set one of static, dns, srv, file")
}
func (c Config) Validate() error { return nil }

type Health interface{ Ready(endpoint string) bool }
type Option func(*Service)

func WithHealth(h Health) Option { return func(s *Service) { s.h = h } }

type EndpointStatus struct {
	Address  string
	Weight   int
	Ready    bool
	InFlight int
	EWMA     time.Duration
	Metadata map[string]string
}
type Service struct {
	name string
	eps  []Endpoint
	n    atomic.Uint64
	h    Health
}

func NewService(name string, src Source, c Config, opts ...Option) (*Service, error) {
	s := &Service{name: name}
	for _, o := range opts {
		o(s)
	}
	src.Watch(context.Background(), func(e []Endpoint, err error) { s.eps = e })
	return s, nil
}
func (s *Service) Name() string { return s.name }

type rt func(*http.Request) (*http.Response, error)

func (f rt) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (s *Service) RoundTripper(next http.RoundTripper) http.RoundTripper {
	return rt(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host != s.name {
			return next.RoundTrip(r)
		}
		if len(s.eps) == 0 {
			return nil, fmt.Errorf("service %s: %w", s.name, ErrNoEndpoints)
		}
		ep := s.eps[s.n.Add(1)%uint64(len(s.eps))]
		r2 := *r
		u := *r.URL
		u.Host = ep.Address
		r2.URL = &u
		r2.Host = ""
		return next.RoundTrip(&r2)
	})
}
func (s *Service) Endpoints() []EndpointStatus {
	var out []EndpointStatus
	for _, e := range s.eps {
		out = append(out, EndpointStatus{Address: e.Address, Weight: 1, Ready: true})
	}
	return out
}
func (s *Service) Close() error                      { return nil }
func (s *Service) Target() string                    { return "outbound:///" + s.name }
func (s *Service) ResolverBuilder() resolver.Builder { return nil }
func (s *Service) DialOptions() []grpc.DialOption    { return nil }

// Additive stub API used by package ambassador (real signatures per API.md).
func WithLogger(l *slog.Logger) Option                 { return func(*Service) {} }
func WithMeterProvider(mp metric.MeterProvider) Option { return func(*Service) {} }
