package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-go/outbound/internal/fielderr"
)

// Balancer names accepted by Config.Balancer.
const (
	// RoundRobin sends each endpoint its weighted share in a smooth order.
	RoundRobin = "round_robin"
	// LeastRequest picks the less loaded of two random endpoints.
	LeastRequest = "least_request"
	// EWMA picks the cheaper of two random endpoints by peak-EWMA latency.
	EWMA = "ewma"
)

// Defaults applied to zero Config values.
const (
	DefaultRefresh             = 30 * time.Second
	DefaultHealthCheckInterval = 5 * time.Second
	DefaultHealthCheckTimeout  = time.Second
)

// Bounds Validate enforces on the durations of a Config (0 always means the
// default): a refresh or health-check interval below MinInterval would
// poll in a busy loop; none may exceed MaxInterval.
const (
	// MinInterval is the shortest non-zero Refresh, HealthCheck.Interval
	// and HealthCheck.Timeout.
	MinInterval = time.Millisecond
	// MaxInterval is the longest Refresh, HealthCheck.Interval and
	// HealthCheck.Timeout.
	MaxInterval = 24 * time.Hour
)

// FieldError is one problem with a Config, naming the yaml key it concerns
// (for example "static[1]" or "health_check.interval"). Field is empty for a
// problem that concerns the section as a whole, such as a missing source.
// Validate joins FieldErrors with errors.Join. Its Section is "discovery",
// so Error returns "discovery: field: msg". It is the one validation error
// all policy packages share.
type FieldError = fielderr.Error

// Validate reports every problem with c, each as a *FieldError naming its
// yaml key, joined with errors.Join; nil means c is usable. Exactly one of
// static, dns, srv, file and etcd must be set.
func (c Config) Validate() error {
	return c.validate(true)
}

func (c Config) sources() []string {
	var names []string
	if len(c.Static) > 0 {
		names = append(names, "static")
	}
	if c.DNS != "" {
		names = append(names, "dns")
	}
	if c.SRV != "" {
		names = append(names, "srv")
	}
	if c.File != "" {
		names = append(names, "file")
	}
	if c.Etcd != nil {
		names = append(names, "etcd")
	}
	return names
}

func (c Config) validate(needSource bool) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Section: "discovery", Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch src := c.sources(); {
	case len(src) == 0 && needSource:
		add("", "no source: set one of static, dns, srv, file, etcd")
	case len(src) > 1:
		add("", "set one source, got %s", strings.Join(src, " and "))
	}
	static := make(map[string]int, len(c.Static))
	for i, a := range c.Static {
		if err := checkHostPort(a); err != nil {
			add(fmt.Sprintf("static[%d]", i), "%v", err)
			continue
		}
		ca := canonicalAddress(a)
		if j, dup := static[ca]; dup {
			add(fmt.Sprintf("static[%d]", i), "%q is static[%d] (%q) again", a, j, c.Static[j])
			continue
		}
		static[ca] = i
	}
	// dns, srv and resolver are checked as DNS and SRV will check them, so
	// FromConfig never refuses what Validate accepts.
	if c.DNS != "" {
		if err := checkHostPort(c.DNS); err != nil {
			add("dns", "%v", err)
		} else if _, _, err := parseEndpointAddr(c.DNS); err != nil {
			add("dns", "%v", err)
		}
	}
	if c.SRV != "" && (strings.ContainsAny(c.SRV, ": \t/") || !isHostname(c.SRV)) {
		add("srv", "%q is not an SRV name such as _http._tcp.users.internal", c.SRV)
	}
	if c.Resolver != "" {
		if err := checkHostPort(c.Resolver); err != nil {
			add("resolver", "%v", err)
		} else if _, _, err := parseEndpointAddr(c.Resolver); err != nil {
			add("resolver", "%v", err)
		}
	}
	checkInterval := func(field string, d time.Duration) {
		switch {
		case d < 0:
			add(field, "must be ≥ 0, got %v", d)
		case d > 0 && d < MinInterval:
			add(field, "must be 0 (the default) or at least %v, got %v", MinInterval, d)
		case d > MaxInterval:
			add(field, "must be at most %v, got %v", MaxInterval, d)
		}
	}
	if c.Etcd != nil {
		c.Etcd.validate(add)
	}
	checkInterval("refresh", c.Refresh)
	switch c.Balancer {
	case "", RoundRobin, LeastRequest, EWMA:
	default:
		add("balancer", "unknown balancer %q: want round_robin, least_request or ewma", c.Balancer)
	}
	hc := c.HealthCheck
	if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
		add("health_check.path", "must start with /, got %q", hc.Path)
	}
	checkInterval("health_check.interval", hc.Interval)
	checkInterval("health_check.timeout", hc.Timeout)
	return errors.Join(errs...)
}

