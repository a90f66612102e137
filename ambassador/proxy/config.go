package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/internal/boundedfile"
	"github.com/outbound-go/outbound/internal/confcheck"
	"github.com/outbound-go/outbound/internal/size"
)

// Size is a number of bytes. In YAML it is an integer of bytes or a string
// with a unit such as "64KiB" or "1MB".
type Size = size.Size

// Defaults of the process config, the one table of them (limits.idle_timeout
// and limits.max_client_connections, derived, are in connlimit.go); the
// ...OrDefault methods below read them.
const (
	defaultAdminAddress           = "127.0.0.1:9901"
	defaultMaxHeaderBytes    Size = 64 << 10
	defaultReadHeaderTimeout      = 10 * time.Second
	defaultDrainTimeout           = 30 * time.Second
)

// Config is the configuration of the ambassador process: where it listens,
// which services it proxies to and with which policies, and the process-wide
// limits. LoadConfig and ParseConfig read it from YAML strictly; a Config
// built in code is checked by Validate (NewServer does it).
type Config struct {
	// Admin is the admin listener (/healthz, /readyz, /metrics, /status).
	Admin AdminConfig `yaml:"admin"`
	// Listeners are the proxy listeners; at least one is required.
	Listeners []ListenerConfig `yaml:"listeners"`
	// Services are the upstream services by name. The map key fills
	// ambassador.ServiceConfig.Name and is the logical host of the service.
	Services map[string]ambassador.ServiceConfig `yaml:"services"`
	// Limits are the process-wide limits on incoming requests.
	Limits LimitsConfig `yaml:"limits"`

	source configSource // the file LoadConfig read; zero otherwise
}

// AdminConfig configures the admin listener.
type AdminConfig struct {
	// Address is host:port; "" means 127.0.0.1:9901.
	Address string `yaml:"address"`
}

// ListenerConfig is one proxy listener. Exactly one of Service and Routes is
// set: Service sends every request of the listener to one service; Routes
// are matched in order, the first match wins.
type ListenerConfig struct {
	// Address is host:port.
	Address string `yaml:"address"`
	// Service receives every request of this listener.
	Service string `yaml:"service"`
	// Routes are matched by Host and path prefix, first match wins.
	Routes []RouteConfig `yaml:"routes"`
	// Transcode, when set, calls the listener's gRPC service with JSON
	// over HTTP (see TranscodeConfig); it needs Service, not Routes.
	Transcode *TranscodeConfig `yaml:"transcode"`
	// Protocol is ListenerHTTP ("", the default: HTTP/1.1 and h2c) or
	// ListenerTCP (raw byte streams joined to one endpoint of Service, a
	// service of protocol tcp; see tcplistener.go).
	Protocol string `yaml:"protocol"`
}

// RouteConfig matches requests by Host and/or path prefix and sends them to
// one service or splits them by weight. Exactly one of Service and Split is
// set. A route with neither Host nor PathPrefix matches every request.
type RouteConfig struct {
	// Host is compared case-insensitively with the request's host, port ignored.
	Host string `yaml:"host"`
	// PathPrefix, when set, must start with "/".
	PathPrefix string `yaml:"path_prefix"`
	// Service receives the matching requests.
	Service string `yaml:"service"`
	// Split shares the matching requests among services by weight.
	Split []SplitConfig `yaml:"split"`
	// Transcode, when set, calls the route's gRPC service with JSON over
	// HTTP (see TranscodeConfig); it needs Service, not Split.
	Transcode *TranscodeConfig `yaml:"transcode"`
}

// SplitConfig is one leg of a weighted traffic split.
type SplitConfig struct {
	// Service receives this leg's share.
	Service string `yaml:"service"`
	// Weight is the relative share, an integer in [0, 10000]
	// (MaxSplitWeight); weight 0 sends nothing. At least one leg of a split
	// must have a positive weight.
	Weight int `yaml:"weight"`
}

