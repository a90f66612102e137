package discovery

import (
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
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
	startOnUse bool
}

func defaultOptions() options {
	return options{meter: otel.GetMeterProvider(), logger: slog.Default()}
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
// health-check transitions; slog.Default() by default.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithHTTPClient sets the client active health checks use. By default the
// Service uses a client of its own whose idle connections it closes on Close.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithHost sets the Host header the upstream sees on requests the
// RoundTripper rewrites, for example "users.internal" for upstreams behind
// virtual hosting. See Service.RoundTripper for the default.
func WithHost(host string) Option { return func(o *options) { o.host = host } }
