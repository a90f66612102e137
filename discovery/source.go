package discovery

import (
	"context"
	"time"

	"github.com/outbound-go/outbound/internal/refusal"
)

// ErrNoEndpoints is returned (wrapped) when a service has no ready endpoint
// to send an attempt to: its set is empty, or every endpoint is ejected by a
// breaker or failing its health check. It is a local refusal: the request was
// not sent, and the retry layer returns it at once.
var ErrNoEndpoints = refusal.New("discovery: no ready endpoints")

// Endpoint is one concrete address of a service.
type Endpoint struct {
	// Address is host:port. A Service keys its endpoints by the canonical
	// spelling (an IP literal as net/netip prints it, a DNS name in lower
	// case, the port without leading zeros) and dials that: two spellings
	// of one address in a set are one endpoint.
	Address string `yaml:"address" json:"address"`
	// Weight is the endpoint's relative share of traffic; 0 means 1.
	Weight int `yaml:"weight" json:"weight"`
	// Metadata is free-form data from the source (an SRV target, say).
	Metadata map[string]string `yaml:"metadata,omitempty" json:"metadata,omitempty"`
}

// Source pushes the endpoint sets of one service.
type Source interface {
	// Watch calls update with the current set as soon as it is known and
	// again whenever it changes, until ctx is done; it returns only after its
	// last call to update. A failed lookup or a malformed file is reported as
	// update(nil, err): the Service keeps its last good set. update is never
	// called concurrently.
	Watch(ctx context.Context, update func(eps []Endpoint, err error))
}

// Config selects a service's endpoint source and how its endpoints are
// balanced and checked. Exactly one of Static, DNS, SRV, File and Etcd names the
// source (NewService takes its source separately, so there none is needed).
type Config struct {
	// Static is a fixed list of host:port addresses.
	Static []string `yaml:"static"`
	// DNS is host:port; the host's A and AAAA records are re-resolved every Refresh.
	DNS string `yaml:"dns"`
	// SRV is an SRV name such as _http._tcp.users.internal, re-resolved every Refresh.
	SRV string `yaml:"srv"`
	// File is a YAML or JSON list of {address, weight}, watched for changes.
	File string `yaml:"file"`
	// Etcd is the keys under a prefix in etcd, watched; see Etcd.
	Etcd *EtcdConfig `yaml:"etcd"`
	// Resolver is the DNS server (host:port) the dns and srv sources ask;
	// "" means the system resolver.
	Resolver string `yaml:"resolver"`
	// Refresh is how often DNS sources re-resolve; 0 means 30s, else
	// between 1ms (MinInterval) and 24h (MaxInterval).
	Refresh time.Duration `yaml:"refresh"`
	// Balancer is round_robin (the default), least_request or ewma.
	Balancer string `yaml:"balancer"`
	// HealthCheck configures active health checks; off unless Path is set.
	HealthCheck HealthCheckConfig `yaml:"health_check"`
}

// HealthCheckConfig configures active health checks.
type HealthCheckConfig struct {
	// Path is the HTTP path checked with GET on every endpoint; "" turns
	// active checks off.
	Path string `yaml:"path"`
	// Interval between checks of one endpoint; 0 means 5s, else between
	// 1ms and 24h.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one check; 0 means 1s, else between 1ms and 24h.
	Timeout time.Duration `yaml:"timeout"`
}
