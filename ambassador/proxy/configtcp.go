package proxy

import (
	"strconv"

	"github.com/outbound-go/outbound/ambassador"
)

// Listener protocols (ListenerConfig.Protocol).
const (
	// ListenerHTTP is an HTTP listener (HTTP/1.1 and h2c on one port), the default.
	ListenerHTTP = "http"
	// ListenerTCP is a tcp listener: each client connection is joined to
	// one endpoint of the listener's service, of protocol tcp.
	ListenerTCP = "tcp"
)

// isTCP reports whether l is a tcp listener.
func (l ListenerConfig) isTCP() bool { return l.Protocol == ListenerTCP }

// checkProtocols checks that listeners and services agree on protocol: a
// tcp listener takes service: only, of protocol tcp; an HTTP listener, its
// routes and their splits never name a tcp service. Each problem is at the
// key at fault.
func (c *Config) checkProtocols(ck checker) {
	for i, l := range c.Listeners {
		lp := "listeners[" + strconv.Itoa(i) + "]"
		switch l.Protocol {
		case "", ListenerHTTP:
			c.checkHTTPListener(ck, lp, l)
		case ListenerTCP:
			c.checkTCPListener(ck, lp, l)
		default:
			ck.Add(lp+".protocol", "unknown protocol %q: want http or tcp", l.Protocol)
		}
	}
}

func (c *Config) checkTCPListener(ck checker, lp string, l ListenerConfig) {
	if len(l.Routes) > 0 {
		ck.Add(lp+".routes", "a tcp listener takes service only (no routes or split)")
	}
	if l.Service == "" {
		if len(l.Routes) > 0 {
			ck.Add(lp+".service", "required for a tcp listener")
		}
		return
	}
	if s, ok := c.Services[l.Service]; ok && s.Protocol != ambassador.ProtocolTCP {
		ck.Add(lp+".service", "service %q has protocol %q; a tcp listener needs a service of protocol tcp", l.Service, protocolName(s.Protocol))
	}
	if l.Transcode != nil {
		ck.Add(lp+".transcode", "not for a tcp listener (transcoding is JSON over HTTP to a gRPC service)")
	}
}

func (c *Config) checkHTTPListener(ck checker, lp string, l ListenerConfig) {
	c.checkNotTCP(ck, lp+".service", l.Service)
	for j, r := range l.Routes {
		rp := lp + ".routes[" + strconv.Itoa(j) + "]"
		c.checkNotTCP(ck, rp+".service", r.Service)
		for k, leg := range r.Split {
			c.checkNotTCP(ck, rp+".split["+strconv.Itoa(k)+"].service", leg.Service)
		}
	}
}

// checkNotTCP reports path when it names a service of protocol tcp.
func (c *Config) checkNotTCP(ck checker, path, name string) {
	if s, ok := c.Services[name]; ok && name != "" && s.Protocol == ambassador.ProtocolTCP {
		ck.Add(path, "service %q has protocol tcp; only a tcp listener (protocol: tcp) can use it", name)
	}
}

func protocolName(p string) string {
	if p == "" {
		return ambassador.ProtocolHTTP1
	}
	return p
}