// checkHostPort accepts host:port with a non-empty host and a port in 1–65535.
func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("address %q: want host:port", a)
	}
	if host == "" {
		return fmt.Errorf("address %q: empty host", a)
	}
	for _, r := range host {
		if !validHostRune(r) {
			return fmt.Errorf("address %q: bad character %q in host", a, r)
		}
	}
	// Digits only: strconv.Atoi would take "+80", which no dialer does.
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p < 1 {
		return fmt.Errorf("address %q: port must be a number in 1–65535", a)
	}
	return nil
}

// canonicalAddress returns the one spelling of the host:port a (which
// passed checkHostPort) that names its endpoint: an IP literal in its
// canonical form, a DNS name in lower case, the port without leading
// zeros. "127.0.0.1:08080", "[0:0::1]:80" and "Users.Internal:80" are
// "127.0.0.1:8080", "[::1]:80" and "users.internal:80", so one endpoint
// listed twice in two spellings is one endpoint (one breaker, one share of
// the traffic), not two. An address already canonical is returned as is.
func canonicalAddress(a string) string {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return a
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	} else {
		host = strings.ToLower(host)
	}
	if c := net.JoinHostPort(host, strconv.FormatUint(p, 10)); c != a {
		return c
	}
	return a
}

func (c Config) withDefaults() Config {
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	if c.Balancer == "" {
		c.Balancer = RoundRobin
	}
	if c.HealthCheck.Interval == 0 {
		c.HealthCheck.Interval = DefaultHealthCheckInterval
	}
	if c.HealthCheck.Timeout == 0 {
		c.HealthCheck.Timeout = DefaultHealthCheckTimeout
	}
	return c
}

// FromConfig builds the source c names: Static, DNS, SRV, File or Etcd. It fails,
// naming the keys, when c names no source or more than one, or when c is
// otherwise invalid.
func FromConfig(c Config) (Source, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch {
	case len(c.Static) > 0:
		return Static(c.Static...), nil
	case c.DNS != "":
		return DNS(c.DNS, c.Resolver, c.Refresh)
	case c.SRV != "":
		return SRV(c.SRV, c.Resolver, c.Refresh)
	case c.Etcd != nil:
		return Etcd(*c.Etcd)
	default:
		return File(c.File)
	}
}

// Static returns a Source with a fixed list of host:port addresses, each of
// weight 1. A malformed address is reported to Watch as an error (the whole
// list is refused), so a Service built on it has no endpoints; Config.Validate
// catches the same mistake earlier.
func Static(addrs ...string) Source {
	s := &staticSource{}
	for _, a := range addrs {
		if err := checkHostPort(a); err != nil {
			s.err = fmt.Errorf("discovery: static: %w", err)
			break
		}
		s.eps = append(s.eps, Endpoint{Address: a, Weight: 1})
	}
	return s
}

type staticSource struct {
	eps []Endpoint
	err error
}

// Watch reports the fixed list once and returns.
func (s *staticSource) Watch(ctx context.Context, update func([]Endpoint, error)) {
	if s.err != nil {
		update(nil, s.err)
		return
	}
	update(append([]Endpoint(nil), s.eps...), nil)
}

// validHostRune accepts what DNS names, IPv4 and IPv6 literals (with a zone)
// are made of, so an address can never smuggle a path, query or user into
// a rewritten URL.
func validHostRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune(".-_:%", r)
}
