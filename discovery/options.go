package discovery

import (
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/outbound-go/outbound/internal/clock"
)

// Health tells a Service whether an endpoint may take traffic. A
// breaker.Breaker implements it (its Ready method), so an endpoint whose
// breaker is open leaves the pick set until the breaker lets it try again.
// Ready is called on every pick for the sampled candidates: it must be cheap,
// allocation-free and safe for concurrent use.
type Health interface {
	Ready(endpoint string) bool
}

// HealthFunc adapts a function to Health.
type HealthFunc func(endpoint string) bool

// Ready calls f.
func (f HealthFunc) Ready(endpoint string) bool { return f(endpoint) }

// Option configures a Service with what is not data.
type Option func(*options)

type options struct {
	health     Health
	meter      metric.MeterProvider
	logger     *slog.Logger
	httpClient *http.Client
	host       string
	clock      Clock
	startOnUse bool

	// preserveHost keeps the caller's req.Host (WithPreservedHost).
	preserveHost bool
}

func defaultOptions() options {
	return options{meter: otel.GetMeterProvider(), logger: slog.New(slog.DiscardHandler)}
}

// WithHealth sets the passive readiness check: endpoints for which h.Ready is
// false are skipped. Both h and active health checks must pass.
func WithHealth(h Health) Option { return func(o *options) { o.health = h } }

// WithMeterProvider sets the provider of the outbound.discovery.endpoints
// gauge; the global provider by default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) {
		if mp != nil {
			o.meter = mp
		}
	}
}

// WithLogger sets the logger for endpoint-set changes, source errors and
// health-check transitions. Without it the Service logs nothing (it never
// writes to slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// Clock is the time source of a Service, the same shape in retry,
// ratelimit, breaker and discovery.
type Clock = clock.Clock

// WithClock replaces the wall clock that paces health-check rounds (every
// health_check.interval) and the re-resolution of the dns and srv sources
// this package makes (every refresh; the Service hands its clock to the
// Source's Watch through the context); nil keeps the wall clock. Timeouts
// of single checks and lookups, file-watch debouncing and etcd stay on
// real timers.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithHTTPClient sets the client active health checks use. By default the
// Service uses a client of its own whose idle connections it closes on Close.
// The checks use a copy of c that does not follow redirects: a 3xx passes.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithHost sets the Host header the upstream sees on requests the
// RoundTripper rewrites, for example "users.internal" for upstreams behind
// virtual hosting. See Service.RoundTripper for the default.
//
// It is an option although it is data: Config is the discovery section of
// a service (where its endpoints come from and how they are picked), while
// the Host header is chosen by whoever builds the request path above the
// Service; in the process config that is the service's host_header key,
// which also covers "preserve", a choice per request rather than a value.
// A host field in the discovery section would be a second, partial,
// spelling of host_header.
func WithHost(host string) Option { return func(o *options) { o.host = host } }

// WithPreservedHost keeps the caller's Host header on requests the
// RoundTripper rewrites, even when it is the logical name: the upstream
// sees req.Host exactly as the caller set it. A request with no Host (an
// empty req.Host) still gets the endpoint's host:port. WithHost, when also
// given, wins. It is the process config's host_header: preserve.
func WithPreservedHost() Option { return func(o *options) { o.preserveHost = true } }