// LimitsConfig holds the process-wide limits on incoming requests. Zero
// values mean the defaults shown.
type LimitsConfig struct {
	// MaxHeaderBytes bounds the request header size; 0 means 64KiB; at
	// most 16MiB (MaxHeaderBytesLimit).
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// ReadHeaderTimeout bounds the time to read request headers; 0 means
	// 10s; at most 1h (MaxLimitsTimeout).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// DrainTimeout bounds how long shutdown waits for in-flight requests;
	// 0 means 30s; at most 1h.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// IdleTimeout closes a client keep-alive connection idle for this long;
	// 0 means 2m. At most 24h.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxClientConnections caps the client connections open at once across
	// every listener but the admin listener; 0 means a cap derived from the
	// open-file limit (see MaxClientConnectionsOrDefault). At most 1048576.
	// At the cap an idle keep-alive connection is closed to make room, or
	// else new connections wait until one closes.
	MaxClientConnections int `yaml:"max_client_connections"`
	// ShutdownDelay is how long Run keeps accepting and serving after its
	// context is done (SIGTERM), with /readyz answering 503 "shutting
	// down" so a load balancer or kubelet stops sending; then it stops
	// accepting and drains for up to DrainTimeout. 0 (the default) drains
	// at once; at most 1h. Server.EndShutdownDelay (the ambassador's
	// second SIGTERM/SIGINT) cuts it short.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
}

// Problem is one thing wrong with a config: its key path, its YAML line
// (0 when unknown) and what is wrong.
type Problem = confcheck.Problem

// ConfigError lists every problem found in a config, sorted by line; its
// Error returns one "KEY.PATH: message (line N)" per line.
type ConfigError = confcheck.ConfigError

// MaxConfigFileSize bounds the config file LoadConfig reads.
const MaxConfigFileSize = 16 << 20

// LoadConfig reads the process config from the YAML file at path. Decoding
// is strict: unknown keys, wrong types, bad durations and sizes and every
// semantic problem are reported together in a *ConfigError, each with its
// key path and line. Relative file paths in the config (discovery.file,
// tls.ca_file, tls.cert_file, tls.key_file) are resolved against the
// directory of path.
//
// LoadConfig also reads the files the config names as start-up will: the
// TLS files are read and parsed (regular files only, each at most
// ambassador.MaxTLSFileSize) and an endpoint file is read and parsed (at most
// 16 MiB); a FIFO, a device, a directory, a missing, oversized or invalid
// file is a problem at the key that names it
// ("services.users.tls.ca_file: ..."). So what LoadConfig accepts,
// NewServer builds (and ambassador -check, which calls it, binds no port).
//
// The config file itself must be a regular file of at most
// MaxConfigFileSize bytes; one that cannot be read is reported as the
// underlying error (errors.Is(err, fs.ErrNotExist) holds for a missing file).
func LoadConfig(path string) (*Config, error) {
	data, err := boundedfile.Read(path, MaxConfigFileSize)
	if err != nil {
		return nil, fmt.Errorf("ambassador: read config: %w", err)
	}
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	c, err := parseConfig(data, dir, true)
	if err == nil {
		c.source = newConfigSource(path, data)
	}
	return c, err
}

// ParseConfig decodes and validates the process config from YAML data, as
// LoadConfig does, except that it reads no file the config names (LoadConfig
// does); relative file paths are resolved against dir (left relative when
// dir is ""). Errors are *ConfigError.
//
// In a service, an absent retry, ratelimit or breaker section leaves the
// pointer nil (the policy is not in the stack); a present one, even "{}" or
// a bare key with no value (YAML null), means the policy with its defaults.
func ParseConfig(data []byte, dir string) (*Config, error) {
	return parseConfig(data, dir, false)
}

