// TEMPORARY STUB for parallel development of the server; deleted at merge.
// The real config.go, configcheck.go, stack.go and transport.go take over.
package ambassador

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/size"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

type Size = size.Size

type ServiceConfig struct {
	Name                  string            `yaml:"name"`
	Discovery             discovery.Config  `yaml:"discovery"`
	Protocol              string            `yaml:"protocol"`
	TLS                   TLSConfig         `yaml:"tls"`
	Timeout               time.Duration     `yaml:"timeout"`
	MaxConnections        int               `yaml:"max_connections"`
	MaxConcurrentRequests int               `yaml:"max_concurrent_requests"`
	Retry                 *retry.Config     `yaml:"retry"`
	RateLimit             *ratelimit.Config `yaml:"ratelimit"`
	Breaker               *breaker.Config   `yaml:"breaker"`
}

type TLSConfig struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

type Config struct {
	Admin     AdminConfig              `yaml:"admin"`
	Listeners []ListenerConfig         `yaml:"listeners"`
	Services  map[string]ServiceConfig `yaml:"services"`
	Limits    LimitsConfig             `yaml:"limits"`
}
type AdminConfig struct {
	Address string `yaml:"address"`
}
type ListenerConfig struct {
	Address string        `yaml:"address"`
	Service string        `yaml:"service"`
	Routes  []RouteConfig `yaml:"routes"`
}
type RouteConfig struct {
	Host       string        `yaml:"host"`
	PathPrefix string        `yaml:"path_prefix"`
	Service    string        `yaml:"service"`
	Split      []SplitConfig `yaml:"split"`
}
type SplitConfig struct {
	Service string `yaml:"service"`
	Weight  int    `yaml:"weight"`
}
type LimitsConfig struct {
	MaxHeaderBytes    Size          `yaml:"max_header_bytes"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	DrainTimeout      time.Duration `yaml:"drain_timeout"`
}

type Problem struct {
	Path string
	Line int
	Msg  string
}
type ConfigError struct{ Problems []Problem }

func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s: %s", p.Path, p.Msg)
		if p.Line > 0 {
			fmt.Fprintf(&b, " (line %d)", p.Line)
		}
	}
	return b.String()
}

func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(data, filepath.Dir(path))
}

func ParseConfig(data []byte, dir string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, &ConfigError{Problems: []Problem{{Path: "config", Msg: err.Error()}}}
	}
	var probs []Problem
	for name, s := range c.Services {
		s.Name = name
		if len(s.Discovery.Static) == 0 {
			probs = append(probs, Problem{Path: "services." + name + ".discovery", Msg: "no source"})
		}
		if s.Retry != nil {
			if err := s.Retry.Validate(); err != nil {
				probs = append(probs, Problem{Path: "services." + name + ".retry", Msg: err.Error()})
			}
		}
		if s.RateLimit != nil {
			if err := s.RateLimit.Validate(); err != nil {
				probs = append(probs, Problem{Path: "services." + name + ".ratelimit", Msg: err.Error()})
			}
		}
		c.Services[name] = s
	}
	for i, l := range c.Listeners {
		if l.Service == "" && len(l.Routes) == 0 {
			probs = append(probs, Problem{Path: fmt.Sprintf("listeners[%d]", i), Msg: "neither service nor routes"})
		}
		if _, ok := c.Services[l.Service]; l.Service != "" && !ok {
			probs = append(probs, Problem{Path: fmt.Sprintf("listeners[%d].service", i), Msg: fmt.Sprintf("no service %q", l.Service)})
		}
		for j, r := range l.Routes {
			if _, ok := c.Services[r.Service]; r.Service != "" && !ok {
				probs = append(probs, Problem{Path: fmt.Sprintf("listeners[%d].routes[%d].service", i, j), Msg: fmt.Sprintf("no service %q", r.Service)})
			}
		}
	}
	if len(probs) > 0 {
		return nil, &ConfigError{Problems: probs}
	}
	return &c, nil
}

type stackOptions struct {
	base   http.RoundTripper
	logger *slog.Logger
}
type Option func(*stackOptions)

func WithBase(rt http.RoundTripper) Option                            { return func(o *stackOptions) { o.base = rt } }
func WithMeterProvider(metric.MeterProvider) Option                   { return func(*stackOptions) {} }
func WithTracerProvider(trace.TracerProvider) Option                  { return func(*stackOptions) {} }
func WithLogger(l *slog.Logger) Option                                { return func(o *stackOptions) { o.logger = l } }
func DialOptions(ServiceConfig, ...Option) ([]grpc.DialOption, error) { return nil, errors.New("stub") }

type Stack struct {
	rt http.RoundTripper
	d  *discovery.Service
	b  *breaker.Breaker
	l  *ratelimit.Limiter
	r  *retry.Policy
	tr *http.Transport
}

func NewTransport(c ServiceConfig, opts ...Option) (http.RoundTripper, error) {
	return NewStack(c, opts...)
}

func NewStack(c ServiceConfig, opts ...Option) (*Stack, error) {
	var o stackOptions
	for _, f := range opts {
		f(&o)
	}
	s := &Stack{}
	base := o.base
	if base == nil {
		s.tr = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			MaxConnsPerHost:     c.MaxConnections,
			IdleConnTimeout:     90 * time.Second,
		}
		if c.Protocol == "h2c" {
			s.tr.Protocols = new(http.Protocols)
			s.tr.Protocols.SetUnencryptedHTTP2(true)
		}
		base = s.tr
	}
	var err error
	var mws []Middleware
	if c.Retry != nil {
		if s.r, err = retry.New(*c.Retry); err != nil {
			return nil, err
		}
		mws = append(mws, s.r.RoundTripper)
	}
	if c.RateLimit != nil {
		if s.l, err = ratelimit.New(*c.RateLimit); err != nil {
			return nil, err
		}
		mws = append(mws, s.l.RoundTripper)
	}
	var dopts []discovery.Option
	if c.Breaker != nil {
		if s.b, err = breaker.New(*c.Breaker); err != nil {
			return nil, err
		}
		dopts = append(dopts, discovery.WithHealth(s.b))
	}
	src, err := discovery.FromConfig(c.Discovery)
	if err != nil {
		return nil, err
	}
	if s.d, err = discovery.NewService(c.Name, src, c.Discovery, dopts...); err != nil {
		return nil, err
	}
	mws = append(mws, s.d.RoundTripper)
	if s.b != nil {
		mws = append(mws, s.b.RoundTripper)
	}
	s.rt = Chain(base, mws...)
	return s, nil
}

func (s *Stack) RoundTrip(r *http.Request) (*http.Response, error) { return s.rt.RoundTrip(r) }
func (s *Stack) Close() error {
	if s.tr != nil {
		s.tr.CloseIdleConnections()
	}
	return nil
}
func (s *Stack) Discovery() *discovery.Service { return s.d }
func (s *Stack) Breaker() *breaker.Breaker     { return s.b }
func (s *Stack) Limiter() *ratelimit.Limiter   { return s.l }
func (s *Stack) Retry() *retry.Policy          { return s.r }
