package ambassador

import (
	"regexp"
	"strings"
	"time"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/confcheck"
)

// Bounds the service checks enforce beyond each policy's own Validate, so
// that no accepted value makes a limit meaningless.
const (
	// MaxServiceTimeout bounds ServiceConfig.Timeout.
	MaxServiceTimeout = 24 * time.Hour
	// MaxConnectionsLimit bounds ServiceConfig.MaxConnections and
	// ServiceConfig.MaxConcurrentRequests.
	MaxConnectionsLimit = 1_000_000
)

var serviceNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?$`)

// Validate checks a ServiceConfig: a valid Name, exactly one discovery
// source, a known protocol, consistent TLS files, limits within their
// bounds, a host_header keyword or valid host name, and every present
// policy's own Validate. Every problem is
// reported, each with its key path relative to the service
// ("retry.max_attempts: ..."), one per line of the error's text; the error
// is the *ConfigError of package ambassador/proxy.
func (s ServiceConfig) Validate() error {
	var ps []confcheck.Problem
	s.check(confcheck.Checker{Ps: &ps})
	if len(ps) > 0 {
		return confcheck.NewError(ps)
	}
	return nil
}

func (s ServiceConfig) sources() []string {
	var out []string
	if len(s.Discovery.Static) > 0 {
		out = append(out, "static")
	}
	if s.Discovery.DNS != "" {
		out = append(out, "dns")
	}
	if s.Discovery.SRV != "" {
		out = append(out, "srv")
	}
	if s.Discovery.File != "" {
		out = append(out, "file")
	}
	return out
}

func (s ServiceConfig) check(ck confcheck.Checker) {
	switch {
	case s.Name == "":
		ck.Add("name", "required: the logical host the service answers for")
	case !serviceNameRE.MatchString(s.Name):
		ck.Add("name", "%q is not a valid host name (lower-case letters, digits, '.', '-', '_')", s.Name)
	}

	// discovery's own Validate checks the sources, their number included.
	ck.Policy("discovery", s.Discovery.Validate())

	switch s.Protocol {
	case "", ProtocolHTTP1, ProtocolH2C, ProtocolH2, ProtocolTCP:
	default:
		ck.Add("protocol", "unknown protocol %q: want http1, h2c, h2 or tcp", s.Protocol)
	}
	s.checkTCP(ck)
	tp := "tls"
	if s.TLS.CertFile != "" && s.TLS.KeyFile == "" {
		ck.Add(tp+".key_file", "required with cert_file")
	}
	if s.TLS.KeyFile != "" && s.TLS.CertFile == "" {
		ck.Add(tp+".cert_file", "required with key_file")
	}
	if s.Protocol == ProtocolH2C && s.TLS != (TLSConfig{}) {
		ck.Add(tp, "protocol h2c is cleartext HTTP/2; use protocol h2 with tls")
	}

	ck.CheckRange("timeout", int64(s.Timeout), int64(MaxServiceTimeout), MaxServiceTimeout.String())
	ck.CheckRange("max_connections", int64(s.MaxConnections), MaxConnectionsLimit, "1000000")
	ck.CheckRange("max_concurrent_requests", int64(s.MaxConcurrentRequests), MaxConnectionsLimit, "1000000")
	checkHostHeader(ck, s.HostHeader)
	s.checkPolicies(ck)
}

func (s ServiceConfig) checkPolicies(ck confcheck.Checker) {
	if s.Retry != nil {
		ck.Policy("retry", s.Retry.Validate())
	}
	if s.RateLimit != nil {
		ck.Policy("ratelimit", s.RateLimit.Validate())
	}
	if s.Breaker != nil {
		ck.Policy("breaker", s.Breaker.Validate())
	}
}

// CheckFiles reads the files s names as NewStack will, without keeping
// anything: the TLS files are read and parsed (regular files only, each at
// most MaxTLSFileSize), and the discovery source is built (which reads and
// parses an endpoint file). Each problem is reported at the key that names
// the file ("tls.ca_file: ...", "discovery.file: ..."), as Validate reports
// its own; a config that Validate rejects may report less.
func (s ServiceConfig) CheckFiles() error {
	var ps []confcheck.Problem
	ck := confcheck.Checker{Ps: &ps}
	if s.TLS.enabled() {
		readTLSMaterial(s.TLS, func(key string, err error) {
			ck.Add("tls."+key, "%v", err)
		})
	}
	if srcs := s.sources(); len(srcs) == 1 {
		if _, err := discovery.FromConfig(s.Discovery); err != nil {
			for _, e := range confcheck.LeafErrors(err) {
				ck.Add("discovery."+srcs[0], "%s", strings.TrimPrefix(e.Error(), "discovery: "))
			}
		}
	}
	if len(ps) > 0 {
		return confcheck.NewError(ps)
	}
	return nil
}
