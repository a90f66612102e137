package ambassador

import (
	"fmt"
	"net"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Semantic checks of the process config and of a ServiceConfig. Every
// problem is collected; nothing stops at the first one.

var (
	serviceNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?$`)
	// policyKeyRE matches the leading "key: " of a policy Validate error.
	policyKeyRE = regexp.MustCompile(`^([a-z0-9_]+(\[[0-9]+\])?(\.[a-z0-9_]+(\[[0-9]+\])?)*): (.+)$`)
)

type checker struct {
	lines map[string]int
	ps    *[]Problem
	// bad holds the paths the decoder already reported; semantic problems
	// at or under them would only repeat the cause.
	bad map[string]bool
}

func (c checker) covered(path string) bool {
	for path != "" {
		if c.bad[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return false
		}
		path = path[:i]
	}
	return false
}

// line returns the line of path or of its nearest parent known to the decoder.
func (c checker) line(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

// addOnce adds a problem unless path already has one.
func (c checker) addOnce(path, format string, args ...any) {
	if !hasPath(*c.ps, path) {
		c.add(path, format, args...)
	}
}

func (c checker) add(path, format string, args ...any) {
	if c.covered(path) {
		return
	}
	*c.ps = append(*c.ps, Problem{Path: path, Line: c.line(path), Msg: fmt.Sprintf(format, args...)})
}

// policy records the errors of a policy's Validate under prefix. Policies
// join one *FieldError{Field, Msg} per problem (read by reflection, as each
// package has its own type); other errors are read from their text, "key:
// message", after an optional "<package>: " prefix. skip drops errors that
// one of our own checks reports better.
func (c checker) policy(prefix, pkg string, err error, skip func(field, msg string) bool) {
	for _, e := range leafErrors(err) {
		field, msg := splitFieldError(e, pkg)
		if skip != nil && skip(field, msg) {
			continue
		}
		c.add(join(prefix, field), "%s", msg)
	}
}

// splitFieldError returns the yaml key an error of package pkg names ("" for
// the section) and its message.
func splitFieldError(e error, pkg string) (field, msg string) {
	v := reflect.ValueOf(e)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		f, m := v.FieldByName("Field"), v.FieldByName("Msg")
		if f.IsValid() && m.IsValid() && f.Kind() == reflect.String && m.Kind() == reflect.String && m.String() != "" {
			return f.String(), m.String()
		}
	}
	text := strings.TrimPrefix(e.Error(), pkg+": ")
	if m := policyKeyRE.FindStringSubmatch(text); m != nil {
		return m[1], m[5]
	}
	return "", text
}

func leafErrors(err error) []error {
	if err == nil {
		return nil
	}
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	if strings.HasPrefix(key, "[") {
		return prefix + key
	}
	return prefix + "." + key
}

func (c *Config) check(lines map[string]int, ps *[]Problem) {
	ck := checker{lines: lines, ps: ps, bad: map[string]bool{}}
	for _, p := range *ps {
		ck.bad[p.Path] = true
	}
	type bound struct{ path, host string }
	byPort := map[int][]bound{}
	claim := func(path, addr string) {
		host, port, ok := splitListenAddr(addr)
		if !ok {
			return
		}
		for _, b := range byPort[port] {
			// A wildcard host binds the port on every interface.
			if b.host == host || b.host == "" || host == "" {
				ck.add(path, "address %s is already used by %s", addr, b.path)
				return
			}
		}
		byPort[port] = append(byPort[port], bound{path, host})
	}
	if c.Admin.Address != "" {
		if err := checkHostPort(c.Admin.Address); err != nil {
			ck.add("admin.address", "%v", err)
		}
	}
	claim("admin.address", c.AdminAddress())

	if len(c.Listeners) == 0 {
		ck.add("listeners", "at least one listener is required")
	}
	for i, l := range c.Listeners {
		lp := "listeners[" + strconv.Itoa(i) + "]"
		switch {
		case l.Address == "":
			ck.add(lp+".address", "required")
		case checkHostPort(l.Address) != nil:
			ck.add(lp+".address", "%v", checkHostPort(l.Address))
		default:
			claim(lp+".address", l.Address)
		}
		switch {
		case l.Service == "" && len(l.Routes) == 0:
			ck.add(lp, "set service or routes")
		case l.Service != "" && len(l.Routes) > 0:
			ck.add(lp, "set service or routes, not both")
		case l.Service != "":
			c.checkRef(ck, lp+".service", l.Service)
		}
		for j, r := range l.Routes {
			c.checkRoute(ck, lp+".routes["+strconv.Itoa(j)+"]", r)
		}
	}

	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := c.Services[name]
		sp := joinKey("services", name)
		if s.Name != name {
			ck.add(sp+".name", "%q differs from the service's key %q", s.Name, name)
		}
		s.check(ck, sp, name)
	}

	checkRange(ck, "limits.read_header_timeout", int64(c.Limits.ReadHeaderTimeout), int64(MaxLimitsTimeout), MaxLimitsTimeout.String())
	checkRange(ck, "limits.drain_timeout", int64(c.Limits.DrainTimeout), int64(MaxLimitsTimeout), MaxLimitsTimeout.String())
	checkRange(ck, "limits.max_header_bytes", int64(c.Limits.MaxHeaderBytes), int64(MaxHeaderBytesLimit), "16MiB")
	checkLimits(ck, c.Limits)
}

func (c *Config) checkRef(ck checker, path, name string) {
	if _, ok := c.Services[name]; !ok {
		ck.add(path, "no service %q", name)
	}
}

func (c *Config) checkRoute(ck checker, rp string, r RouteConfig) {
	if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
		ck.add(rp+".path_prefix", "must start with \"/\", got %q", r.PathPrefix)
	}
	if strings.ContainsAny(r.Host, "/ ") {
		ck.add(rp+".host", "must be a host name (no scheme or path), got %q", r.Host)
	}
	switch {
	case r.Service == "" && len(r.Split) == 0:
		ck.add(rp, "set service or split")
	case r.Service != "" && len(r.Split) > 0:
		ck.add(rp, "set service or split, not both")
	case r.Service != "":
		c.checkRef(ck, rp+".service", r.Service)
	}
	total, tooLarge := 0, false
	for k, leg := range r.Split {
		kp := rp + ".split[" + strconv.Itoa(k) + "]"
		if leg.Service == "" {
			ck.add(kp+".service", "required")
		} else {
			c.checkRef(ck, kp+".service", leg.Service)
		}
		if leg.Weight < 0 || leg.Weight > MaxSplitWeight {
			ck.add(kp+".weight", "must be an integer between 0 and %d, got %d", MaxSplitWeight, leg.Weight)
			tooLarge = tooLarge || leg.Weight > 0
		} else {
			total += leg.Weight
		}
	}
	if len(r.Split) > 0 && total == 0 && !tooLarge {
		ck.add(rp+".split", "weights are all zero; at least one must be positive")
	}
}

// Validate checks a ServiceConfig the way the process config checks a
// service: a valid Name, exactly one discovery source, a known protocol,
// consistent TLS files, non-negative limits and every present policy's own
// Validate. Paths in the *ConfigError are relative to the service
// ("retry.max_attempts").
func (s ServiceConfig) Validate() error {
	var ps []Problem
	s.check(checker{ps: &ps}, "", s.Name)
	if len(ps) > 0 {
		return newConfigError(ps)
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

func (s ServiceConfig) check(ck checker, sp, name string) {
	switch {
	case name == "":
		ck.add(join(sp, "name"), "required: the logical host the service answers for")
	case !serviceNameRE.MatchString(name):
		ck.add(join(sp, "name"), "%q is not a valid host name (lower-case letters, digits, '.', '-', '_')", name)
	}

	dp := join(sp, "discovery")
	srcs := s.sources()
	switch len(srcs) {
	case 0:
		ck.add(dp, "no source: set one of static, dns, srv, file")
	case 1:
	default:
		ck.add(dp, "set one source, got %s", strings.Join(srcs, " and "))
	}
	ck.policy(dp, "discovery", s.Discovery.Validate(), func(field, msg string) bool {
		// Our own message above covers the number of sources.
		return field == "" && strings.Contains(msg, "source")
	})
	for i, a := range s.Discovery.Static {
		if err := checkHostPort(a); err != nil {
			ck.addOnce(dp+".static["+strconv.Itoa(i)+"]", "%v", err)
		}
	}

	switch s.Protocol {
	case "", ProtocolHTTP1, ProtocolH2C, ProtocolH2:
	default:
		ck.add(join(sp, "protocol"), "unknown protocol %q: want http1, h2c or h2", s.Protocol)
	}
	tp := join(sp, "tls")
	if s.TLS.CertFile != "" && s.TLS.KeyFile == "" {
		ck.add(tp+".key_file", "required with cert_file")
	}
	if s.TLS.KeyFile != "" && s.TLS.CertFile == "" {
		ck.add(tp+".cert_file", "required with key_file")
	}
	if s.Protocol == ProtocolH2C && s.TLS != (TLSConfig{}) {
		ck.add(tp, "protocol h2c is cleartext HTTP/2; use protocol h2 with tls")
	}

	checkRange(ck, join(sp, "timeout"), int64(s.Timeout), int64(MaxServiceTimeout), MaxServiceTimeout.String())
	checkRange(ck, join(sp, "max_connections"), int64(s.MaxConnections), MaxConnectionsLimit, "1000000")
	checkRange(ck, join(sp, "max_concurrent_requests"), int64(s.MaxConcurrentRequests), MaxConnectionsLimit, "1000000")

	if s.Retry != nil {
		ck.policy(join(sp, "retry"), "retry", s.Retry.Validate(), nil)
	}
	if s.RateLimit != nil {
		rp := join(sp, "ratelimit")
		before := len(*ck.ps)
		ck.policy(rp, "ratelimit", s.RateLimit.Validate(), nil)
		if s.RateLimit.RPS <= 0 && !hasPath((*ck.ps)[before:], rp+".rps") {
			ck.add(rp+".rps", "required: a ratelimit section needs rps > 0")
		}
	}
	if s.Breaker != nil {
		ck.policy(join(sp, "breaker"), "breaker", s.Breaker.Validate(), nil)
	}
}

func hasPath(ps []Problem, path string) bool {
	for _, p := range ps {
		if p.Path == path {
			return true
		}
	}
	return false
}

func checkNonNegative(ck checker, path string, v int64) {
	if v < 0 {
		ck.add(path, "must be ≥ 0")
	}
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("%q has an invalid host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has an invalid port", addr)
	}
	return nil
}

// splitListenAddr gives a comparable host ("" for every interface) and the
// port of a listen address; ok is false for addresses that cannot collide
// (port 0 picks a free port).
func splitListenAddr(addr string) (host string, port int, ok bool) {
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	port, err = strconv.Atoi(ps)
	if err != nil || port == 0 {
		return "", 0, false
	}
	host = strings.ToLower(h)
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return "", port, true
		}
		host = ip.String()
	}
	return host, port, true
}