// parseConfig is ParseConfig, reading the files the config names too when
// readFiles is set.
func parseConfig(data []byte, dir string, readFiles bool) (*Config, error) {
	d := newDecoder()
	var c Config
	root, prob := parseDocument(data)
	if prob != nil {
		return nil, &ConfigError{Problems: []Problem{*prob}}
	}
	if root != nil {
		d.decode(root, reflectValueOf(&c), "", 0)
	}
	for name, s := range c.Services {
		if s.Name != "" && s.Name != name {
			np := joinKey("services", name) + ".name"
			d.problems = append(d.problems, Problem{Path: np, Line: d.lines[np],
				Msg: fmt.Sprintf("%q differs from the service's key %q; omit it", s.Name, name)})
		}
		s.Name = name
		resolvePaths(&s, dir)
		c.Services[name] = s
	}
	resolveTranscodePaths(&c, dir)
	c.check(d.lines, &d.problems)
	if readFiles {
		c.checkFiles(d.lines, &d.problems)
	}
	if len(d.problems) > 0 {
		return nil, newConfigError(d.problems)
	}
	return &c, nil
}

// Validate checks a Config built in code the way ParseConfig checks a file
// (lines are unknown). It does not fill ambassador.ServiceConfig.Name from the map
// key: a Name that differs from its key is a problem. Errors are *ConfigError.
func (c *Config) Validate() error {
	var ps []Problem
	c.check(nil, &ps)
	if len(ps) > 0 {
		return newConfigError(ps)
	}
	return nil
}

// AdminAddress returns Admin.Address or its default.
func (c *Config) AdminAddress() string {
	if c.Admin.Address == "" {
		return defaultAdminAddress
	}
	return c.Admin.Address
}

// MaxHeaderBytesOrDefault returns MaxHeaderBytes or its default.
func (l LimitsConfig) MaxHeaderBytesOrDefault() Size {
	if l.MaxHeaderBytes == 0 {
		return defaultMaxHeaderBytes
	}
	return l.MaxHeaderBytes
}

// ReadHeaderTimeoutOrDefault returns ReadHeaderTimeout or its default.
func (l LimitsConfig) ReadHeaderTimeoutOrDefault() time.Duration {
	if l.ReadHeaderTimeout == 0 {
		return defaultReadHeaderTimeout
	}
	return l.ReadHeaderTimeout
}

// DrainTimeoutOrDefault returns DrainTimeout or its default.
func (l LimitsConfig) DrainTimeoutOrDefault() time.Duration {
	if l.DrainTimeout == 0 {
		return defaultDrainTimeout
	}
	return l.DrainTimeout
}

func newConfigError(ps []Problem) *ConfigError { return confcheck.NewError(ps) }

// yamlLineRE reads the line out of a YAML syntax error. It does not
// classify errors (every error parseDocument passes to syntaxProblem is a
// syntax error, reported the same way); it only recovers the position, and
// the Node tree cannot give it: a document that fails to parse yields no
// node, and yaml.v3 (v3.0.6, decode.go parser.fail and yaml.go failf)
// reports the parser's mark only inside the text of a plain
// fmt.Errorf("yaml: line N: msg"), with no typed error carrying it
// (yaml.TypeError is for decoding into Go values, which we do on nodes).
// Every position after a successful parse comes from the nodes.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocument parses data into the root node of its single document; a
// nil node with no problem means an empty document.
func parseDocument(data []byte) (*yaml.Node, *Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxProblem(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(err)
	default:
		return nil, &Problem{Line: extra.Line, Msg: "more than one YAML document; want one"}
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

func syntaxProblem(err error) *Problem {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Problem{Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &Problem{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// resolvePaths makes the service's relative file paths relative to dir.
func resolvePaths(s *ambassador.ServiceConfig, dir string) {
	if dir == "" {
		return
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&s.Discovery.File)
	abs(&s.TLS.CAFile)
	abs(&s.TLS.CertFile)
	abs(&s.TLS.KeyFile)
}
