package proxy

import (
	"errors"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/internal/confcheck"
)

// Semantic checks of the process config and of a ambassador.ServiceConfig. Every
// problem is collected; nothing stops at the first one.

// checker collects the problems of the process config (see confcheck).
type checker = confcheck.Checker

func join(prefix, key string) string { return confcheck.Join(prefix, key) }

func (c *Config) check(lines map[string]int, ps *[]Problem) {
	ck := checker{Lines: lines, Ps: ps, Bad: map[string]bool{}}
	for _, p := range *ps {
		ck.Bad[p.Path] = true
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
				ck.Add(path, "address %s is already used by %s", addr, b.path)
				return
			}
		}
		byPort[port] = append(byPort[port], bound{path, host})
	}
	if c.Admin.Address != "" {
		if err := confcheck.CheckHostPort(c.Admin.Address); err != nil {
			ck.Add("admin.address", "%v", err)
		}
	}
	claim("admin.address", c.AdminAddress())

	if len(c.Listeners) == 0 {
		ck.Add("listeners", "at least one listener is required")
	}
	for i, l := range c.Listeners {
		lp := "listeners[" + strconv.Itoa(i) + "]"
		switch {
		case l.Address == "":
			ck.Add(lp+".address", "required")
		case confcheck.CheckHostPort(l.Address) != nil:
			ck.Add(lp+".address", "%v", confcheck.CheckHostPort(l.Address))
		default:
			claim(lp+".address", l.Address)
		}
		switch {
		case l.Service == "" && len(l.Routes) == 0:
			ck.Add(lp, "set service or routes")
		case l.Service != "" && len(l.Routes) > 0:
			ck.Add(lp, "set service or routes, not both")
		case l.Service != "":
			c.checkRef(ck, lp+".service", l.Service)
		}
		for j, r := range l.Routes {
			c.checkRoute(ck, lp+".routes["+strconv.Itoa(j)+"]", r)
		}
		c.checkTranscode(ck, lp, l)
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
			ck.Add(sp+".name", "%q differs from the service's key %q", s.Name, name)
		}
		checkService(ck, sp, name, s)
	}

	ck.CheckRange("limits.read_header_timeout", int64(c.Limits.ReadHeaderTimeout), int64(MaxLimitsTimeout), MaxLimitsTimeout.String())
	ck.CheckRange("limits.drain_timeout", int64(c.Limits.DrainTimeout), int64(MaxLimitsTimeout), MaxLimitsTimeout.String())
	ck.CheckRange("limits.shutdown_delay", int64(c.Limits.ShutdownDelay), int64(MaxLimitsTimeout), MaxLimitsTimeout.String())
	ck.CheckRange("limits.max_header_bytes", int64(c.Limits.MaxHeaderBytes), int64(MaxHeaderBytesLimit), "16MiB")
	checkLimits(ck, c.Limits)
	c.checkProtocols(ck)
}

func (c *Config) checkRef(ck checker, path, name string) {
	if _, ok := c.Services[name]; !ok {
		ck.Add(path, "no service %q", name)
	}
}

func (c *Config) checkRoute(ck checker, rp string, r RouteConfig) {
	if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
		ck.Add(rp+".path_prefix", "must start with \"/\", got %q", r.PathPrefix)
	}
	if strings.ContainsAny(r.Host, "/ ") {
		ck.Add(rp+".host", "must be a host name (no scheme or path), got %q", r.Host)
	}
	switch {
	case r.Service == "" && len(r.Split) == 0:
		ck.Add(rp, "set service or split")
	case r.Service != "" && len(r.Split) > 0:
		ck.Add(rp, "set service or split, not both")
	case r.Service != "":
		c.checkRef(ck, rp+".service", r.Service)
	}
	total, tooLarge := 0, false
	for k, leg := range r.Split {
		kp := rp + ".split[" + strconv.Itoa(k) + "]"
		if leg.Service == "" {
			ck.Add(kp+".service", "required")
		} else {
			c.checkRef(ck, kp+".service", leg.Service)
		}
		if leg.Weight < 0 || leg.Weight > MaxSplitWeight {
			ck.Add(kp+".weight", "must be an integer between 0 and %d, got %d", MaxSplitWeight, leg.Weight)
			tooLarge = tooLarge || leg.Weight > 0
		} else {
			total += leg.Weight
		}
	}
	if len(r.Split) > 0 && total == 0 && !tooLarge {
		ck.Add(rp+".split", "weights are all zero; at least one must be positive")
	}
}

// checkService records the problems of service s (the value under
// services.<name>) at their paths under sp.
func checkService(ck checker, sp, name string, s ambassador.ServiceConfig) {
	s.Name = name
	var ce *ConfigError
	if errors.As(s.Validate(), &ce) {
		for _, p := range ce.Problems {
			ck.Add(join(sp, p.Path), "%s", p.Msg)
		}
	}
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
