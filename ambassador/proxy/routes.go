package proxy

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/outbound-go/outbound/ambassador/proxy/internal/transcode"
)

// table is one immutable routing snapshot: what every listener does with a
// request, and the service entries it may send it to. A reload builds a new
// table and swaps it in atomically; requests that already hold an entry
// finish on it.
type table struct {
	listeners []*listenerRoutes // in the order of Server.listeners
	services  map[string]*serviceEntry
	order     []string // service names, sorted, for /status and /readyz
}

// listenerRoutes is the precomputed routing of one listener.
type listenerRoutes struct {
	service *serviceEntry // set when the listener has service:
	whole   route         // the access log's route for a service: listener
	routes  []route
}

// route is one precomputed RouteConfig.
type route struct {
	name   string // for the access log: "host/prefix" or the index
	host   string // lower case, port stripped; "" matches any host
	prefix string
	target *serviceEntry // single service, or nil when split is set
	split  []splitTarget // cumulative weights
	total  int
	// transcode, when set, answers the route's JSON requests (transcode.go).
	transcode *transcode.Handler
}

type splitTarget struct {
	upTo  int // cumulative weight; choose the first with r < upTo
	entry *serviceEntry
}

// match returns the route for r and its service entry, or nil.
func (l *listenerRoutes) match(r *http.Request) (*route, *serviceEntry) {
	if l.service != nil {
		return &l.whole, l.service
	}
	host := requestHost(r)
	for i := range l.routes {
		rt := &l.routes[i]
		if rt.host != "" && !strings.EqualFold(rt.host, host) {
			continue
		}
		if rt.prefix != "" && !strings.HasPrefix(r.URL.Path, rt.prefix) {
			continue
		}
		if rt.target != nil {
			return rt, rt.target
		}
		if rt.total <= 0 {
			return rt, nil
		}
		n := rand.IntN(rt.total)
		for _, s := range rt.split {
			if n < s.upTo {
				return rt, s.entry
			}
		}
		return rt, nil
	}
	return nil, nil
}

// requestHost is the host a request is for, without a port: the absolute
// URI's host when the request line had one, else the Host header.
func requestHost(r *http.Request) string {
	h := r.Host
	if r.URL.Host != "" {
		h = r.URL.Host
	}
	return stripPort(h)
}

func stripPort(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if strings.HasPrefix(h, "[") {
			if j := strings.IndexByte(h, ']'); j > 0 {
				return h[1:j]
			}
			return h
		}
		if strings.IndexByte(h, ':') == i { // one colon: host:port
			return h[:i]
		}
		return h // bare IPv6 without brackets
	}
	return h
}

func buildRoutes(l ListenerConfig, services map[string]*serviceEntry) *listenerRoutes {
	lr := &listenerRoutes{}
	if l.Service != "" {
		lr.service = services[l.Service]
		lr.whole = route{name: "listener " + l.Address, target: lr.service}
		return lr
	}
	for i, rc := range l.Routes {
		rt := route{host: strings.ToLower(stripPort(rc.Host)), prefix: rc.PathPrefix}
		switch {
		case rc.Host != "" && rc.PathPrefix != "":
			rt.name = rc.Host + rc.PathPrefix
		case rc.Host != "":
			rt.name = rc.Host
		case rc.PathPrefix != "":
			rt.name = rc.PathPrefix
		default:
			rt.name = "routes[" + strconv.Itoa(i) + "]"
		}
		if rc.Service != "" {
			rt.target = services[rc.Service]
		}
		for _, sp := range rc.Split {
			if sp.Weight <= 0 {
				continue // weight 0 is never chosen
			}
			rt.total += sp.Weight
			rt.split = append(rt.split, splitTarget{upTo: rt.total, entry: services[sp.Service]})
		}
		lr.routes = append(lr.routes, rt)
	}
	return lr
}
